r"""Downloads and prepares every TFDS source of a config, and does nothing else.

    python -m pete_jax.data.prepare --config=configs/snli_pete.py

For machines without network: run this where there is internet, then copy the
TFDS data_dir it prints (``~/tensorflow_datasets`` by default, or
``data.tfds_data_dir``) to the same place on the offline machine; training there
reads the prepared files and never downloads. Training prepares them itself on
first use, so on a machine with internet this step is optional.
"""

from typing import Sequence

from absl import app, flags
from ml_collections import config_flags
import ml_collections

from pete_jax import logs
from pete_jax.data import sources, tfds_reader
from pete_jax.errors import UserError, exit_with, parse_config_flags


def tfds_splits(config: ml_collections.ConfigDict) -> list[tuple[str, str]]:
  """(TFDS name, split) of every TFDS source the config reads, in order, without repeats."""
  specs = [(s, 'train') for s in config.data.train_sources] + [
    (config.data.eval_source, 'validation')
  ]
  if config.data.select_source:
    specs.append((config.data.select_source, 'train'))
  if config.finetune.enabled:
    specs.append((config.data.finetune_source, 'train'))
  out = []
  for spec, default_split in specs:
    parsed = sources.parse_spec(spec)
    if parsed.format == 'tfds' and (parsed.location, parsed.split or default_split) not in out:
      out.append((parsed.location, parsed.split or default_split))
  return out


def prepare(config: ml_collections.ConfigDict) -> list[tuple[str, str, int]]:
  """Prepares (downloading where needed) each TFDS split; returns (name, split, rows)."""
  data_dir = config.data.tfds_data_dir or None
  return [
    (name, split, len(tfds_reader.open_source(name, split, data_dir, download=True)))
    for name, split in tfds_splits(config)
  ]


def main(argv: Sequence[str]) -> None:
  logs.start_command(argv)
  config = flags.FLAGS.config
  try:
    prepared = prepare(config)
  except UserError as e:
    raise exit_with(e) from None
  for name, split, rows in prepared:
    print(f'tfds:{name}:{split}: {rows} rows ready')
  print(f'TFDS data_dir: {config.data.tfds_data_dir or "TFDS default (~/tensorflow_datasets)"}')


if __name__ == '__main__':
  config_flags.DEFINE_config_file('config', None, 'Config file (configs/*.py).')
  flags.mark_flags_as_required(['config'])
  app.run(main, flags_parser=parse_config_flags)
