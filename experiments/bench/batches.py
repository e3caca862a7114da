"""What the benchmark runs on: the Table 1 configs, the real training batches as the
training loop draws them, re-padded or synthetic batches.
"""

import tempfile
from typing import Sequence

import numpy as np

from configs import local_data
from configs.table1_common import table1
from pete_jax.data import pipeline

TABLE1 = (
  'fourier_1x256',
  'learned_1x256',
  'fourier_1x512',
  'learned_1x512',
  'fourier_2x256',
  'learned_2x256',
  'fourier_2x512',
  'learned_2x512',
)

# Suffix of the benchmark rows of Fourier models with the FFN output dropped: the official
# code's work, for like-for-like comparisons with its rates.
DROP_FFN = '_dropffn'
# Prefix of the rows of the PyTorch peer (experiments/bench/torch_peer.py) of a model.
PEER = 'torch_'


# The vocabulary of the real batches: BERT uncased WordPiece (the packaged pete_jax/assets vocab).
BERT_VOCAB_SIZE = 30522


def table1_config(
  name: str, quick: bool = False, vocab_size: int = BERT_VOCAB_SIZE, drop_ffn_output: bool = False
):
  """The config of Table 1 model ``name`` ('fourier_2x512'), on the local data.

  ``drop_ffn_output`` (Fourier only): the official code's block, whose FFN output is
  dropped (so the compiler removes the FFN, forward and backward).
  """
  embedding, size = name.split('_')
  layers, d = (int(v) for v in size.split('x'))
  config = local_data.use_local_data(table1(embedding, layers, d))
  config.model.vocab_size = vocab_size
  config.model.drop_ffn_output = bool(drop_ffn_output and embedding == 'fourier')
  if quick:
    config.model.d_model = 32
    config.model.num_layers = config.model.num_heads = 1
  return config


def describe(config) -> str:
  m = config.model
  return f'{m.embedding}_{m.num_layers}x{m.d_model}'


def load_training_batches(config, num_steps: int, start_step: int) -> tuple[list, dict]:
  """The first real training batches, exactly as the training loop draws them."""
  data = pipeline.prepare_training_data(config, tempfile.mkdtemp(prefix='pete_bench_'))
  batcher = data.batcher
  batches = [batcher.batch_at(s) for s in range(start_step, start_step + num_steps)]
  epoch_steps = batcher.steps_per_epoch
  info = {
    'num_pairs': int(batcher.num_examples),
    'steps_per_epoch': int(epoch_steps),
    'batch_size': int(batcher.batch_size),
    'lengths': list(batcher.lengths),
    'padding_efficiency_epoch': batcher.padding_efficiency(epoch_steps),
    'padding_efficiency_measured': batcher.padding_efficiency(num_steps, start_step),
    'shapes_measured': [
      list(batcher.shape_at(s)) for s in range(start_step, start_step + num_steps)
    ],
    'mean_len_a': float(batcher.a.lengths.mean()),
    'mean_len_b': float(batcher.b.lengths.mean()),
    'vocab_size': int(data.tokenizer.vocab_size),
  }
  shapes = {}
  for s in range(epoch_steps):
    key = 'x'.join(str(v) for v in batcher.shape_at(s))
    shapes[key] = shapes.get(key, 0) + 1
  info['shape_histogram_epoch'] = shapes
  sentences = {'a': batcher.a, 'b': batcher.b}
  return batches, {'info': info, 'sentences': sentences}


def pad_to(batch: dict, length: int) -> dict:
  out = {}
  for k, v in batch.items():
    if k.endswith('_ids') or k.endswith('_mask'):
      out[k] = np.pad(v, ((0, 0), (0, length - v.shape[1])))
    else:
      out[k] = v
  return out


def real_tokens(batch: dict) -> int:
  return int(batch['a_mask'].sum() + batch['b_mask'].sum())


def computed_tokens(batch: dict) -> int:
  return int(batch['a_mask'].size + batch['b_mask'].size)


def fixed_batch(batches: list, shape: Sequence[int]) -> dict:
  """A real batch re-padded (or cut) to the shape (La, Lb), masks kept consistent."""
  b = batches[0]
  out = {}
  for side, length in zip(('a', 'b'), shape):
    ids, mask = b[f'{side}_ids'], b[f'{side}_mask']
    if ids.shape[1] >= length:
      ids, mask = ids[:, :length], mask[:, :length]
    else:
      ids = np.pad(ids, ((0, 0), (0, length - ids.shape[1])))
      mask = np.pad(mask, ((0, 0), (0, length - mask.shape[1])))
    out[f'{side}_ids'], out[f'{side}_mask'] = ids, mask
  return out


def random_batch(bsz: int, la: int, lb: int, vocab: int, seed: int = 0) -> dict:
  """Random ids in [1, vocab), every token real."""
  rng = np.random.default_rng(seed)
  out = {}
  for side, length in (('a', la), ('b', lb)):
    out[f'{side}_ids'] = rng.integers(1, vocab, (bsz, length)).astype(np.int32)
    out[f'{side}_mask'] = np.ones((bsz, length), np.int32)
  return out
