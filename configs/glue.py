"""Fine-tuning on one GLUE task (or a local stand-in): ``configs/glue.py:<task>[,local]``.

  python -m pete_jax.glue.main --config=configs/glue.py:rte --pretrained=runs/snli_pete \
      --workdir=runs/glue/rte

Tasks: cola, sst2, mrpc, qqp, stsb, mnli, qnli, rte, wnli, ax (GLUE; ax is scored by
the MNLI model) and the local stand-ins add_one_rte, joci, mpe. By default the data
comes from TFDS ``glue/<task>`` (downloaded on first use); ``,local`` reads the GLUE
files under ``PETE_DATA_DIR`` instead (STS-B, RTE, MRPC from the MSR paraphrase files,
and the stand-ins).

The recipe is that of the usual GLUE scripts (Hugging Face ``run_glue``: AdamW,
batch 32, 3 epochs, linear decay), with warmup over the first 10% of steps. A fixed
tenth of the training split is held out as the selection split: the learning rate
and the epoch are chosen on it, and the task's validation split is only reported.
"""

import ml_collections

from configs.default import data_path
from pete_jax.glue import tasks

_STANDINS = ('standins', 'felipessalvatore_nli_datasets')
_MRPC = ('standins', 'mrpc', 'msr_paraphrase_train.txt')


def local_sources(name: str) -> tuple[str, tuple]:
  """(train source, validation sources) of the local files of a task, under PETE_DATA_DIR."""
  if name == 'stsb':
    return f'glue_tsv:{data_path("stsb", "train.tsv")}', (
      f'glue_tsv:{data_path("stsb", "dev.tsv")}',
    )
  if name == 'mrpc':
    msr = f'msr_paraphrase:{data_path(*_MRPC)}'
    return f'{msr}:train', (f'{msr}:dev',)
  if name in ('rte', *tasks.STANDIN_TASKS):
    csv = lambda split: f'nli_csv:{data_path(*_STANDINS, f"{name}_{split}.csv")}'
    return csv('train'), (csv('dev'),)
  raise ValueError(f'configs/glue.py: no local files for task {name!r}; drop ",local"')


def get_config(arg: str = 'rte') -> ml_collections.ConfigDict:
  """The fine-tuning config of ``<task>[,local]``."""
  name, *flags = [p.strip() for p in arg.split(',') if p.strip()] or ['rte']
  task = tasks.get_task(name)
  local = 'local' in flags
  if set(flags) - {'local'}:
    raise ValueError(f'configs/glue.py: unknown flags {sorted(set(flags) - {"local"})} in {arg!r}')
  config = ml_collections.ConfigDict()
  config.task = name
  if local or name in tasks.STANDIN_TASKS:
    config.train_source, config.validation_sources = local_sources(name)
  else:
    config.train_source = f'tfds:glue/{name}:{task.train_split}' if task.train_split else ''
    config.validation_sources = tuple(f'tfds:glue/{name}:{s}' for s in task.validation_splits)
  config.tfds_data_dir = ''
  config.tfds_download = True
  config.on_bad_row = 'skip'  # or 'error'
  # Fraction of the training split held out (the same examples for every seed and rate)
  # to choose the learning rate and the epoch.
  config.select_fraction = 0.1
  # Head features: 'uv_absdiff' ([u, v, |u-v|]) or 'concat' ([u, v], the official code's).
  config.head = 'uv_absdiff'
  config.learning_rate = 2e-5
  config.batch_size = 32
  config.epochs = 3
  config.warmup_fraction = 0.1
  config.weight_decay = 0.01
  # Longer than the experiments' pre-training (48): RTE and MRPC sentences are long; ids past
  # it are cut.
  config.max_len = 128
  config.buckets = (32, 64)
  config.sort_window_batches = 16
  config.seed = 0
  return config
