"""Tests of the rare-id analysis (experiments/rare_ids.py) on synthetic predictions."""

import os
import shutil
import types

import numpy as np
import pytest

from experiments import jobs, rare_ids, sweeps
from pete_jax import files
from pete_jax.data.records import SentencePair


def test_rarest_counts_take_the_rarest_token_of_either_sentence():
  counts = np.array([100, 0, 5, 20])
  rarest = rare_ids.rarest_counts(counts, [[0, 3], [0, 1], [0]], [[0, 2], [3], [3]])
  np.testing.assert_array_equal(rarest, [5, 0, 20])
  masks = rare_ids.part_masks(rarest)
  assert masks['never seen'].tolist() == [False, True, False]
  assert masks['seen 1-9 times'].tolist() == [True, False, False]
  assert masks['seen 10+ times'].tolist() == [False, False, True]
  assert masks['all pairs'].all()


def _synthetic(n: int = 200):
  """Fourier tracks the gold score everywhere; the random code only on the never-seen half."""
  rng = np.random.default_rng(0)
  gold = rng.uniform(0, 5, n)
  rarest = np.where(np.arange(n) < n // 2, 0, 50)
  noise = lambda: rng.normal(0, 0.5, (2, n))
  random_code = gold + noise()
  random_code[:, n // 2 :] = rng.normal(0, 1, (2, n - n // 2))
  cosines = {rare_ids.REFERENCE: gold + noise(), 'random code + MLP': random_code}
  return cosines, gold, rare_ids.part_masks(rarest)


def test_compare_finds_where_the_reference_leads(monkeypatch):
  monkeypatch.setattr(rare_ids, 'BOOTSTRAP_SAMPLES', 200)
  cosines, gold, masks = _synthetic()
  result = rare_ids.compare(cosines, gold, masks)
  parts = result['parts']
  assert parts['never seen']['pairs'] == 100 and 'seen 1-9 times' not in parts  # no pairs
  common = parts['seen 10+ times']['fourier_minus']['random code + MLP']
  rare = parts['never seen']['fourier_minus']['random code + MLP']
  assert common['ci95'][0] > 50  # a near-perfect ranking against noise
  assert rare['ci95'][0] < 0 < rare['ci95'][1]  # two noisy copies of the gold score tie
  (change,) = result['rare_minus_common'].values()  # no genres: the one mixed contrast
  change = change['random code + MLP']
  assert change['ci95'][1] < 0
  assert np.isclose(change['difference'], rare['difference'] - common['difference'])
  # The learned table is not among the rows: no comparison is invented for it.
  assert set(parts['all pairs']['fourier_minus']) == {'random code + MLP'}


def test_write_fills_the_readme_block_and_the_files(monkeypatch, tmp_path):
  monkeypatch.setattr(rare_ids, 'BOOTSTRAP_SAMPLES', 50)
  cosines, gold, masks = _synthetic()
  result = rare_ids.compare(cosines, gold, masks)
  (tmp_path / 'README.md').write_text(
    'a\n<!-- generated:rare_ids -->\nold\n<!-- /generated:rare_ids -->\n'
  )
  table = rare_ids.write(result, {'fourier (reference)': ['w0', 'w1']}, str(tmp_path))
  readme = (tmp_path / 'README.md').read_text()
  assert 'old' not in readme and table.splitlines()[-1] in readme
  assert '| **fourier − random code + MLP** [95% CI] |' in table
  assert '| fourier (reference) (2) |' in table
  assert (tmp_path / 'rare_ids.png').stat().st_size > 0
  assert (tmp_path / 'rare_ids.json').exists()


def test_genre_halves_split_each_genre_by_rarity():
  rarest = np.array([0, 50, 3, 9, 1, 40])
  genre = ['news', 'captions', 'news', 'captions', 'news', 'captions']
  masks, composition = rare_ids.split(rarest, genre)
  assert np.flatnonzero(masks['news: rarer half']).tolist() == [0]
  assert np.flatnonzero(masks['news: commoner half']).tolist() == [2, 4]
  assert np.flatnonzero(masks['captions: rarer half']).tolist() == [3]
  assert np.flatnonzero(masks['captions: commoner half']).tolist() == [1, 5]
  assert composition['never seen'] == {'news': 1}
  contrasts = rare_ids.contrasts(masks)
  assert contrasts['within genre (pairs-weighted mean over genres)'] == [
    ('captions: rarer half', 'captions: commoner half'),
    ('news: rarer half', 'news: commoner half'),
  ]


def test_genres_are_read_only_when_the_rows_line_up(tmp_path):
  path = tmp_path / 'dev.tsv'
  path.write_text('index\tgenre\tsentence1\tsentence2\tscore\n0\tmain-news\tA b.\tC.\t1.0\n')
  sts = types.SimpleNamespace(pairs=[SentencePair('A b.', 'C.', score=1.0)])
  assert rare_ids.genres(f'stsb_tsv:{path}', sts) == ['main-news']
  other = types.SimpleNamespace(pairs=[SentencePair('Not the same.', 'C.', score=1.0)])
  assert rare_ids.genres(f'stsb_tsv:{path}', other) is None
  assert rare_ids.genres(f'pairs_tsv:{path}', sts) is None


def test_seed_cosines_come_from_the_record_else_the_checkpoint(tmp_path, monkeypatch):
  """A fresh clone has records, not checkpoints: a record's pair cosines suffice; an older
  record without them needs its workdir (and keeps them), and a seed with neither is left out."""
  runs, records = str(tmp_path / 'runs'), str(tmp_path / 'records')
  run = next(r for r in sweeps.sweep_runs(rare_ids.SWEEP) if r.name == rare_ids.REFERENCE)
  job = lambda seed: jobs.Job(rare_ids.SWEEP, run, seed, jobs.default_steps(run), runs, '', records)
  files.write_json(job(0).record_path, {'command': '', 'pair_cosines': [0.1, 0.5, 0.9]})
  files.write_json(job(1).record_path, {'command': ''})  # trained before records kept them
  os.makedirs(os.path.join(job(1).workdir, 'checkpoints'))
  files.write_json(job(2).record_path, {'command': ''})  # and its workdir is elsewhere
  sources = rare_ids.seed_sources(runs, records)
  assert sources == {
    rare_ids.REFERENCE: [(job(0).record_path, job(0).workdir), (job(1).record_path, job(1).workdir)]
  }
  monkeypatch.setattr(rare_ids, 'workdir_cosines', lambda workdir, sts: np.array([0.3, 0.2, 0.1]))
  sts = types.SimpleNamespace(pairs=[None] * 3, scores=[1.0, 2.0, 3.0])
  cosines = rare_ids.cosines_of(sources, sts)
  np.testing.assert_allclose(cosines[rare_ids.REFERENCE], [[0.1, 0.5, 0.9], [0.3, 0.2, 0.1]])
  assert files.read_json(job(1).record_path)['pair_cosines'] == [0.3, 0.2, 0.1]  # kept
  shutil.rmtree(runs)  # the checkpoints are gone: the records are enough now
  assert rare_ids.seed_sources(runs, records) == sources
  short = types.SimpleNamespace(pairs=[None] * 4, scores=[1.0] * 4)
  with pytest.raises(ValueError, match='another number of pairs'):
    rare_ids.cosines_of(sources, short)
