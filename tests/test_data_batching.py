"""Tests of pete_jax.data batching: shapes, coverage, resume, multi-host."""

import os

os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=8')

import collections

import numpy as np
import pytest

from pete_jax.data import batching

LENGTHS = (4, 8, 16)


def _pairs(n, seed=0, max_len=16):
  """Sequences that name their example: a = [i, i, ...], b = [-i ...]+offset.

  Lengths are skewed (mostly short, a few long) as in NLI data.
  """
  rng = np.random.default_rng(seed)
  la = np.minimum(rng.geometric(0.25, n) + 1, max_len)
  lb = np.minimum(rng.geometric(0.4, n) + 1, max_len)
  a = [[i + 1] * int(k) for i, k in enumerate(la)]
  b = [[100_000 + i] * int(k) for i, k in enumerate(lb)]
  return a, b


def _batcher(a, b, **kwargs):
  args = dict(batch_size=8, lengths=LENGTHS, seed=0, sort_window_batches=4)
  args.update(kwargs)
  return batching.PairBatcher(a, b, **args)


def _rows_of(batch):
  """Example index of each row, read back from the ids."""
  return (batch['a_ids'][:, 0] - 1).tolist()


def test_batch_content_shapes_and_no_truncation():
  a, b = _pairs(203)
  batcher = _batcher(a, b)
  for step in range(60):
    batch = batcher.batch_at(step)
    assert set(batch) == {'a_ids', 'a_mask', 'b_ids', 'b_mask'}
    assert all(v.dtype == np.int32 and v.shape[0] == 8 for v in batch.values())
    rows = _rows_of(batch)
    assert rows == batcher.global_indices(step).tolist()
    for side, seqs in (('a', a), ('b', b)):
      ids, mask = batch[f'{side}_ids'], batch[f'{side}_mask']
      longest = max(len(seqs[r]) for r in rows)
      assert ids.shape[1] == min(n for n in LENGTHS if n >= longest)
      for row, r in enumerate(rows):
        n = len(seqs[r])
        assert ids[row, :n].tolist() == seqs[r]  # Nothing cut.
        assert mask[row].tolist() == [1] * n + [0] * (ids.shape[1] - n)
        assert not ids[row, n:].any()


def test_every_example_once_per_epoch_with_carry_over():
  n, batch_size = 203, 8  # 203 % 8 = 3 examples left out of each epoch.
  a, b = _pairs(n)
  batcher = _batcher(a, b, batch_size=batch_size)
  assert batcher.steps_per_epoch == 25
  seen, held_count = collections.Counter(), collections.Counter()
  epochs = 6
  for epoch in range(epochs):
    steps = range(batcher.epoch_start(epoch), batcher.epoch_start(epoch + 1))
    rows = np.concatenate([batcher.global_indices(s) for s in steps]).tolist()
    assert len(rows) == len(set(rows)) == n - 3  # No repeats in an epoch.
    held = set(batcher.carried_over(epoch).tolist())
    assert len(held) == 3 and set(rows) == set(range(n)) - held
    # What the previous epoch left out is trained in this one.
    assert set(batcher.carried_over(epoch - 1).tolist()) <= set(rows)
    seen.update(rows)
    held_count.update(held)
  # Nothing is lost: an example misses exactly the epochs it was held from.
  assert all(seen[i] == epochs - held_count[i] for i in range(n))
  assert batcher.epoch_of(batcher.epoch_start(3)) == 3
  assert batcher.epoch_of(batcher.epoch_start(3) - 1) == 2
  # A fresh batcher asked for a late epoch first replays the same chain.
  late = _batcher(a, b, batch_size=batch_size)
  np.testing.assert_array_equal(late.batch_at(140)['a_ids'], batcher.batch_at(140)['a_ids'])


def test_resume_gives_the_uninterrupted_batches():
  a, b = _pairs(150)
  scores = np.linspace(0, 5, 150)
  uninterrupted = _batcher(a, b, scores=scores, seed=3)
  reference = [uninterrupted.batch_at(s) for s in range(70)]  # Several epochs, in order.
  restarted = _batcher(a, b, scores=scores, seed=3)  # A new process, starting at step 33.
  for step, expected in enumerate(reference[33:], start=33):
    batch = restarted.batch_at(step)
    assert batch.keys() == expected.keys()
    for key in batch:
      np.testing.assert_array_equal(batch[key], expected[key])
  np.testing.assert_allclose(reference[5]['score'], scores[_rows_of(reference[5])], rtol=1e-6)
  other_seed = _batcher(a, b, seed=4).batch_at(0)
  assert _rows_of(other_seed) != _rows_of(reference[0])


def test_multi_host_shares_concatenate_to_the_global_batch():
  a, b = _pairs(100)
  whole = _batcher(a, b, batch_size=16)
  shares = [_batcher(a, b, batch_size=16, process_index=p, process_count=4) for p in range(4)]
  for step in (0, 5, 11, 40):
    expected = whole.batch_at(step)
    parts = [s.batch_at(step) for s in shares]
    assert all(p['a_ids'].shape[0] == 4 for p in parts)
    for key in expected:
      np.testing.assert_array_equal(np.concatenate([p[key] for p in parts]), expected[key])
  with pytest.raises(ValueError, match='not divisible'):
    _batcher(a, b, batch_size=10, process_count=4)


def test_bucketing_beats_max_len_padding_and_efficiency_is_exact():
  a, b = _pairs(400, max_len=16)
  sorted_batches = _batcher(a, b, sort_window_batches=16)
  random_batches = _batcher(a, b, sort_window_batches=0)
  padded = _batcher(a, b, lengths=(16,))
  steps = sorted_batches.epoch_start(1)
  eff = {
    name: bt.padding_efficiency(steps)
    for name, bt in (('sorted', sorted_batches), ('random', random_batches), ('padded', padded))
  }
  assert eff['sorted'] > eff['random'] > eff['padded']
  batches = [padded.batch_at(s) for s in range(steps)]
  assert {x['a_ids'].shape[1] for x in batches} == {16}
  real = sum(len(a[i]) + len(b[i]) for i in range(400))
  carried = padded.carried_over(0)
  real -= sum(len(a[i]) + len(b[i]) for i in carried)
  assert sum(int(x['a_mask'].sum() + x['b_mask'].sum()) for x in batches) == real
  assert eff['padded'] == pytest.approx(real / (steps * 8 * 32))


def test_bad_inputs_are_refused():
  a, b = _pairs(20)
  with pytest.raises(ValueError, match='does not fit'):
    _batcher(a + [[1] * 17], b + [[2]])
  with pytest.raises(ValueError, match='fewer than one global batch'):
    _batcher(a[:5], b[:5])
  with pytest.raises(ValueError, match='first vs'):
    _batcher(a, b[:-1])


def test_bucket_lengths():
  assert batching.bucket_lengths(128, (16, 32, 64, 128)) == (16, 32, 64, 128)
  assert batching.bucket_lengths(48, (16, 32, 64, 128)) == (16, 32, 48)
  assert batching.bucket_lengths(128, (16, 32), True) == (128,)


def test_pad_batch():
  seqs = [[5, 6, 7], [8], [9, 10, 11, 12, 13]]
  ids, mask = batching.pad_batch(seqs, LENGTHS)
  assert ids.tolist() == [
    [5, 6, 7, 0, 0, 0, 0, 0],
    [8, 0, 0, 0, 0, 0, 0, 0],
    [9, 10, 11, 12, 13, 0, 0, 0],
  ]
  assert mask.sum(axis=1).tolist() == [3, 1, 5] and mask.dtype == np.int32
  assert batching.pad_batch(seqs, 6)[0].shape == (3, 6)
  with pytest.raises(ValueError, match='does not fit'):
    batching.pad_batch(seqs, 4)
