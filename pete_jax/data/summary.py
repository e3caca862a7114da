r"""Prints what the data pipeline makes of a config's data.

Usage:
  python -m pete_jax.data.summary --config=configs/default.py \
    --config.data.train_sources="('pairs_csv:../shared/data/nli/snli_dev.csv',)"

Shows rows read/kept/dropped by reason, label counts, sentence lengths in
tokens, padding efficiency at config.train.batch_size with bucketing versus
padding to max_len, and a few decoded examples.
"""

from __future__ import annotations

import tempfile
from typing import Sequence

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags
import numpy as np

from pete_jax.data import batching
from pete_jax.data import pipeline
from pete_jax.data import sources
from pete_jax.errors import parse_config_flags

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defined only when run as a command, so importing never clashes."""
  config_flags.DEFINE_config_file('config', None, 'Config file.')
  flags.DEFINE_string(
    'workdir',
    None,
    'Run directory (SentencePiece model, id order); default: a new temporary directory.',
  )
  flags.DEFINE_enum(
    'split',
    'train',
    ['train', 'eval', 'finetune'],
    'Which data: train_sources (NLI), eval_source or finetune_source (STS).',
  )
  flags.DEFINE_integer('num_examples', 3, 'Examples to show.')
  flags.mark_flags_as_required(['config'])


def _percentiles(lengths: np.ndarray) -> str:
  p50, p90, p99 = np.percentile(lengths, [50, 90, 99])
  return (
    f'p50 {p50:.0f}  p90 {p90:.0f}  p99 {p99:.0f}  max {lengths.max()}  mean {lengths.mean():.1f}'
  )


def _efficiency(
  a_seqs, b_seqs, batch_size: int, lengths: Sequence[int], window: int, seed: int
) -> str:
  batcher = batching.PairBatcher(
    a_seqs, b_seqs, batch_size=batch_size, lengths=lengths, seed=seed, sort_window_batches=window
  )
  steps = batcher.epoch_start(1)
  shapes = {batcher.shape_at(s) for s in range(steps)}
  return (
    f'{batcher.padding_efficiency(steps):6.1%} over one epoch '
    f'({steps} steps, {len(shapes)} batch shapes, lengths {lengths})'
  )


def main(argv: Sequence[str]) -> None:
  del argv
  logging.set_verbosity(logging.WARNING)  # Reports are printed below.
  config = FLAGS.config
  workdir = FLAGS.workdir or tempfile.mkdtemp(prefix='pete_inspect_')
  if FLAGS.split == 'train':
    pairs, report = sources.load_nli_pairs(config)
  else:
    spec = config.data.eval_source if FLAGS.split == 'eval' else config.data.finetune_source
    pairs, report = sources.load_sts_pairs(
      spec, config, 'validation' if FLAGS.split == 'eval' else 'train'
    )
  print('== sources')
  for part in report.parts or [report]:
    print(part.summary())
  if report.parts:
    print(f'TOTAL: {report.summary().partition(": ")[2]}')

  tokenizer = pipeline.build_tokenizer(config, workdir, pipeline.pair_texts(pairs))
  max_len = config.data.max_len
  print(
    f'\n== tokenizer: {config.tokenizer.kind}, vocab_size '
    f'{tokenizer.vocab_size}, id_order {config.tokenizer.id_order}, '
    f'workdir {workdir}'
  )
  a_full, b_full = pipeline.encode_pairs(tokenizer, pairs, 1 << 20)
  print(f'\n== lengths in tokens (markers included, before truncation to max_len={max_len})')
  for name, seqs in (('a (premise / sentence1)', a_full), ('b (hypothesis / sentence2)', b_full)):
    lengths = np.array([len(s) for s in seqs])
    print(f'{name}: {_percentiles(lengths)}; longer than max_len: {int((lengths > max_len).sum())}')

  a_seqs, b_seqs = pipeline.encode_pairs(tokenizer, pairs, max_len)
  batch_size = config.train.batch_size
  if len(pairs) < batch_size:
    print(f'(only {len(pairs)} pairs: efficiency at batch {len(pairs)})')
    batch_size = len(pairs)
  print(f'\n== padding efficiency (real / computed tokens), batch {batch_size}')
  window = config.data.sort_window_batches
  buckets = batching.bucket_lengths(max_len, config.data.buckets)
  for name, lengths, w in (
    (f'bucketing, sort window {window} batches', buckets, window),
    ('bucketing, random batches (window 0)', buckets, 0),
    ('pad to max_len (official code)', (max_len,), 0),
  ):
    print(f'{name}: ' + _efficiency(a_seqs, b_seqs, batch_size, lengths, w, config.seed))
  print(f'(this config: pad_to_max_len={config.data.pad_to_max_len})')

  print('\n== examples')
  for pair, a, b in list(zip(pairs, a_seqs, b_seqs))[: FLAGS.num_examples]:
    target = pair.label if pair.score is None else f'score {pair.score}'
    print(f'[{target}]')
    for text, ids in ((pair.text_a, a), (pair.text_b, b)):
      print(f'  text:    {text}\n  ids:     {ids}\n  decoded: {tokenizer.decode(ids)}')


if __name__ == '__main__':
  define_flags()
  app.run(main, flags_parser=parse_config_flags)
