"""The one base class of errors a user can fix by changing their input.

The commands a user runs on their own data and workdirs (``pete_jax.main``,
``evaluate``, ``inference``, ``export``, ``data.prepare``, ``glue.main``) catch
``UserError`` and print its message as one paragraph, without a traceback;
anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
  """Bad config, data, workdir or model folder: the message says what to change."""


class ConfigError(UserError, ValueError):
  """An invalid config; ``problems`` holds one line per problem, each naming its field."""

  def __init__(self, problems: list[str]):
    self.problems = list(problems)
    super().__init__('Invalid config:\n  ' + '\n  '.join(self.problems))


def exit_with(error: UserError) -> SystemExit:
  """The SystemExit a command raises for ``error``: ``error: <message>`` on stderr, status 1."""
  return SystemExit(f'error: {error}')


def parse_config_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing (``app.run(main, flags_parser=parse_config_flags)``) for commands
  that take a ``--config`` file, with every mistake reported as one ``error:`` line.

  ml_collections loads the file and applies the ``--config.<section>.<field>`` overrides
  while the flags are parsed, before ``main`` runs: an error raised by the config file
  would be printed with its whole traceback, and an override of a field that does not
  exist would end in one.
  """
  from absl import flags  # pylint: disable=import-outside-toplevel

  try:
    return flags.FLAGS(argv)
  except flags.Error as e:  # the config file's own error comes wrapped, traceback included
    lines = str(e).strip().splitlines()
    detail = lines[-1].strip() if 'Traceback' in str(e) else ' '.join(lines)
    raise SystemExit(f'error: {detail}\nPass --helpshort or --helpfull to see the flags.') from None
  except (AttributeError, KeyError, TypeError, ValueError, OSError) as e:
    raise SystemExit(
      f'error: the --config flags do not apply ({type(e).__name__}: {e}). Check the config '
      'file, and that each --config.<section>.<field> names a field of '
      'pete_jax/default_config.py with a value of its type.'
    ) from None
