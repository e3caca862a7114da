"""The one base class of errors a user can fix by changing their input.

The commands a user runs on their own data and workdirs (``pete_jax.main``,
``evaluate``, ``inference``, ``export``, ``data.prepare``, ``glue.main``) catch
``UserError`` and print its message as one paragraph, without a traceback;
anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
  """Bad config, data, workdir or model folder: the message says what to change."""


def exit_with(error: UserError) -> SystemExit:
  """The SystemExit a command raises for ``error``: ``error: <message>`` on stderr, status 1."""
  return SystemExit(f'error: {error}')
