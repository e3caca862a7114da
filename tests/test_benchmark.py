"""experiments/benchmark.py (and experiments/bench/): the quick mode runs every section and
writes well-formed results.

Only structure and sanity (positive, finite) are checked: timings are never asserted.
"""

import json
import math

import numpy as np
import pytest

from experiments import benchmark
from experiments.bench.batches import table1_config
from experiments.bench.flops import dense_flops_per_token, forward_flops
from experiments.bench.report import provenance, readme_summary, write_outputs
from experiments.bench.targets import targets


def _positive_finite(value, where):
  assert isinstance(value, (int, float)), where
  assert math.isfinite(value) and value > 0, f'{where} = {value}'


@pytest.fixture(scope='module')
def quick_run(tmp_path_factory, tiny_data_dir):
  out = tmp_path_factory.mktemp('bench')
  # Every section but peers (13 models to compile: its own run, peers_run).
  sections = ','.join(s for s in benchmark.SECTIONS if s != 'peers')
  with pytest.MonkeyPatch.context() as mp:  # the tests' own data, not ../shared/data
    mp.setenv('PETE_DATA_DIR', str(tiny_data_dir))
    benchmark.main(['--quick', f'--sections={sections}', f'--out_dir={out}'])
  with open(out / 'benchmark.json', encoding='utf-8') as f:
    results = json.load(f)
  return out, results


@pytest.fixture(scope='module')
def peers_run(tmp_path_factory, tiny_data_dir):
  out = tmp_path_factory.mktemp('bench_peers')
  with pytest.MonkeyPatch.context() as mp:
    mp.setenv('PETE_DATA_DIR', str(tiny_data_dir))
    benchmark.main(['--quick', '--sections=peers', f'--out_dir={out}'])
  with open(out / 'benchmark.json', encoding='utf-8') as f:
    results = json.load(f)
  return out, results


def test_peers_section(peers_run):
  """One row per embedding of the embedding_peers sweep (SentencePiece rows left out)."""
  from experiments import jobs, run, sweeps  # pylint: disable=import-outside-toplevel

  out, results = peers_run
  rows = results['peers']
  peers = {r.name: r for r in sweeps.embedding_peers() if 'SentencePiece' not in r.name}
  for same_module in ('learned, dropout 0.1 (Table 1)', 'learned, dropout 0.1, torch init N(0, 1)'):
    del peers[same_module]  # the module of 'learned, dropout 0'
  assert [r['name'] for r in rows] == list(peers)
  for r in rows:  # each timed as the sweep trains it
    (job,) = run.jobs_of('embedding_peers', peers[r['name']], (0,), 0, 'runs')
    assert r['embedding'] == jobs.job_config(job).model.embedding, r['name']
  assert {r['vocab_size'] for r in rows} == {8192}
  for r in rows:
    for key in (
      'embedding_params',
      'num_params',
      'step_time_s_median',
      'step_time_over_reference',
      'peak_memory_bytes',
      'state_bytes',
      'inference_peak_memory_bytes',
    ):
      _positive_finite(r[key], f'{r["name"]} {key}')
    assert len(r['step_times_s']) == 1
    assert r['embedding_params'] < r['num_params']
  by_name = {r['name']: r for r in rows}
  assert by_name['fourier (reference)']['step_time_over_reference'] == 1.0
  learned, fourier = by_name['learned, dropout 0'], by_name['fourier (reference)']
  assert learned['embedding'] == 'learned' and fourier['embedding'] == 'fourier'
  assert learned['embedding_params'] > fourier['embedding_params']
  assert learned['embedding_params'] >= 8192 * 32  # the table: V x d (quick d = 32)
  # Training holds the state (params + AdamW moments): more than encoding needs.
  assert learned['peak_memory_bytes'] > learned['inference_peak_memory_bytes']
  md = (out / 'benchmark.md').read_text(encoding='utf-8')
  assert '## Embedding peers: step time and memory (issue 17)' in md
  assert md.count('| 8192 | ') == len(rows)


def test_json_has_every_section(quick_run):
  _, results = quick_run
  for key in (
    'meta', 'data', 'train', 'loop', 'ops', 'breakdown', 'inference', 'vocab', 'shapes',
    'targets',
  ):  # fmt: skip
    assert key in results, key
  assert results['meta']['quick'] is True
  for key in ('load_average_start', 'load_average_end'):  # os.getloadavg(): 1, 5, 15 min
    assert len(results['meta'][key]) == 3, key
  _positive_finite(results['meta']['matmul_peak']['flops'], 'matmul peak')
  assert 0 < results['data']['padding_efficiency_epoch'] <= 1


def test_train_rows(quick_run):
  _, results = quick_run
  rows = [r for r in results['train'] if 'pairs_per_s' in r]
  # Each model, the official code's work (FFN output dropped), and with torch installed
  # (the convert extra) the PyTorch peer of each.
  models = {'fourier_1x256', 'learned_1x256', 'fourier_1x256_dropffn'}
  peer = results['meta']['peer'] is not None
  assert peer == _has_torch()
  names = models | ({'torch_' + m for m in models} if peer else set())
  assert {(r['config'], r['padding']) for r in rows} == {
    (n, p) for n in names for p in ('bucketed', 'padded')
  }
  for r in rows:
    assert r['framework'] == ('pytorch' if r['config'].startswith('torch_') else 'jax')
    jax_only = ('peak_memory_bytes', 'state_bytes') if r['framework'] == 'jax' else ()
    for key in jax_only + (
      'step_time_s_median',
      'pairs_per_s',
      'real_tokens_per_s',
      'padding_efficiency',
      'flops_per_step_computed',
      'flops_per_step_real',
      'mfu_computed',
      'mfu_real',
      'num_params',
      'matmul_peak_flops',
    ):
      _positive_finite(r[key], f'{r["config"]} {r["padding"]} {key}')
    assert len(r['step_times_s']) == r['steps'] == (2 if r['padding'] == 'bucketed' else 1)
    assert r['flops_per_step_real'] <= r['flops_per_step_computed']
    assert r['padding_efficiency'] <= 1
  padded = [r for r in rows if r['padding'] == 'padded']
  by_config = {r['config']: r for r in padded}
  # The dropped FFN is removed by the compiler: fewer FLOPs for the same batch.
  assert (
    by_config['fourier_1x256_dropffn']['flops_per_step_computed']
    < by_config['fourier_1x256']['flops_per_step_computed']
  )
  if peer:  # the same model in both frameworks: the same parameter count
    assert (
      by_config['torch_learned_1x256']['num_params'] == by_config['learned_1x256']['num_params']
    )
    assert (
      by_config['torch_fourier_1x256']['num_params'] == by_config['fourier_1x256']['num_params']
    )
    vs = [r for r in results['train'] if r['config'].startswith('vs_peer_')]
    assert {(r['config'], r['padding']) for r in vs} == {
      ('vs_peer_' + m, p) for m in models for p in ('bucketed', 'padded')
    }
  assert all(r['padding_efficiency'] < 0.5 for r in padded)  # NLI sentences are short.
  ratios = [r for r in results['train'] if r['config'].startswith('ratio_')]
  assert len(ratios) == 2
  for r in ratios:
    _positive_finite(r['fourier_over_learned_total'], 'ratio')


def _has_torch() -> bool:
  try:
    import torch  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
  except ImportError:
    return False
  return True


def test_loop_section(quick_run):
  _, results = quick_run
  loop = results['loop']
  assert loop['steps'] == 3
  for key in ('loop_pairs_per_s', 'step_pairs_per_s', 'loop_over_step', 'loop_wall_s'):
    _positive_finite(loop[key], key)
  assert any(t['target'].startswith('training loop >= 0.9') for t in results['targets'])


def test_ops_section(quick_run):
  """Every operation timed in JAX, beside PyTorch when installed, and on one core."""
  out, results = quick_run
  ops = results['ops']
  assert ops['shapes']['tokens'] == ops['shapes']['sentences'] * ops['shapes']['length']
  assert {r['op'] for r in ops['rows']} >= {'GELU (erf)', 'attention forward + backward'}
  for r in ops['rows']:
    _positive_finite(r['jax_s'], r['op'])
    if _has_torch():
      _positive_finite(r['torch_over_jax'], r['op'])
    if 'jax_one_core_s' in r:
      _positive_finite(r['two_core_speedup'], r['op'])
  assert '## Operations of the step' in (out / 'benchmark.md').read_text()


def test_interleaved_settle_runs_untimed_calls_before_each_timed_one():
  from experiments.bench.measure import interleaved  # pylint: disable=import-outside-toplevel

  calls = []
  times = interleaved(
    {n: (lambda i, n=n: calls.append((n, i)) or 1.0) for n in 'ab'}, 2, warmup=0, settle=1
  )
  assert times == {'a': [1.0, 1.0], 'b': [1.0, 1.0]}
  assert calls == [('a', 0), ('a', 0), ('b', 0), ('b', 0), ('b', 1), ('b', 1), ('a', 1), ('a', 1)]


def test_breakdown_inference_scaling(quick_run):
  _, results = quick_run
  b = results['breakdown']['1x256 at 16x16']
  for v in list(b['step_s_median'].values()) + list(b['sub_s_median'].values()):
    _positive_finite(v, 'breakdown time')
  # The basis is one sin and one cos fusion; the step encodes two sides, each computing it
  # once or (XLA duplicating the fusion into the MLP's forward and weight-gradient matmuls) twice.
  assert b['hlo_ops_basis_only'] == {'sine': 1, 'cosine': 1}
  ops = b['hlo_ops_train_step_fourier_basis']
  assert ops['sine'] == ops['cosine'] and ops['sine'] in (2, 4)
  for r in results['inference']:
    for key in (
      'fourier_table_sentences_per_s',
      'fourier_on_the_fly_sentences_per_s',
      'learned_sentences_per_s',
      'table_over_learned',
    ):
      _positive_finite(r[key], key)
  vocab = results['vocab']
  assert {r['vocab_size'] for r in vocab} == {30522, 65536}
  for r in vocab:
    _positive_finite(r['step_time_s_median'], 'vocab step')
  learned = sorted((r for r in vocab if r['embedding'] == 'learned'), key=lambda r: r['vocab_size'])
  fourier = [r for r in vocab if r['embedding'] == 'fourier']
  assert learned[1]['num_params'] > learned[0]['num_params']  # the table grows with V ...
  assert len({r['num_params'] for r in fourier}) == 1  # ... the Fourier model does not.
  for r in results['shapes']:
    _positive_finite(r['step_time_s_median'], 'shape step')
  for t in results['targets']:
    assert t['met'] in (True, False, None)


def test_markdown_and_plot(quick_run):
  out, results = quick_run
  md = (out / 'benchmark.md').read_text(encoding='utf-8')
  for heading in (
    '## Training step',
    '## Breakdown 1x256',
    '## Inference',
    '## Vocabulary scaling',
    '## Batch and length scaling',
    '## Targets',
    '## Running it',
  ):
    assert heading in md, heading
  assert '--compute_dtype=bfloat16' in md
  assert '1-min load average at start / end ' in md
  assert (out / 'benchmark_vocab.png').stat().st_size > 0
  # One row in the step table, and one against the PyTorch peer when it ran.
  rows = [r for r in results['train'] if r['config'] in ('fourier_1x256', 'vs_peer_fourier_1x256')]
  assert md.count('| fourier_1x256 |') == len(rows)


def test_readme_summary_lists_every_target(quick_run):
  _, results = quick_run
  summary = readme_summary(results)
  assert summary.startswith('From `python -m experiments.benchmark --quick')
  assert summary.count('\n| ') == len(results['targets']) + 1  # the header row, then one per target


def test_markdown_is_regenerated_entirely(tmp_path):
  results = {'meta': {'date': 'x'}, 'train': []}
  (tmp_path / 'benchmark.md').write_text('old hand-written text\n')
  write_outputs(results, str(tmp_path))
  text = (tmp_path / 'benchmark.md').read_text()
  assert 'old hand-written text' not in text
  assert (
    text.startswith('# Benchmark') and 'Generated by `python -m experiments.benchmark` on x' in text
  )
  assert '## Running it' in text


def test_flop_count_matches_hand_count():
  config = table1_config('fourier_1x256')
  d, m = 256, 1024
  per_token = 2 * d * d + (2 * d * 3 * d + 2 * d * d + 2 * d * 2 * m + 2 * m * d)
  assert dense_flops_per_token(config.model) == per_token
  lengths = np.array([3, 5])
  real = forward_flops(config.model, lengths, None)
  assert real == per_token * 8 + 4 * d * (9 + 25) + 2 * 2 * d * d
  padded = forward_flops(config.model, lengths, 16)
  assert padded == per_token * 32 + 4 * d * 2 * 256 + 2 * 2 * d * d
  config.model.drop_ffn_output = True
  assert dense_flops_per_token(config.model) == per_token - 2 * d * 2 * m - 2 * m * d


def test_peer_targets_compare_the_same_model_and_the_official_way():
  """Per token: the same model and shapes in both frameworks; end to end: pete_jax bucketed
  against the peer padded to 128 (the official code's way) and given the same buckets."""
  row = lambda config, padding, pairs: {
    'config': config,
    'framework': 'pytorch' if config.startswith('torch_') else 'jax',
    'padding': padding,
    'pairs_per_s': pairs,
    'size': '1x256',
    'mfu_computed': 0.55,
  }
  results = {
    'train': [
      row('fourier_1x256', 'bucketed', 300.0),
      row('torch_fourier_1x256', 'bucketed', 250.0),
      row('fourier_1x256', 'padded', 60.0),
      row('torch_fourier_1x256', 'padded', 50.0),
      row('learned_1x256', 'bucketed', 130.0),  # no peer row: no peer target
    ]
  }
  by_name = {t['target']: t for t in targets(results)}
  bucketed = by_name['per computed token >= 1.0 x PyTorch (fourier_1x256, bucketed, same shapes)']
  assert bucketed['value'] == pytest.approx(1.2) and bucketed['met']
  same_buckets = by_name['end to end >= 1.5 x PyTorch given the same buckets (fourier_1x256)']
  assert same_buckets['value'] == pytest.approx(1.2) and same_buckets['met'] is False
  official_way = by_name[
    'end to end >= 5 x PyTorch padded to 128 (fourier_1x256, pete_jax bucketed)'
  ]
  assert official_way['value'] == pytest.approx(6.0) and official_way['met']
  assert by_name['MFU >= 50% (fourier_1x256, padded to 128)']['met']
  assert not any('learned_1x256' in t for t in by_name if 'PyTorch' in t)


def test_merged_sections_name_the_command_that_measured_each(tmp_path):
  """A later run of some sections keeps the others, and the header credits each run."""
  old = {
    'meta': {
      'argv': '--fresh',
      'date': 'D1',
      'load_average_start': [1.0, 0, 0],
      'load_average_end': [2.0, 0, 0],
    },
    'train': [],
    'inference': [],
  }
  later = {
    'argv': '--sections=train',
    'date': 'D2',
    'load_average_start': [0.5, 0, 0],
    'load_average_end': [0.7, 0, 0],
  }
  runs = benchmark.section_runs(old, ['train'], later)
  assert runs['train'] == later and runs['inference']['date'] == 'D1'
  text = provenance({'section_runs': runs})
  assert '`python -m experiments.benchmark --sections=train` (train) on D2' in text
  assert (
    '`python -m experiments.benchmark --fresh` (inference) on D1, 1-min load average at '
    'start / end 1.0 / 2.0' in text
  )


def test_report_only_rewrites_the_markdown_from_the_json(quick_run, tmp_path):
  out, results = quick_run
  (tmp_path / 'benchmark.json').write_text((out / 'benchmark.json').read_text())
  again = benchmark.main(['--report_only', '--quick', f'--out_dir={tmp_path}'])
  assert again['meta'] == results['meta']  # nothing measured, nothing re-dated
  assert (tmp_path / 'benchmark.md').read_text() == (out / 'benchmark.md').read_text()
  with pytest.raises(SystemExit, match='no results'):
    benchmark.main(['--report_only', f'--out_dir={tmp_path / "empty"}'])
