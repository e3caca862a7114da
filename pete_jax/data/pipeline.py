"""Entry points for the training loop and evaluation: config in, data out.

Everything here is glue over sources, tokenizers and batching, so that
train.py and evaluation code need only a few calls.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Sequence

from absl import logging
import ml_collections
import numpy as np

from pete_jax import progress
from pete_jax.data import batching
from pete_jax.data import id_order
from pete_jax.data import sources
from pete_jax.data import tokenizers
from pete_jax.data.records import ReadReport
from pete_jax.data.records import SourceError
from pete_jax.data.records import SentencePair
from pete_jax.data.tokenizers import Tokenizer


def build_tokenizer(
  config: ml_collections.ConfigDict,
  workdir: str | None,
  training_texts: Sequence[str] | None = None,
) -> Tokenizer:
  """The run's tokenizer, with `tokenizer.id_order` applied.

  Training calls it with the training sentences; evaluation of the same
  workdir calls it without, and gets the saved SentencePiece model and id
  mapping, hence the same ids. In a multi-host run, let process 0 call it
  first (it writes spm.model / id_order.json), then the others.

  Args:
    config: Experiment config (section `tokenizer`, and `seed`).
    workdir: Run directory holding spm.model and id_order.json.
    training_texts: Training sentences (both sides of every pair); needed
      only to train SentencePiece or to rank ids by frequency.
  """
  base = tokenizers.build_base_tokenizer(config, workdir, training_texts)
  return id_order.apply_id_order(base, config, workdir, training_texts)


def pair_texts(pairs: Sequence[SentencePair]) -> list[str]:
  """Both sentences of every pair: the text to train a tokenizer on."""
  return [p.text_a for p in pairs] + [p.text_b for p in pairs]


# Pairs per tokenizer call when a progress bar is shown (one call otherwise).
_TOKENIZE_CHUNK = 50_000


def encode_pairs(
  tokenizer: Tokenizer, pairs: Sequence[SentencePair], max_len: int
) -> tuple[list[list[int]], list[list[int]]]:
  """Token ids of the first and of the second sentences, each on its own."""
  a_ids, b_ids = [], []
  chunk = _TOKENIZE_CHUNK if progress.interactive() else max(len(pairs), 1)
  for start in progress.iterate(
    range(0, len(pairs), chunk), 'tokenizing', unit='chunk', min_total=3
  ):
    part = pairs[start : start + chunk]
    a_ids += tokenizer.encode([p.text_a for p in part], max_len)
    b_ids += tokenizer.encode([p.text_b for p in part], max_len)
  return a_ids, b_ids


def pads_to_max_len(config: ml_collections.ConfigDict) -> bool:
  """Whether every batch pads to max_len: when asked, and always under 'mean_all' pooling.

  'mean_all' (the official code) averages padding positions too, so its sentence
  vector is defined only at one padded length, as the official code pads everything.
  """
  return bool(config.data.pad_to_max_len) or config.model.pooling == 'mean_all'


def padding_lengths(config: ml_collections.ConfigDict) -> tuple[int, ...]:
  """The padding lengths the config asks for (buckets, or max_len only; see ``pads_to_max_len``)."""
  return batching.bucket_lengths(config.data.max_len, config.data.buckets, pads_to_max_len(config))


def make_batcher(
  config: ml_collections.ConfigDict,
  a_seqs: Sequence[Sequence[int]],
  b_seqs: Sequence[Sequence[int]],
  *,
  batch_size: int,
  scores: Sequence[float] | None = None,
  process_index: int = 0,
  process_count: int = 1,
) -> batching.PairBatcher:
  """A `PairBatcher` with the config's padding, seed and sorting window."""
  return batching.PairBatcher(
    a_seqs,
    b_seqs,
    batch_size=batch_size,
    lengths=padding_lengths(config),
    seed=int(config.seed),
    scores=scores,
    sort_window_batches=int(config.data.sort_window_batches),
    process_index=process_index,
    process_count=process_count,
  )


def check_enough_pairs(num_pairs: int, batch_size: int, stage: str, report: ReadReport) -> None:
  """Raises SourceError if the data cannot fill one global batch of the stage."""
  if num_pairs < batch_size:
    raise SourceError(
      f'{num_pairs} {stage} pairs are fewer than one global batch ({stage}.batch_size='
      f'{batch_size}): lower {stage}.batch_size (a multiple of the device count) or give '
      f'more data ({report.read} rows read from {report.source}, {report.kept} kept; the log '
      'above says why the others were dropped).'
    )


@dataclasses.dataclass
class TrainData:
  """What the training loop needs.

  Attributes:
    tokenizer: The run's tokenizer (id order applied); V = vocab_size.
    batcher: `batcher.batch_at(step)`.
    report: What was read and dropped.
  """

  tokenizer: Tokenizer
  batcher: batching.PairBatcher
  report: ReadReport


def tokenizer_files(config: ml_collections.ConfigDict, workdir: str) -> list[str]:
  """Files that training writes into the workdir to fix the token ids."""
  tok = config.tokenizer
  paths = []
  if tok.kind == 'sentencepiece' and not tok.spm_model_path:
    paths.append(os.path.join(workdir, tokenizers.SPM_FILENAME))
  if tok.id_order != 'native':
    paths.append(os.path.join(workdir, id_order.ID_ORDER_FILENAME))
  return paths


def _wait_for(paths: list[str], timeout_s: float) -> None:
  deadline = time.monotonic() + timeout_s
  while not all(os.path.exists(p) for p in paths):
    if time.monotonic() > deadline:
      missing = [p for p in paths if not os.path.exists(p)]
      raise TimeoutError(
        f'waited {timeout_s:.0f} s for process 0 to write {missing}; the '
        'workdir must be on a filesystem all processes share (or set '
        'tokenizer.spm_model_path and id_order native)'
      )
    time.sleep(min(1.0, timeout_s / 10))


def prepare_training_data(
  config: ml_collections.ConfigDict,
  workdir: str,
  process_index: int = 0,
  process_count: int = 1,
  wait_timeout_s: float = 3600.0,
) -> TrainData:
  """Reads data.train_sources, builds the tokenizer, returns the batcher.

  Batch size is config.train.batch_size (global). Process 0 trains/saves the
  SentencePiece model and id order; other processes wait for those files
  (SentencePiece training is not guaranteed to give identical models on
  every host, so each must load process 0's).
  """
  pairs, report = sources.load_nli_pairs(config)
  check_enough_pairs(len(pairs), config.train.batch_size, 'train', report)
  if process_index > 0:
    paths = tokenizer_files(config, workdir)
    if paths:
      logging.info('process %d waiting for %s', process_index, paths)
      _wait_for(paths, wait_timeout_s)
  tokenizer = build_tokenizer(config, workdir, pair_texts(pairs))
  a_seqs, b_seqs = encode_pairs(tokenizer, pairs, config.data.max_len)
  batcher = make_batcher(
    config,
    a_seqs,
    b_seqs,
    batch_size=config.train.batch_size,
    process_index=process_index,
    process_count=process_count,
  )
  return TrainData(tokenizer, batcher, report)


@dataclasses.dataclass
class StsData:
  """An STS set, each sentence encoded on its own.

  Attributes:
    pairs: The pairs in file order.
    a_ids: Token ids of sentence 1 of each pair (unpadded).
    b_ids: Token ids of sentence 2.
    scores: float32 [n] gold scores 0..5.
    report: What was read and dropped.
  """

  pairs: list[SentencePair]
  a_ids: list[list[int]]
  b_ids: list[list[int]]
  scores: np.ndarray
  report: ReadReport


def prepare_sts(
  config: ml_collections.ConfigDict,
  tokenizer: Tokenizer,
  spec: str | None = None,
  default_split: str = 'validation',
) -> StsData:
  """Reads and encodes an STS set (default: config.data.eval_source)."""
  pairs, report = sources.load_sts_pairs(spec or config.data.eval_source, config, default_split)
  a_ids, b_ids = encode_pairs(tokenizer, pairs, config.data.max_len)
  scores = np.asarray([p.score for p in pairs], np.float32)
  return StsData(pairs, a_ids, b_ids, scores, report)


def prepare_finetune_batcher(
  config: ml_collections.ConfigDict,
  tokenizer: Tokenizer,
  process_index: int = 0,
  process_count: int = 1,
) -> tuple[batching.PairBatcher, ReadReport]:
  """STS fine-tuning batches (with 'score') from data.finetune_source."""
  sts = prepare_sts(config, tokenizer, config.data.finetune_source, 'train')
  check_enough_pairs(len(sts.pairs), config.finetune.batch_size, 'finetune', sts.report)
  batcher = make_batcher(
    config,
    sts.a_ids,
    sts.b_ids,
    batch_size=config.finetune.batch_size,
    scores=sts.scores,
    process_index=process_index,
    process_count=process_count,
  )
  return batcher, sts.report
