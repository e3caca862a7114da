"""Token-id re-ordering: the experiment on whether id order carries structure.

PETE embeds a token through a fixed function of its id, so the id order
matters in a way it does not for a lookup table. WordPiece/BPE ids are
roughly frequency ordered; 'frequency' makes that exact on the training
corpus and 'random' destroys it (the control). Special ids (pad 0, unk,
markers) keep their ids. The mapping is a permutation of 0..V-1, saved in the
workdir so evaluation and resumed runs use the same ids.
"""

from __future__ import annotations

import itertools
import json
import os
from typing import Sequence

from absl import logging
import ml_collections
import numpy as np

from pete_jax import files

from pete_jax.data.tokenizers import Tokenizer

ID_ORDERS = ('native', 'frequency', 'random')
ID_ORDER_FILENAME = 'id_order.json'
# Length used to count tokens: long enough that nothing is truncated.
_COUNT_MAX_LEN = 1 << 20


def _permutation(ranked: np.ndarray, vocab_size: int, special_ids: Sequence[int]) -> np.ndarray:
  """Gives the free ids, in ascending order, to `ranked` non-special ids."""
  new_id = np.arange(vocab_size, dtype=np.int64)
  free = np.setdiff1d(new_id, np.asarray(special_ids, dtype=np.int64))
  new_id[ranked] = free
  return new_id


def _non_special(vocab_size: int, special_ids: Sequence[int]) -> np.ndarray:
  return np.setdiff1d(np.arange(vocab_size), np.asarray(special_ids))


def frequency_order(counts: np.ndarray, special_ids: Sequence[int]) -> np.ndarray:
  """new_id[native_id]: most frequent non-special token gets the lowest free id.

  Ties (e.g. tokens never seen) keep their native relative order.
  """
  ids = _non_special(len(counts), special_ids)
  ranked = ids[np.argsort(-counts[ids], kind='stable')]
  return _permutation(ranked, len(counts), special_ids)


def random_order(vocab_size: int, special_ids: Sequence[int], seed: int) -> np.ndarray:
  """new_id[native_id]: a seeded random permutation fixing special ids."""
  ids = _non_special(vocab_size, special_ids)
  ranked = np.random.default_rng(seed).permutation(ids)
  return _permutation(ranked, vocab_size, special_ids)


def token_counts(tokenizer: Tokenizer, texts: Sequence[str]) -> np.ndarray:
  """How often each native id occurs in `texts` (untruncated)."""
  counts = np.zeros(tokenizer.vocab_size, dtype=np.int64)
  for start in range(0, len(texts), 65536):
    seqs = tokenizer.encode(texts[start : start + 65536], _COUNT_MAX_LEN)
    flat = np.fromiter(itertools.chain.from_iterable(seqs), dtype=np.int64)
    counts += np.bincount(flat, minlength=tokenizer.vocab_size)
  return counts


class ReorderedTokenizer:
  """A tokenizer whose ids are mapped through a permutation.

  Attributes:
    base: The native tokenizer.
    new_id: int64 [V]; new_id[native_id] is the id the model sees.
    order: 'frequency' or 'random'.
  """

  def __init__(self, base: Tokenizer, new_id: np.ndarray, order: str):
    new_id = np.asarray(new_id, dtype=np.int64)
    if sorted(new_id.tolist()) != list(range(base.vocab_size)):
      raise ValueError('id order is not a permutation of the vocabulary')
    if any(new_id[s] != s for s in base.special_ids):
      raise ValueError('id order moves a special id')
    self.base, self.new_id, self.order = base, new_id, order
    self.native_id = np.argsort(new_id)  # The inverse permutation.
    self.vocab_size = base.vocab_size
    self.pad_id = base.pad_id
    self.special_ids = base.special_ids
    self.fingerprint = f'{base.fingerprint}:{order}'

  def encode(self, texts: Sequence[str], max_len: int) -> list[list[int]]:
    seqs = self.base.encode(texts, max_len)
    flat = np.fromiter(itertools.chain.from_iterable(seqs), dtype=np.int64)
    mapped = self.new_id[flat].tolist()
    out, start = [], 0
    for seq in seqs:
      out.append(mapped[start : start + len(seq)])
      start += len(seq)
    return out

  def decode(self, ids: Sequence[int]) -> str:
    return self.base.decode(self.native_id[np.asarray(ids, dtype=np.int64)])


def apply_id_order(
  base: Tokenizer,
  config: ml_collections.ConfigDict,
  workdir: str | None,
  training_texts: Sequence[str] | None = None,
) -> Tokenizer:
  """Wraps `base` with `config.tokenizer.id_order`, loading or saving it.

  A saved mapping is reused only if it was made for the same order, seed
  (for 'random') and vocabulary; otherwise this raises rather than silently
  evaluating with different ids than training used.
  """
  order = config.tokenizer.id_order  # one of ID_ORDERS (configuration.validate)
  if order == 'native':
    return base
  if not workdir:
    raise ValueError(f'id_order={order!r} needs a workdir to save its mapping')
  seed = int(config.tokenizer.id_order_seed)
  expect = {
    'id_order': order,
    'seed': seed if order == 'random' else None,
    'vocab_size': base.vocab_size,
    'tokenizer': base.fingerprint,
  }
  path = os.path.join(workdir, ID_ORDER_FILENAME)
  if os.path.exists(path):
    with open(path) as f:
      record = json.load(f)
    found = {k: record.get(k) for k in expect}
    if found != expect:
      raise ValueError(
        f'{path} was made for {found}, but this run has '
        f'{expect}; use a fresh workdir or delete the file'
      )
    logging.info('reusing token id order %s', path)
    return ReorderedTokenizer(base, np.asarray(record['new_id']), order)
  if order == 'random':
    new_id = random_order(base.vocab_size, base.special_ids, seed)
  elif training_texts is None:
    raise ValueError(
      f'no {path} and no training text to rank ids by frequency (pass training_texts)'
    )
  else:
    new_id = frequency_order(token_counts(base, training_texts), base.special_ids)
  os.makedirs(workdir, exist_ok=True)
  files.write_json(path, {**expect, 'new_id': new_id.tolist()}, indent=None)
  logging.info('saved token id order (%s) -> %s', order, path)
  return ReorderedTokenizer(base, new_id, order)
