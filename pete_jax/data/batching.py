"""Batches of tokenized sentence pairs: bucketed, deterministic, resumable.

Scheme (per epoch): shuffle the examples, cut the order into windows of
`sort_window_batches` batches, sort each window by the pair's bucket shape
(bucket of side a, bucket of side b; a stable sort, so ties stay random), cut
into batches, and shuffle the batch order. Each side is padded to the
smallest bucket length that fits the longest sentence of that side in the
global batch, so jit sees at most len(lengths)**2 shapes.

Trade-off: a bigger window packs better (less padding) but makes each batch
more uniform in length, so in-batch negatives share length (and, with mixed
sources, often the source: MNLI sentences are longer than SNLI's), which
makes them a little less random. A window of 0 gives fully random batches.
A window of tens of batches gives most of the gain while every batch still
draws from thousands of random candidates.

Epochs and leftovers: with N examples and global batch B, every epoch has
floor(N / B) steps and trains on N - r distinct examples (r = N mod B). The r
examples an epoch leaves out are put first in the next epoch's pool, so they
are sure to be among its N - r trained examples (no example is ever dropped:
each epoch has no repeats, and an example left out of one epoch is trained in
the next, at a random step, since an epoch's batches are shuffled). The
leftovers chain the epochs, so computing epoch e replays e cheap
permutations (milliseconds each); results are cached.

Determinism: the batch at global step s is a pure function of (seed, s) and
the data, so a restarted run resumes exactly from its step number.

Multi-host: every process holds all (small) tokenized data, computes the
global batch, pads it to the global bucket shape (so all processes agree on
shapes) and returns its own contiguous block of B / process_count rows.
"""

from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np

Batch = dict[str, np.ndarray]


def bucket_lengths(
  max_len: int, buckets: Sequence[int], pad_to_max_len: bool = False
) -> tuple[int, ...]:
  """Sorted padding lengths ending at max_len (buckets above it are dropped).

  pad_to_max_len=True gives (max_len,): every batch padded to max_len, as the
  official code does.
  """
  if max_len <= 0:
    raise ValueError(f'max_len must be positive, got {max_len}')
  if pad_to_max_len:
    return (max_len,)
  return tuple(sorted({int(b) for b in buckets if 0 < int(b) < max_len})) + (max_len,)


def fit_length(length: int, lengths: Sequence[int]) -> int:
  """The smallest of `lengths` (sorted) that is >= length."""
  i = int(np.searchsorted(lengths, length))
  if i == len(lengths):
    raise ValueError(
      f'a sequence of {length} tokens does not fit the largest '
      f'padding length {lengths[-1]}; encode with max_len'
    )
  return int(lengths[i])


class PackedSequences:
  """Variable-length id sequences in one flat int32 array (cheap to slice).

  Attributes:
    flat: All ids, concatenated.
    offsets: int64 [n]; start of each sequence in `flat`.
    lengths: int64 [n].
  """

  def __init__(self, seqs: Sequence[Sequence[int]]):
    self.lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    self.offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)
    self.flat = np.fromiter(
      itertools.chain.from_iterable(seqs), dtype=np.int32, count=int(self.lengths.sum())
    )

  def __len__(self) -> int:
    return len(self.lengths)

  def pad(self, rows: np.ndarray, length: int, pad_id: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(ids, mask), int32 [len(rows), length], of the sequences `rows`."""
    positions = np.arange(length)
    mask = positions[None, :] < self.lengths[rows][:, None]
    index = np.minimum(self.offsets[rows][:, None] + positions[None, :], max(len(self.flat) - 1, 0))
    ids = np.where(mask, self.flat[index] if len(self.flat) else pad_id, pad_id)
    return ids.astype(np.int32), mask.astype(np.int32)


def pad_batch(
  seqs: Sequence[Sequence[int]], lengths: int | Sequence[int], pad_id: int = 0
) -> tuple[np.ndarray, np.ndarray]:
  """Pads token-id sequences for inference or evaluation.

  Args:
    seqs: Token ids per sentence (already truncated by the tokenizer).
    lengths: A fixed length, or bucket lengths (the smallest that fits the
      longest sequence is used).
    pad_id: Padding id.

  Returns:
    (ids, mask), both int32 [len(seqs), L]; mask is 1 on real tokens.
  """
  if isinstance(lengths, int):
    lengths = (lengths,)
  packed = PackedSequences(seqs)
  longest = int(packed.lengths.max()) if len(packed) else 1
  return packed.pad(np.arange(len(packed)), fit_length(longest, lengths), pad_id)


class PairBatcher:
  """Training batches of sentence pairs; see the module docstring.

  Args:
    a_seqs: Token ids of the first sentences (e.g. premises).
    b_seqs: Token ids of the second sentences (e.g. hypotheses).
    batch_size: Global batch size B (pairs per step over all processes).
    lengths: Padding lengths (from `bucket_lengths`); the last bounds every
      sequence.
    seed: Data-order seed.
    scores: Optional per-pair float scores (STS fine-tuning), returned as
      'score'.
    sort_window_batches: Sorting window in batches (0: no length sorting).
    process_index: This process (jax.process_index()).
    process_count: Number of processes (jax.process_count()).
    pad_id: Padding id.
  """

  def __init__(
    self,
    a_seqs: Sequence[Sequence[int]],
    b_seqs: Sequence[Sequence[int]],
    *,
    batch_size: int,
    lengths: Sequence[int],
    seed: int,
    scores: Sequence[float] | None = None,
    sort_window_batches: int = 64,
    process_index: int = 0,
    process_count: int = 1,
    pad_id: int = 0,
  ):
    if len(a_seqs) != len(b_seqs):
      raise ValueError(f'{len(a_seqs)} first vs {len(b_seqs)} second sentences')
    if batch_size % process_count:
      raise ValueError(
        f'global batch {batch_size} is not divisible by process_count {process_count}'
      )
    if not 0 <= process_index < process_count:
      raise ValueError(f'process_index {process_index} not in [0, {process_count})')
    if len(a_seqs) < batch_size:
      raise ValueError(f'{len(a_seqs)} pairs are fewer than one global batch of {batch_size}')
    self.a, self.b = PackedSequences(a_seqs), PackedSequences(b_seqs)
    self.lengths = tuple(int(n) for n in lengths)
    for side in (self.a, self.b):
      fit_length(int(side.lengths.max()), self.lengths)  # Raises if too long.
    self.scores = None if scores is None else np.asarray(scores, dtype=np.float32)
    self.num_examples = len(a_seqs)
    self.batch_size, self.seed = batch_size, seed
    self.sort_window_batches = sort_window_batches
    self.local_batch_size = batch_size // process_count
    self.process_index, self.pad_id = process_index, pad_id
    # Bucket index of each side: the sort key is the pair's batch shape.
    nb = len(self.lengths)
    self._shape_key = np.searchsorted(self.lengths, self.a.lengths) * nb + np.searchsorted(
      self.lengths, self.b.lengths
    )
    self.steps_per_epoch = self.num_examples // batch_size
    self._leftover = self.num_examples % batch_size
    self._carried: list[np.ndarray] = []  # Leftovers of epochs 0, 1, ...
    self._plans: dict[int, np.ndarray] = {}

  # ----------------------------------------------------------- epochs
  def epoch_start(self, epoch: int) -> int:
    """First global step of `epoch`."""
    return epoch * self.steps_per_epoch

  def epoch_of(self, step: int) -> int:
    """The epoch that global step `step` belongs to."""
    return step // self.steps_per_epoch

  def _pool(self, epoch: int) -> np.ndarray:
    """Epoch's examples: last epoch's leftovers, then the rest shuffled."""
    carried_in = self.carried_over(epoch - 1)
    order = np.random.default_rng([self.seed, epoch, 0]).permutation(self.num_examples)
    rest = order[~np.isin(order, carried_in)]
    return np.concatenate([carried_in, rest])

  def carried_over(self, epoch: int) -> np.ndarray:
    """Example indices that `epoch` leaves out, sure to be trained in epoch+1."""
    if epoch < 0:
      return np.zeros(0, np.int64)
    for e in range(len(self._carried), epoch + 1):  # Replay the chain.
      self._carried.append(self._pool(e)[self.num_examples - self._leftover :])
    return self._carried[epoch]

  def epoch_order(self, epoch: int) -> np.ndarray:
    """Example indices of all of `epoch`'s batches, concatenated."""
    if epoch not in self._plans:
      pool = self._pool(epoch)[: self.num_examples - self._leftover]
      window = self.sort_window_batches * self.batch_size
      if window > 0:
        for start in range(0, len(pool), window):
          part = pool[start : start + window]
          pool[start : start + window] = part[np.argsort(self._shape_key[part], kind='stable')]
      batches = pool.reshape(-1, self.batch_size)
      rng = np.random.default_rng([self.seed, epoch, 1])
      self._plans = {epoch: batches[rng.permutation(len(batches))].reshape(-1)}
    return self._plans[epoch]

  # ---------------------------------------------------------- batches
  def global_indices(self, step: int) -> np.ndarray:
    """Example indices of the global batch at `step` (all processes)."""
    if step < 0:
      raise ValueError(f'step must be >= 0, got {step}')
    epoch = self.epoch_of(step)
    j = step - self.epoch_start(epoch)
    return self.epoch_order(epoch)[j * self.batch_size : (j + 1) * self.batch_size]

  def shape_at(self, step: int) -> tuple[int, int]:
    """(La, Lb): the padded lengths of the batch at `step`."""
    rows = self.global_indices(step)
    return (
      fit_length(int(self.a.lengths[rows].max()), self.lengths),
      fit_length(int(self.b.lengths[rows].max()), self.lengths),
    )

  def local_indices(self, step: int) -> np.ndarray:
    """This process's contiguous block of the global batch at `step`."""
    start = self.process_index * self.local_batch_size
    return self.global_indices(step)[start : start + self.local_batch_size]

  def batch_at(self, step: int) -> Batch:
    """This process's rows of the batch at global step `step`.

    Returns:
      a_ids, a_mask: int32 [B / process_count, La]; b_ids, b_mask likewise
      with Lb; score: float32 [B / process_count] when scores were given.
    """
    la, lb = self.shape_at(step)
    rows = self.local_indices(step)
    a_ids, a_mask = self.a.pad(rows, la, self.pad_id)
    b_ids, b_mask = self.b.pad(rows, lb, self.pad_id)
    batch = {'a_ids': a_ids, 'a_mask': a_mask, 'b_ids': b_ids, 'b_mask': b_mask}
    if self.scores is not None:
      batch['score'] = self.scores[rows]
    return batch

  def padding_efficiency(self, num_steps: int, start_step: int = 0) -> float:
    """Real / computed tokens over steps [start_step, start_step+num_steps)."""
    real = computed = 0
    for step in range(start_step, start_step + num_steps):
      rows = self.global_indices(step)
      la, lb = self.shape_at(step)
      real += int(self.a.lengths[rows].sum() + self.b.lengths[rows].sum())
      computed += len(rows) * (la + lb)
    return real / max(computed, 1)
