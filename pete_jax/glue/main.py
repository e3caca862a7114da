"""Command line: fine-tune a pre-trained workdir on one GLUE task.

  python -m pete_jax.glue.main --config=configs/glue.py:rte --pretrained=runs/snli_pete \
      --workdir=runs/glue/rte [--config.learning_rate=1e-4]

Reads the pre-trained model (its latest checkpoint; ``--best`` for the one with
the best selection score), fine-tunes it (``pete_jax/glue/finetune.py``) and writes
``<workdir>/glue_result.json``: the validation metrics at the epoch chosen on the
selection split, the selection scores, every epoch's scores, and the config.
"""

import os

from absl import app, flags, logging
from ml_collections import config_flags

from pete_jax import files, logs
from pete_jax.errors import UserError, exit_with, parse_config_flags
from pete_jax.glue import finetune
from pete_jax.trained_model import load_workdir
from pete_jax.workdir_lock import make_workdir

RESULT_FILE = 'glue_result.json'


def run(config, pretrained: str, workdir: str, best: bool = False) -> dict:
  """Fine-tunes ``pretrained``'s model as ``config`` says; writes and returns the result."""
  # The result's folder, the model, then the data: bad input stops before any training.
  make_workdir(workdir)
  model = load_workdir(pretrained, best=best, stage='pretrain')
  data = finetune.load_task_data(config)
  result = finetune.finetune(model, config, data)
  result.update(pretrained=pretrained, pretrained_step=model.step, config=config.to_dict())
  files.write_json(os.path.join(workdir, RESULT_FILE), result)
  return result


def main(argv):
  logs.start_command(argv)
  try:
    result = run(flags.FLAGS.config, flags.FLAGS.pretrained, flags.FLAGS.workdir, flags.FLAGS.best)
  except UserError as e:
    raise exit_with(e) from None
  logging.info('%s validation: %s', result['task'], result['validation'])


if __name__ == '__main__':
  config_flags.DEFINE_config_file(
    'config', None, 'configs/glue.py:<task>[,local]', lock_config=True
  )
  flags.DEFINE_string('pretrained', None, 'Pre-trained (or converted) workdir.')
  flags.DEFINE_string('workdir', None, f'Where {RESULT_FILE} goes.')
  flags.DEFINE_bool('best', False, "The pre-trained run's best checkpoint instead of its latest.")
  flags.mark_flags_as_required(['config', 'pretrained', 'workdir'])
  app.run(main, flags_parser=parse_config_flags)
