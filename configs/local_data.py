"""Helper for configs that train on the real local data in ``PETE_DATA_DIR`` (no TFDS).

``../shared/data/nli/*.csv``: about 20,400 SNLI/MNLI entailment pairs (about 6%
of the paper's training data); STS-B from the GLUE TSV files.
"""

import ml_collections

from configs.default import data_path

NLI_FILES = ('snli_train_subset.csv', 'snli_dev.csv', 'snli_test.csv', 'mnli_dev_label1.csv')


def use_local_data(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Points every data source of ``config`` at the local copies."""
  config.data.train_sources = tuple(f'pairs_csv:{data_path("nli", f)}' for f in NLI_FILES)
  config.data.csv_columns = 'premise,hypothesis,label'
  config.data.eval_source = f'stsb_tsv:{data_path("stsb", "dev.tsv")}'
  config.data.finetune_source = f'stsb_tsv:{data_path("stsb", "train.tsv")}'
  config.data.select_source = config.data.finetune_source  # zero-shot during pre-training
  return config


def get_config() -> ml_collections.ConfigDict:
  """The default (Fourier 1x256) on local data."""
  from configs import default  # pylint: disable=import-outside-toplevel

  return use_local_data(default.get_config())
