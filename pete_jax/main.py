"""Command line: ``python -m pete_jax.main --config=configs/snli_pete.py``.

Trains the config's model (downloading and preparing its TFDS data on first use)
into ``--workdir``, by default ``runs/<config name>``. Any config field can be
overridden, e.g. ``--config.train.batch_size=64``. The resolved config is
written to ``<workdir>/config.json``; running the same command again resumes.
"""

import os
import re

from absl import app, flags, logging
import jax
from ml_collections import config_flags

from pete_jax import devices, logs, train
from pete_jax.errors import UserError, exit_with, parse_config_flags


def default_workdir(config_arg: str) -> str:
  """``runs/<config name>``: 'configs/reduced.py:smoke,steps=2' -> 'runs/reduced_smoke_steps=2'."""
  path, _, argument = config_arg.partition(':')
  name = os.path.splitext(os.path.basename(path))[0]
  if argument:
    name += '_' + re.sub(r'[^A-Za-z0-9_.=-]+', '_', argument)
  return os.path.join('runs', name)


def main(argv):
  logs.start_command(argv)
  workdir = flags.FLAGS.workdir or default_workdir(
    config_flags.get_config_filename(flags.FLAGS['config'])
  )
  logging.info('Workdir: %s', os.path.abspath(workdir))
  devices.maybe_initialize_distributed()  # before anything starts the backend
  logging.info(
    'JAX devices: %s (process %d of %d)', jax.devices(), jax.process_index(), jax.process_count()
  )
  try:
    train.train_and_evaluate(flags.FLAGS.config, workdir)
  except UserError as e:  # The message says what to change; no traceback.
    raise exit_with(e) from None


if __name__ == '__main__':
  # Flags are defined only when run as a command, so importing never clashes.
  config_flags.DEFINE_config_file('config', None, 'Config file (configs/*.py).', lock_config=True)
  flags.DEFINE_string(
    'workdir', None, 'Directory for checkpoints, logs and metrics (default: runs/<config name>).'
  )
  flags.mark_flags_as_required(['config'])
  app.run(main, flags_parser=parse_config_flags)
