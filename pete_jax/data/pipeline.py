"""Entry points for the training loop and evaluation: config in, data out.

Everything here is glue over sources, tokenizers and batching, so that
train.py and evaluation code need only a few calls.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import ml_collections
import numpy as np

from pete_jax.data import batching
from pete_jax.data import sources
from pete_jax.data.records import ReadReport
from pete_jax.data.records import SentencePair
from pete_jax.data.tokenizers import Tokenizer
from pete_jax.data.tokenizers import build_tokenizer

# Default of config.data.sort_window_batches (see batching.py).
DEFAULT_SORT_WINDOW_BATCHES = 64


def pair_texts(pairs: Sequence[SentencePair]) -> list[str]:
  """Both sentences of every pair: the text to train a tokenizer on."""
  return [p.text_a for p in pairs] + [p.text_b for p in pairs]


def encode_pairs(tokenizer: Tokenizer, pairs: Sequence[SentencePair],
                 max_len: int) -> tuple[list[list[int]], list[list[int]]]:
  """Token ids of the first and of the second sentences, each on its own."""
  return (tokenizer.encode([p.text_a for p in pairs], max_len),
          tokenizer.encode([p.text_b for p in pairs], max_len))


def padding_lengths(config: ml_collections.ConfigDict) -> tuple[int, ...]:
  """The padding lengths the config asks for (buckets or max_len only)."""
  data = config.data
  return batching.bucket_lengths(data.max_len, data.buckets,
                                 bool(data.pad_to_max_len))


def make_batcher(config: ml_collections.ConfigDict,
                 a_seqs: Sequence[Sequence[int]],
                 b_seqs: Sequence[Sequence[int]], *, batch_size: int,
                 scores: Sequence[float] | None = None,
                 process_index: int = 0,
                 process_count: int = 1) -> batching.PairBatcher:
  """A `PairBatcher` with the config's padding, seed and sorting window."""
  return batching.PairBatcher(
      a_seqs, b_seqs, batch_size=batch_size, lengths=padding_lengths(config),
      seed=int(config.seed), scores=scores,
      sort_window_batches=int(config.data.get(
          'sort_window_batches', DEFAULT_SORT_WINDOW_BATCHES)),
      process_index=process_index, process_count=process_count)


@dataclasses.dataclass
class TrainData:
  """What the training loop needs.

  Attributes:
    tokenizer: The run's tokenizer (id order applied); V = vocab_size.
    batcher: `batcher.batch_at(step)` / `batcher.iterate(step)`.
    report: What was read and dropped.
    pairs: The training pairs, in source order.
  """
  tokenizer: Tokenizer
  batcher: batching.PairBatcher
  report: ReadReport
  pairs: list[SentencePair]


def prepare_training_data(config: ml_collections.ConfigDict, workdir: str,
                          process_index: int = 0,
                          process_count: int = 1) -> TrainData:
  """Reads data.train_sources, builds the tokenizer, returns the batcher.

  Batch size is config.train.batch_size (global). See
  `tokenizers.build_tokenizer` for the multi-host note on spm.model.
  """
  pairs, report = sources.load_nli_pairs(config)
  tokenizer = build_tokenizer(config, workdir, pair_texts(pairs))
  a_seqs, b_seqs = encode_pairs(tokenizer, pairs, config.data.max_len)
  batcher = make_batcher(config, a_seqs, b_seqs,
                         batch_size=config.train.batch_size,
                         process_index=process_index,
                         process_count=process_count)
  return TrainData(tokenizer, batcher, report, pairs)


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

  def batches(self, batch_size: int, lengths: int | Sequence[int]):
    """Fixed-size batches in order (see `batching.sequential_batches`)."""
    return batching.sequential_batches(self.a_ids, self.b_ids, batch_size,
                                       lengths, self.scores)


def prepare_sts(config: ml_collections.ConfigDict, tokenizer: Tokenizer,
                spec: str | None = None,
                default_split: str = 'validation') -> StsData:
  """Reads and encodes an STS set (default: config.data.eval_source)."""
  pairs, report = sources.load_sts_pairs(spec or config.data.eval_source,
                                         config, default_split)
  a_ids, b_ids = encode_pairs(tokenizer, pairs, config.data.max_len)
  scores = np.asarray([p.score for p in pairs], np.float32)
  return StsData(pairs, a_ids, b_ids, scores, report)


def prepare_finetune_batcher(config: ml_collections.ConfigDict,
                             tokenizer: Tokenizer, process_index: int = 0,
                             process_count: int = 1
                             ) -> tuple[batching.PairBatcher, ReadReport]:
  """STS fine-tuning batches (with 'score') from data.finetune_source."""
  sts = prepare_sts(config, tokenizer, config.data.finetune_source, 'train')
  batcher = make_batcher(config, sts.a_ids, sts.b_ids,
                         batch_size=config.finetune.batch_size,
                         scores=sts.scores, process_index=process_index,
                         process_count=process_count)
  return batcher, sts.report
