"""Command line: ``python -m pete_jax.main --config=configs/snli_pete.py --workdir=runs/snli_pete``.

Any config field can be overridden, e.g. ``--config.train.batch_size=64``. The
resolved config is written to ``<workdir>/config.json``.
"""

from absl import app, flags, logging
import jax
from ml_collections import config_flags

from pete_jax import configuration, logs, train
from pete_jax.data.records import SourceError

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file (configs/*.py).',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for checkpoints, logs and metrics.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  logs.quiet_library_logs()
  logging.info('JAX devices: %s (process %d of %d)', jax.devices(), jax.process_index(),
               jax.process_count())
  try:
    train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  except (configuration.ConfigError, SourceError) as e:
    # Problems of the user's making: the message says what to change; no traceback.
    raise SystemExit(f'error: {e}') from None


if __name__ == '__main__':
  flags.mark_flags_as_required(['config', 'workdir'])
  app.run(main)
