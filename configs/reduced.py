"""Reduced-scale budget for CPU reproduction runs (used by experiments/run.py).

``reduce(config)`` keeps a config's model and changes only the budget: the local
entailment pairs (about 20k, 6% of the paper's data), batch 128, lr 2e-5, 200
steps with 100 warmup steps then linear decay, max_len 48 with one extra bucket
(32), one evaluation and one checkpoint at the end. STS-B validation is scored
zero-shot with the config's pooling and normalisation (paper defaults).

As a config file it takes the experiment config's module name and optional
budget fields, e.g.::

  python -m pete_jax.main --config=configs/reduced.py:table1_learned_1x256,steps=200 \
      --workdir=runs/x --config.seed=1
"""

import importlib

import ml_collections

from configs.local_data import use_local_data

STEPS = 200
LEARNING_RATE = 2e-5  # the paper's
WARMUP = 100
MAX_LEN = 48
BATCH = 128
FINETUNE_STEPS = 180  # one epoch of STS-B train (5,749 pairs) at batch 32


def reduce(
  config: ml_collections.ConfigDict,
  steps: int = STEPS,
  warmup: int = WARMUP,
  max_len: int = MAX_LEN,
  batch: int = BATCH,
  finetune_steps: int = FINETUNE_STEPS,
) -> ml_collections.ConfigDict:
  """Returns ``config`` (modified in place) at the reduced-scale budget."""
  config = use_local_data(config)
  config.data.max_len = max_len
  config.data.buckets = (32,) if max_len > 32 else ()
  config.train.batch_size = batch
  config.train.learning_rate = LEARNING_RATE
  config.train.num_steps = steps
  config.train.warmup_steps = min(warmup, max(steps - 1, 0))
  config.train.log_every_steps = 10
  config.train.eval_every_steps = steps
  config.train.checkpoint_every_steps = steps
  config.train.keep_checkpoints = 1
  if config.finetune.enabled:
    config.finetune.num_steps = finetune_steps
    config.finetune.warmup_steps = min(config.finetune.warmup_steps, finetune_steps // 5)
    config.finetune.eval_every_steps = finetune_steps
  return config


def parse_arg(arg: str) -> tuple[str, dict]:
  """``'table1_learned_1x256,steps=100'`` -> ``('table1_learned_1x256', {'steps': 100})``."""
  name, *fields = [p.strip() for p in (arg or 'default').split(',') if p.strip()] or ['default']
  budget = {}
  for field in fields:
    key, _, value = field.partition('=')
    if key not in ('steps', 'warmup', 'max_len', 'batch', 'finetune_steps'):
      raise ValueError(f'configs/reduced.py: unknown budget field {key!r} in {arg!r}')
    budget[key] = int(value)
  return name, budget


def get_config(arg: str = '') -> ml_collections.ConfigDict:
  """The config ``configs/<name>.py`` at the reduced budget (default: Fourier 1x256)."""
  name, budget = parse_arg(arg)
  module = importlib.import_module(f'configs.{name}')
  return reduce(module.get_config(), **budget)
