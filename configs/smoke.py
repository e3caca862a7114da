"""A tiny run on local data that trains a few steps end to end in well under a minute on CPU."""

from configs import default
from configs.local_data import data_path, use_local_data


def get_config():
  config = use_local_data(default.get_config())
  config.data.train_sources = (f'pairs_csv:{data_path("nli", "snli_dev.csv")}',)
  config.data.max_len = 32
  config.data.buckets = ()  # one padded shape: a single compilation
  config.model.d_model = 32
  config.model.num_heads = 2
  config.train.batch_size = 16
  config.train.num_steps = 12
  config.train.warmup_steps = 2
  config.train.learning_rate = 1e-3
  config.train.log_every_steps = 4
  config.train.eval_every_steps = 6
  config.train.checkpoint_every_steps = 6
  config.finetune.batch_size = 16
  config.finetune.num_steps = 4
  config.finetune.warmup_steps = 1
  config.finetune.eval_every_steps = 4
  return config
