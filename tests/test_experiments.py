"""Tests of the experiment runner (experiments/run.py) and the Colab notebook in TINY mode."""

import ast
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

from experiments import headlines, jobs, readme_blocks, run, sweeps, tables
from pete_jax import files

REPO = pathlib.Path(__file__).resolve().parents[1]
TINY_BUDGET = 'batch=8,max_len=16,warmup=1'
TINY_SWEEP = {
  'tiny': lambda: [
    sweeps.Run(
      'tiny smoke', 'smoke', (('model.d_model', 16),), paper_spearman=74.93, paper_params='1.1M'
    )
  ]
}


@pytest.fixture
def tiny_sweep(monkeypatch, tmp_path, tiny_data):
  monkeypatch.chdir(REPO)
  # The training subprocess needs one device only: it compiles faster than eight.
  monkeypatch.setenv('XLA_FLAGS', '--xla_force_host_platform_device_count=1')
  monkeypatch.setattr(sweeps, 'SWEEPS', {**sweeps.SWEEPS, **TINY_SWEEP})
  return {'runs_dir': str(tmp_path / 'runs'), 'results_dir': str(tmp_path / 'results')}


def test_finished_run_is_skipped(tiny_sweep, monkeypatch):
  job = jobs.Job('tiny', TINY_SWEEP['tiny']()[0], 0, 2, tiny_sweep['runs_dir'], TINY_BUDGET)
  os.makedirs(job.workdir)
  with open(os.path.join(job.workdir, 'final_metrics.json'), 'w', encoding='utf-8') as f:
    json.dump({'pretrain': {'spearman': 12.5, 'pearson': 11.0, 'num_pairs': 1500}}, f)

  def no_training(*args, **kwargs):
    raise AssertionError(f'a finished run was trained again: {args}')

  monkeypatch.setattr(jobs.subprocess, 'call', no_training)
  assert jobs.execute(job, log=lambda _: None) == 'skipped'
  path = run.run_sweep('tiny', steps=2, budget=TINY_BUDGET, **tiny_sweep)
  text = pathlib.Path(path).read_text(encoding='utf-8')
  assert '| tiny smoke | 74.93 | 12.50 (n=1) | s0: 12.50 | -62.43 |' in text
  assert f'--config=configs/reduced.py:smoke,steps=2,{TINY_BUDGET}' in text
  assert '--config.model.d_model=16' in text


def test_a_table_written_mid_run_does_not_save_a_record_without_wall_time(tiny_sweep, monkeypatch):
  """With several workers, another run's table writer can read a workdir whose
  ``final_metrics.json`` exists before the runner has written its wall time."""
  job = jobs.Job('tiny', TINY_SWEEP['tiny']()[0], 0, 2, tiny_sweep['runs_dir'], TINY_BUDGET,
                 records_dir=os.path.join(tiny_sweep['results_dir'], 'runs'))  # fmt: skip
  seen_mid_run = []

  def training_seen_by_another_writer(*args, **kwargs):
    with open(os.path.join(job.workdir, 'final_metrics.json'), 'w', encoding='utf-8') as f:
      json.dump({'pretrain': {'spearman': 12.5, 'pearson': 11.0, 'num_pairs': 1500}}, f)
    seen_mid_run.append(jobs.run_record(job))
    return 0

  monkeypatch.setattr(jobs.subprocess, 'call', training_seen_by_another_writer)
  assert jobs.execute(job, log=lambda _: None) == 'done'
  assert seen_mid_run[0]['metrics']['pretrain']['spearman'] == 12.5
  assert seen_mid_run[0]['wall_s'] is None
  saved = json.loads(pathlib.Path(job.record_path).read_text(encoding='utf-8'))
  assert saved['wall_s'] is not None and saved['machine']['cpu_count'] >= 1


def test_a_record_is_not_saved_when_runner_json_appears_while_it_is_built(tiny_sweep, monkeypatch):
  """The race behind a record saved with no wall time: a table writer reads no
  ``runner.json``, the runner writes it, then the writer decides whether to save."""
  job = jobs.Job('tiny', TINY_SWEEP['tiny']()[0], 0, 2, tiny_sweep['runs_dir'], TINY_BUDGET,
                 records_dir=os.path.join(tiny_sweep['results_dir'], 'runs'))  # fmt: skip
  os.makedirs(job.workdir)
  with open(os.path.join(job.workdir, 'final_metrics.json'), 'w', encoding='utf-8') as f:
    json.dump({'pretrain': {'spearman': 12.5, 'pearson': 11.0, 'num_pairs': 1500}}, f)
  read_json = jobs.read_json

  def runner_written_just_after_the_read(path, default=None):
    value = read_json(path, default)
    if path.endswith(jobs.RUNNER_FILE):
      with open(path, 'w', encoding='utf-8') as f:
        json.dump({'wall_s': 3.0, 'machine': {'cpu_count': 1}, 'attempts': []}, f)
    return value

  monkeypatch.setattr(jobs, 'read_json', runner_written_just_after_the_read)
  assert jobs.run_record(job)['wall_s'] is None
  assert not os.path.exists(job.record_path)
  monkeypatch.setattr(jobs, 'read_json', read_json)
  assert jobs.run_record(job)['wall_s'] == 3.0 and os.path.exists(job.record_path)


def test_a_record_is_not_saved_from_a_runner_json_older_than_the_final_metrics(tiny_sweep):
  """A resumed run: its ``runner.json`` holds the first attempt's wall time until the runner
  counts the attempt that just finished; a table writer must not save a record from it."""
  job = jobs.Job('tiny', TINY_SWEEP['tiny']()[0], 0, 2, tiny_sweep['runs_dir'], TINY_BUDGET,
                 records_dir=os.path.join(tiny_sweep['results_dir'], 'runs'))  # fmt: skip
  os.makedirs(job.workdir)
  runner = os.path.join(job.workdir, jobs.RUNNER_FILE)
  metrics = os.path.join(job.workdir, 'final_metrics.json')
  jobs.write_json(runner, {'wall_s': 100.0, 'machine': {'cpu_count': 1}, 'attempts': [{}]})
  jobs.write_json(metrics, {'pretrain': {'spearman': 12.5, 'pearson': 11.0, 'num_pairs': 1500}})
  os.utime(runner, (1_000_000, 1_000_000))  # written before the final metrics
  assert jobs.run_record(job)['wall_s'] == 100.0 and not os.path.exists(job.record_path)
  jobs.write_json(runner, {'wall_s': 1000.0, 'machine': {'cpu_count': 1}, 'attempts': [{}, {}]})
  assert jobs.run_record(job)['wall_s'] == 1000.0 and os.path.exists(job.record_path)


def test_run_record_survives_the_workdir(tiny_sweep, monkeypatch):
  """A fresh clone has the committed run records but no workdirs: nothing is retrained."""
  path = run.run_sweep('tiny', steps=2, budget=TINY_BUDGET, **tiny_sweep)
  before = json.loads(pathlib.Path(path).with_suffix('.json').read_text(encoding='utf-8'))
  (job,) = run.jobs_of(
    'tiny',
    TINY_SWEEP['tiny']()[0],
    (),
    2,
    tiny_sweep['runs_dir'],
    TINY_BUDGET,
    tiny_sweep['results_dir'],
  )
  record = json.loads(pathlib.Path(job.record_path).read_text(encoding='utf-8'))
  assert record['metrics']['pretrain']['spearman'] == before['rows'][0]['spearman']['mean']
  assert record['losses']['steps'] and len(record['losses']['loss']) == len(
    record['losses']['steps']
  )
  assert len(record['pair_cosines']) == record['metrics']['pretrain']['num_pairs']
  shutil.rmtree(tiny_sweep['runs_dir'])

  def no_training(*args, **kwargs):
    raise AssertionError(f'a recorded run was trained again: {args}')

  monkeypatch.setattr(jobs.subprocess, 'call', no_training)
  path = run.run_sweep('tiny', steps=2, budget=TINY_BUDGET, **tiny_sweep)
  after = json.loads(pathlib.Path(path).with_suffix('.json').read_text(encoding='utf-8'))
  assert after['rows'][0]['spearman'] == before['rows'][0]['spearman']


def test_record_keeps_the_vocabulary_a_sentencepiece_run_reached(tiny_sweep, monkeypatch):
  """A SentencePiece size is a soft limit: the record keeps the V the run trained with, so
  a fresh clone (no spm.model) counts the parameters the run had, not the size asked for."""
  spm = sweeps.Run('tiny spm', 'smoke', (('model.d_model', 16), ('tokenizer.kind', 'sentencepiece'),
                   ('tokenizer.spm_vocab_size', sweeps.SPM_LARGEST), ('model.embedding', 'learned')))  # fmt: skip
  monkeypatch.setitem(sweeps.SWEEPS, 'tiny_spm', lambda: [spm])
  path = run.run_sweep('tiny_spm', steps=2, budget=TINY_BUDGET, **tiny_sweep)
  before = json.loads(pathlib.Path(path).with_suffix('.json').read_text(encoding='utf-8'))
  (job,) = run.jobs_of('tiny_spm', spm, (), 2, tiny_sweep['runs_dir'], TINY_BUDGET,
                       tiny_sweep['results_dir'])  # fmt: skip
  vocab = json.loads(pathlib.Path(job.record_path).read_text(encoding='utf-8'))['vocab_size']
  assert 0 < vocab < sweeps.SPM_LARGEST
  assert before['rows'][0]['params']['vocab_size'] == vocab
  shutil.rmtree(tiny_sweep['runs_dir'])
  assert jobs.parameter_count(job) == before['rows'][0]['params']


def test_final_loss_is_the_mean_of_the_last_tenth_of_the_logged_losses():
  losses = {'steps': list(range(10, 210, 10)), 'loss': [5.0] * 18 + [1.0, 2.0]}
  assert jobs.final_loss({'losses': losses}) == 1.5
  assert jobs.final_loss({'losses': {'steps': [10], 'loss': [3.0]}}) == 3.0
  assert jobs.final_loss({'losses': {'steps': [], 'loss': []}}) is None
  assert jobs.final_loss({}) is None


def test_command_matches_in_process_config():
  job = jobs.Job('ablation', sweeps.Run('x', overrides=(('model.basis', 'legendre'),)), 3, 50)
  config = jobs.job_config(job)
  assert (config.seed, config.train.num_steps, config.model.basis) == (3, 50, 'legendre')
  assert (config.train.batch_size, config.data.max_len, config.train.warmup_steps) == (128, 48, 49)
  assert job.command[-2:] == ['--config.seed=3', '--config.model.basis=legendre']


def test_tiny_sweep_trains_and_writes_table(tiny_sweep, monkeypatch):
  """Two seeds trained by two workers at once: both land in the table."""
  monkeypatch.delenv('XLA_PYTHON_CLIENT_MEM_FRACTION', raising=False)
  assert run.worker_env(2)['XLA_PYTHON_CLIENT_MEM_FRACTION'] == '0.450'
  assert run.worker_env(1) is None
  path = run.run_sweep('tiny', (0, 1), steps=2, budget=TINY_BUDGET, workers=2, **tiny_sweep)
  rows = json.loads(pathlib.Path(path).with_suffix('.json').read_text(encoding='utf-8'))['rows']
  (row,) = rows
  assert row['spearman']['n'] == 2 and -100 <= row['spearman']['mean'] <= 100
  assert row['seeds'][0]['wall_s'] > 0 and row['seeds'][0]['machine']['cpu_count'] >= 1
  assert row['final_loss']['n'] == 2 and row['final_loss']['mean'] > 0
  assert row['params']['total'] > 0
  assert re.search(
    r'\| tiny smoke \| 74\.93 \| -?\d+\.\d\d ± \d+\.\d\d \(n=2\)', pathlib.Path(path).read_text()
  )
  # A second call finds the run finished and trains nothing.
  logs = []
  job = run.jobs_of('tiny', TINY_SWEEP['tiny']()[0], (), 2, tiny_sweep['runs_dir'], TINY_BUDGET)[0]
  assert jobs.execute(job, log=logs.append) == 'skipped'
  # Training one more seed of a run (here seed 1, already there) keeps its own seeds in the table.
  path = run.run_sweep('tiny', (1,), steps=2, budget=TINY_BUDGET, **tiny_sweep)
  (row,) = json.loads(pathlib.Path(path).with_suffix('.json').read_text(encoding='utf-8'))['rows']
  assert row['spearman']['n'] == 2
  # Rebuilt from the records alone, the table keeps seed 1 (beyond the run's own seed 0).
  shutil.rmtree(tiny_sweep['runs_dir'])
  path = run.run_sweep('tiny', steps=2, budget=TINY_BUDGET, results_only=True, **tiny_sweep)
  (row,) = json.loads(pathlib.Path(path).with_suffix('.json').read_text(encoding='utf-8'))['rows']
  assert [s['seed'] for s in row['seeds']] == [0, 1] and row['spearman']['n'] == 2


def test_stage_of_table2_is_finetune():
  assert tables.stage_of('table2') == 'finetune' and tables.stage_of('basis') == 'pretrain'
  assert len(sweeps.sweep_runs('table1')) == 8
  with pytest.raises(KeyError):
    sweeps.sweep_runs('nope')


def test_notebook_runs_in_tiny_mode(monkeypatch, tmp_path, tiny_data):
  nbformat = pytest.importorskip('nbformat')
  nbclient = pytest.importorskip('nbclient')
  monkeypatch.setenv('PETE_NOTEBOOK_TINY', '1')
  monkeypatch.setenv('XLA_FLAGS', '--xla_force_host_platform_device_count=1')
  monkeypatch.setenv('PETE_REPO_DIR', str(REPO))
  monkeypatch.setenv('PETE_WORKDIR', str(tmp_path / 'nb'))
  nb = nbformat.read(REPO / 'experiments' / 'colab_tpu.ipynb', as_version=4)
  nbclient.NotebookClient(
    nb, timeout=120, kernel_name='python3', resources={'metadata': {'path': str(REPO)}}
  ).execute()
  text = '\n'.join(
    out.get('text', '')
    for cell in nb.cells
    if cell.cell_type == 'code'
    for out in cell.get('outputs', [])
  )
  assert '| Fourier 1x256 (paper) | 1.1M | 122,700 | 74.93 |' in text
  assert re.search(r'\| ours \(TINY\) \| [\d,]+ \| 6 \| -?\d+\.\d\d \| -?\d+\.\d\d \|', text)
  assert (tmp_path / 'nb' / 'final_metrics.json').exists()
  assert re.search(r"GLUE stsb \(TINY\): \{'pearson': -?\d", text)  # the GLUE cell ran


def test_readme_block_is_rewritten_between_its_markers(tmp_path):
  readme = tmp_path / 'README.md'
  readme.write_text(
    'intro\n<!-- generated:results -->\nold 1.23\n<!-- /generated:results -->\nend\n'
  )
  results = tmp_path / 'results'
  results.mkdir()
  row = {
    'name': 'fourier_1x256',
    'params': {'total': 1184256},
    'paper': {'spearman': 74.93},
    'spearman': {'mean': 66.5, 'std': 0.25, 'n': 3},
    'difference': 66.5 - 74.93,
    'per_seed_spearman': {0: 66.2, 1: 66.6, 2: 66.7},
    'seeds': [{'wall_s': 120.0, 'metrics': {'pretrain': {}}, 'steps': 150}],
  }
  (results / 'table1.json').write_text(json.dumps({'rows': [row]}))
  assert tables.update_readme(str(results), str(readme))
  text = readme.read_text()
  assert text.startswith('intro\n<!-- generated:results -->\n') and text.endswith(
    '<!-- /generated:results -->\nend\n'
  )
  assert 'old 1.23' not in text
  assert 'Table 1, early training (150 steps at lr 2e-5; zero-shot)' in text  # as the runs trained
  assert (
    '| fourier_1x256 | 74.93 | 66.50 ± 0.25 (n=3) | s0: 66.20, s1: 66.60, s2: 66.70 | -8.43 '
    '| 1,184,256 | 2.0 min |'
  ) in text
  assert 'Table 2' not in text  # No table2.json yet.
  assert not tables.update_readme(str(results), str(tmp_path / 'missing.md'))


def test_ablation_rows_are_compared_with_the_reference_row():
  row = lambda name, seeds, ref=False: {
    'name': name,
    'per_seed_spearman': dict(enumerate(seeds)),
    'reference': ref,
  }
  rows = tables.compare_to_reference(
    [
      row('ref', [66.4, 66.8, 66.7], ref=True),
      row('close', [66.5, 66.9, 66.6]),
      row('far', [63.0, 63.4, 63.2]),
      row('one seed', [68.5]),
      row('not run', []),
    ]
  )
  ref, close, far, single, missing = [r['vs_reference'] for r in rows]
  assert ref is None and missing is None
  assert close['difference'] == pytest.approx(66.6667 - 66.6333, abs=1e-3)
  assert close['welch_p'] > 0.5 and far['welch_p'] < 0.001
  assert (
    single['difference'] == pytest.approx(68.5 - 66.6333, abs=1e-3) and single['welch_p'] is None
  )
  assert all(r['vs_reference'] is None for r in tables.compare_to_reference([row('a', [1.0, 2.0])]))


def test_lr_grid_chooses_by_the_selection_set_and_flags_an_edge(tmp_path):
  """Validation would pick 1e-4; the selection set picks 3e-4, at the grid's edge."""
  from experiments import lr_grid  # pylint: disable=import-outside-toplevel

  def row(lr, select, valid):
    record = tmp_path / f'{lr:g}.json'
    evals = [{'step': 250, 'spearman': 60.0, 'select_spearman': 50.0}]
    evals.append({'step': 500, 'spearman': valid, 'select_spearman': select})
    record.write_text(json.dumps({'evals': evals}))
    return {
      'module': 'table1_fourier_1x256',
      'seeds': [{'record': str(record), 'learning_rate': lr}],
    }

  rows = [row(3e-5, 60.0, 70.0), row(1e-4, 61.0, 73.0), row(3e-4, 62.0, 72.0)]
  rows.append({**row(1e-3, 0, 0), 'seeds': [{'record': 'nothing.json', 'learning_rate': 1e-3}]})
  assert lr_grid.choices(lr_grid.curves(rows)) == {'fourier': 3e-4}
  text = lr_grid.markdown(rows, None)
  assert '| fourier | **0.0003** | 50.00 / 60.00 | 62.00 / 72.00 |' in text
  assert 'an edge of the grid' in text and '0.001' not in text
  assert sweeps.lr_grid()[0].overrides[0] == ('train.learning_rate', sweeps.LR_GRID[0])


def test_schedule_sweep_reports_curves_without_a_choice(tmp_path):
  """One learning rate per kind: the report is a set of curves, nothing is 'chosen'."""
  from experiments import lr_grid  # pylint: disable=import-outside-toplevel

  record = tmp_path / 'r.json'
  record.write_text(
    json.dumps({'evals': [{'step': 250, 'spearman': 70.0, 'select_spearman': 60.0}]})
  )
  rows = [
    {'module': r.module, 'seeds': [{'record': str(record), 'learning_rate': 3e-4}]}
    for r in sweeps.sweep_runs('schedule')
  ]
  text = lr_grid.markdown(rows, None)
  assert '## Learning curves' in text and '| fourier | 0.0003 | 60.00 / 70.00 |' in text
  assert '**' not in text and 'edge of the grid' not in text


def test_schedule_table_shows_the_seed_its_curves_draw(tmp_path):
  """Its rows share Table 1's 1x256 workdirs, whose records hold seeds 1 and 2 as well."""
  results = tmp_path / 'results'
  shutil.copytree(REPO / 'experiments' / 'results' / 'runs', results / 'runs')
  path = run.run_sweep(
    'schedule', results_only=True, results_dir=str(results), runs_dir=str(tmp_path / 'runs')
  )
  rows = json.loads(pathlib.Path(path).with_suffix('.json').read_text(encoding='utf-8'))['rows']
  assert [[s['seed'] for s in row['seeds']] for row in rows] == [[0], [0]]


def test_converged_budget_keeps_the_reduced_budget_but_the_rate_and_steps():
  from configs import converged, reduced  # pylint: disable=import-outside-toplevel

  c = converged.get_config('table1_learned_1x256')
  r = reduced.get_config('table1_learned_1x256')
  assert (c.train.learning_rate, c.train.num_steps) == (3e-4, converged.STEPS)
  assert c.train.eval_every_steps == converged.EVAL_EVERY
  # Checkpoints along the way, so a run of hours resumes where it stopped.
  assert 0 < c.train.checkpoint_every_steps < c.train.num_steps
  assert (c.train.batch_size, c.data.max_len, c.model.dropout_rate) == (
    r.train.batch_size,
    r.data.max_len,
    r.model.dropout_rate,
  )
  assert converged.get_config('table1_fourier_1x256,steps=100').train.num_steps == 100


def test_converged_sweeps_build_converged_commands_and_their_own_workdirs():
  """``<sweep>_converged`` runs ``configs/converged.py`` at its 2000 steps, three seeds, in
  workdirs that never collide with the reduced budget's; the schedule curves are seed 0 of
  the converged Table 1's 1x256 rows (one workdir, trained once)."""
  from configs import converged  # pylint: disable=import-outside-toplevel

  (fourier,) = [r for r in sweeps.sweep_runs('table1_converged') if r.name == 'fourier_1x256']
  job = run.jobs_of('table1_converged', fourier, (), 0, 'runs')[0]
  assert (
    f'--config=configs/converged.py:table1_fourier_1x256,steps={converged.STEPS}' in job.command
  )
  assert job.workdir == os.path.join('runs', 'shared', 'fourier_1x256', 'converged_steps2000_seed0')
  assert jobs.job_config(job).train.learning_rate == converged.LEARNING_RATE
  early = run.jobs_of('table1', sweeps.table1()[0], (), 0, 'runs')[0]
  assert early.workdir.endswith('steps200_seed0') and early.workdir != job.workdir
  schedule_workdirs = {
    run.jobs_of('schedule', r, (), 0, 'runs')[0].workdir for r in sweeps.schedule()
  }
  converged_1x256 = {
    run.jobs_of('table1_converged', r, (), 0, 'runs')[0].workdir
    for r in sweeps.table1_converged()
    if r.name.endswith('1x256')
  }
  assert schedule_workdirs == converged_1x256
  assert {r.seeds for r in sweeps.sweep_runs('normalisation_converged')} == {(0, 1, 2)}
  assert set(sweeps.GROUPS['ablations_converged']) <= set(sweeps.SWEEPS)
  assert run.jobs_of('lr_grid', sweeps.lr_grid()[0], (), 0, 'runs')[0].steps == 1000


def test_schedule_records_trained_with_the_reduced_command_have_the_converged_config():
  """The schedule runs were trained as reduced-budget commands with the chosen rate; their
  records now stand for the converged commands, which must build the same config."""
  from configs import converged, reduced  # pylint: disable=import-outside-toplevel
  from pete_jax import checkpoint  # pylint: disable=import-outside-toplevel
  from pete_jax.config_fields import set_field  # pylint: disable=import-outside-toplevel

  for kind in ('fourier', 'learned'):
    record = json.loads(
      (
        REPO / f'experiments/results/runs/shared/{kind}_1x256/converged_steps2000_seed0.json'
      ).read_text()
    )
    config_arg = re.search(r'--config=configs/reduced.py:(\S+)', record['trained_as']).group(1)
    trained = reduced.get_config(config_arg)
    for field, value in re.findall(r'--config\.(\S+?)=(\S+)', record['trained_as']):
      set_field(trained, field, ast.literal_eval(value))
    expected = converged.get_config(f'table1_{kind}_1x256')
    expected.seed = 0
    for field in checkpoint.RESUME_MAY_CHANGE:  # when to log, evaluate and save: not the run
      set_field(trained, field, 0)
      set_field(expected, field, 0)
    assert trained.to_json() == expected.to_json()


def test_table1_compares_each_fourier_row_with_the_learned_row_of_its_size():
  def row(name, seeds, peer=''):
    return {'name': name, 'per_seed_spearman': dict(enumerate(seeds)), 'compare_with': peer}

  rows = tables.compare_to_reference(
    [row('fourier_1x256', [70.0, 70.2, 70.1], 'learned_1x256'), row('learned_1x256', [72.0, 72.4])]
  )
  assert rows[0]['vs_reference']['other'] == 'learned_1x256'
  assert rows[0]['vs_reference']['difference'] == pytest.approx(70.1 - 72.2)
  assert rows[0]['vs_reference']['welch_p'] < 0.05 and rows[1]['vs_reference'] is None
  assert {r.compare_with for r in sweeps.table1() if r.name.startswith('fourier')} == {
    f'learned_{size}' for size in ('1x256', '1x512', '2x256', '2x512')
  }


def test_embedding_peers_front_and_parameters_at_every_vocabulary():
  from experiments import embedding_peers  # pylint: disable=import-outside-toplevel

  pts = [
    {'name': 'small bad', 'params': 10, 'mean': 50.0},
    {'name': 'small good', 'params': 10, 'mean': 60.0},
    {'name': 'big worse', 'params': 100, 'mean': 55.0},
    {'name': 'big better', 'params': 1000, 'mean': 70.0},
  ]
  assert [p['name'] for p in embedding_peers.pareto_front(pts)] == ['small good', 'big better']
  runs = {r.name: r for r in sweeps.embedding_peers()}
  job = lambda name: run.jobs_of('embedding_peers', runs[name], (), 0, 'runs')[0]
  assert embedding_peers.embedding_parameters(job('learned, dropout 0'), 128_000) == (
    128_000 * 256 + 256  # the table and its RMSNorm scale
  )
  style = embedding_peers.styles(list(runs))
  assert len(set(style.values())) == len(runs)  # every row of the plot told apart
  assert 'tab:gray' not in {colour for colour, _ in style.values()}  # every row has a kind
  assert style['fourier SentencePiece 2k'][0] == style['fourier (reference)'][0]
  assert style['random code + MLP'][0] == style['binary code + MLP'][0]
  fourier = embedding_peers.embedding_parameters(job('fourier (reference)'), 256_000)
  assert fourier == embedding_peers.embedding_parameters(job('fourier (reference)'), 2_000)
  assert all(r.seeds == (0, 1, 2) and r.budget == 'converged' for r in runs.values())
  # The reference and the Table 1 learned row are the converged Table 1 runs, trained once.
  assert job('fourier (reference)').workdir.startswith(os.path.join('runs', 'shared'))
  assert job('learned, dropout 0.1 (Table 1)').workdir.startswith(os.path.join('runs', 'shared'))
  # Rows the converged ablations also ask for train once, in the same workdir and config.
  ablation = {r.name: r for r in sweeps.sweep_runs('tokenizer_converged')}['kind=sentencepiece']
  twin = run.jobs_of('tokenizer_converged', ablation, (), 0, 'runs')[0]
  assert job('fourier SentencePiece 8k').workdir == twin.workdir
  assert job('fourier SentencePiece 8k').command == twin.command


def test_embedding_peers_report_carries_the_benchmark_speed_and_memory(tmp_path):
  from experiments import embedding_peers  # pylint: disable=import-outside-toplevel

  assert embedding_peers.speed_and_memory(str(tmp_path)) == []  # no benchmark yet
  peer = {'vocab_size': 30522, 'name': 'hashed B=256', 'embedding_params': 65792,
          'step_time_s_median': 0.478, 'step_time_over_reference': 0.931,
          'peak_memory_bytes': 2**30, 'inference_peak_memory_bytes': 2**29}  # fmt: skip
  run_meta = {'argv': '--sections=peers', 'date': 'D'}
  (tmp_path / 'benchmark.json').write_text(
    json.dumps({'peers': [peer], 'meta': {'section_runs': {'peers': run_meta, 'train': {}}}})
  )
  text = '\n'.join(embedding_peers.speed_and_memory(str(tmp_path)))
  assert '`python -m experiments.benchmark --sections=peers` on D' in text
  assert '| 30522 | hashed B=256 | 65,792 | 0.478 s | 0.931 |' in text


def test_table2_converged_fine_tunes_at_the_rate_the_selection_split_chooses(tmp_path):
  """Table 2 at the converged budget: pre-training with fine-tuning off, then the STS-B
  fine-tuning pair of the GLUE suite; built here from run records alone (what a fresh
  clone has)."""
  from experiments import table2_converged  # pylint: disable=import-outside-toplevel

  results = tmp_path / 'results'
  (pete,) = [r for r in sweeps.sweep_runs('table2_converged_pretrain') if r.name == 'pete_2x64']
  job = run.jobs_of('table2_converged_pretrain', pete, (), 0, 'runs', results_dir=str(results))[0]
  assert '--config.finetune.enabled=False' in job.command
  assert not jobs.job_config(job).finetune.enabled
  record = lambda metrics: {'command': 'cmd', 'machine': 'cpu', 'wall_s': 60.0, **metrics}
  os.makedirs(os.path.dirname(job.record_path))
  with open(job.record_path, 'w', encoding='utf-8') as f:
    json.dump(record({'metrics': {'pretrain': {'spearman': 60.0, 'pearson': 59.0}}}), f)
  select = {'3e-05': 50.0, '0.0001': 70.0, '0.0003': 65.0}  # the middle rate wins
  scores = {('0.0001', 0): 71.0, ('0.0001', 1): 73.0, ('0.0001', 2): 75.0}
  for (lr, seed), spearman in {**{(k, 0): 40.0 for k in select}, **scores}.items():
    path = results / 'runs' / 'glue' / 'pete_2x64' / 'stsb' / f'lr{lr}_seed{seed}.json'
    os.makedirs(path.parent, exist_ok=True)
    result = {
      'select': {'pearson': select[lr], 'spearman': select[lr]},
      'validation': {'pearson': spearman - 1, 'spearman': spearman},
      'best_epoch': 2, 'steps': 483, 'examples': {},
      'pretrained': job.workdir,  # under runs/, as committed records say; read below from another
    }  # fmt: skip
    path.write_text(json.dumps(record({'result': result})))
  rows = table2_converged.model_rows(False, str(tmp_path / 'runs'), str(results))
  row = next(r for r in rows if r['name'] == 'pete_2x64')
  assert row['finetune']['learning_rate'] == 1e-4
  assert row['spearman']['mean'] == 73.0 and row['pearson']['mean'] == 72.0
  assert row['zero_shot_spearman']['mean'] == 60.0
  assert row['difference'] == pytest.approx(73.0 - sweeps.TABLE2_PAPER['pete_2x64'][0])
  assert all(r['spearman']['n'] == 0 for r in rows if r is not row)  # not run: not invented
  text = open(table2_converged.write(rows, str(results)), encoding='utf-8').read()
  assert '{' not in text and tables.budget_text([{'budget': 'converged'}]) in text
  assert '**0.0001**: 70.00 / 70.50' in text and '73.00 ± 2.00 (n=3)' in text


def test_moonshot_trains_the_recipe_the_selection_set_chooses_beside_the_learned_table(tmp_path):
  """The search's candidates each run once; ``moonshot`` is empty until all have, then holds
  the best by the final selection score (three seeds, seed 0 the search's own run) and
  the learned table trained exactly as it (its learned twin); the search's table lists
  the scores and the choice."""
  search = sweeps.moonshot_search()
  assert sweeps.moonshot(str(tmp_path)) == []
  scores = dict(zip(sweeps.MOONSHOT_CANDIDATES, (70.0, 71.0, 69.0, 72.5, 72.0, 71.5)))
  for r in search:
    path = tmp_path / 'shared' / r.shared / 'converged_steps2000_seed0.json'
    path.parent.mkdir(parents=True)
    evals = [
      {'step': 1000, 'select_spearman': 99.0},
      {'step': 2000, 'select_spearman': scores[r.name]},
    ]
    path.write_text(json.dumps({'evals': evals}))
    if r.name == 'fourier_2x512 GeGLU':  # one candidate missing: no choice yet
      assert sweeps.moonshot_choice(str(tmp_path)) is None
  assert sweeps.moonshot_scores(str(tmp_path)) == scores
  assert sweeps.moonshot_choice(str(tmp_path)) == 'fourier_2x512 SentencePiece 8k'
  fourier, learned = sweeps.moonshot(str(tmp_path))
  assert fourier.seeds == (0, 1, 2) and fourier.reference
  # The runner's --results_dir reaches the choice: its records, not the committed ones.
  assert [r.name for r in sweeps.sweep_runs('moonshot', str(tmp_path))][0] == fourier.name
  assert sweeps.sweep_runs('moonshot_small', str(tmp_path)) == []
  job = lambda sweep, r: run.jobs_of(sweep, r, (), 0, 'runs')[0]
  chosen = next(r for r in search if r.name == fourier.name)
  assert job('moonshot', fourier).workdir == job('moonshot_search', chosen).workdir
  assert learned.module == 'table1_fourier_2x512'  # Fourier's config: dropout 0, as Fourier
  assert dict(learned.overrides) == {
    'tokenizer.kind': 'sentencepiece',
    'tokenizer.spm_vocab_size': 8000,
    'model.embedding': 'learned',
  }
  # The plain recipe is the converged Table 1's Fourier 2x512 run: trained once.
  table1 = {r.name: r for r in sweeps.table1_converged()}
  assert (
    job('moonshot_search', search[0]).workdir
    == job('table1_converged', table1['fourier_2x512']).workdir
  )
  md = tmp_path / 'search.md'
  md.write_text('table\n')
  tables.append_choice(str(md), {**scores, 'not run': None})
  assert 'no choice yet: 1 candidate(s) not run' in md.read_text()
  tables.append_choice(str(md), scores)
  assert '- fourier_2x512 SentencePiece 8k: 72.50 **(chosen)**' in md.read_text()


def test_small_moonshot_reuses_the_runs_of_the_other_sweeps():
  """The CPU-sized tier's candidates are runs Table 1, the ablations and the peers sweep
  already train (one workdir each), and the twin of a SentencePiece candidate is the peers'
  learned row over the same vocabulary."""
  job = lambda sweep, r: run.jobs_of(sweep, r, (), 0, 'runs')[0].workdir
  others = {
    job(sweep, r)
    for sweep in ('table1_converged', 'embedding_peers', 'embed_mlp_converged',
                  'basis_converged', 'tokenizer_converged')
    for r in sweeps.sweep_runs(sweep)
  }  # fmt: skip
  search = sweeps.moonshot_search('moonshot_small')
  assert len(search) == 7 and all(job('moonshot_small_search', r) in others for r in search)
  sp2k = next(r for r in search if r.name == 'fourier_1x256 SentencePiece 2k')
  twin = sweeps.learned_twin(sp2k, 'twin')
  peers = {r.name: r for r in sweeps.embedding_peers()}
  assert job('x', twin) == job('embedding_peers', peers['learned SentencePiece 2k'])
  assert job('x', twin) != job('table1_converged', sweeps.table1_converged()[1])  # dropout 0.1
  assert dict(twin.overrides)['model.embedding'] == 'learned'


def test_headlines_compare_the_rows_the_findings_cite(tmp_path, monkeypatch):
  def row(name, seeds, params, compare_with='', paper=None):
    return {'name': name, 'per_seed_spearman': dict(enumerate(seeds)), 'compare_with': compare_with,
            'spearman': tables.summarise(seeds), 'params': {'total': params},
            'paper': {'spearman': paper}}  # fmt: skip

  rows = [
    row('fourier', [70.0, 70.4, 70.2], 100, 'learned', paper=74.9),
    row('learned', [72.0, 72.6], 400, paper=77.0),
    row('other', [71.0], 200, 'learned'),
    row('unrun', [], 200),
    row('against unrun', [69.0, 69.5], 200, 'unrun'),
  ]
  # The JSON a sweep writes, with its comparisons.
  (tmp_path / 'sweep_a.json').write_text(json.dumps({'rows': tables.compare_to_reference(rows)}))
  readme = tmp_path / 'README.md'
  readme.write_text('intro\n<!-- generated:headlines -->\nold\n<!-- /generated:headlines -->\n')
  monkeypatch.setattr(headlines, 'HEADLINES', (
    ('its own comparison', 'sweep_a', 'fourier'),
    ('an explicit one', 'sweep_a', 'other', 'fourier'),
    ('a row not run', 'sweep_b', 'missing'),
    ('against a row not run', 'sweep_a', 'fourier', 'unrun'),
    ('its own comparison, not run', 'sweep_a', 'against unrun'),
  ))  # fmt: skip
  assert headlines.update(str(tmp_path))
  text = readme.read_text()
  assert 'old' not in text and text.startswith('intro\n')
  own, explicit, missing, against_unrun, own_unrun = [
    line for line in text.splitlines() if line.startswith(('| its', '| an', '| a ', '| against'))
  ]
  assert own_unrun.startswith(
    '| its own comparison, not run | sweep_a: against unrun | 69.25 ± 0.35 (n=2) | unrun | not run | — |'
  )
  cells = [c.strip() for c in own.split('|')[1:-1]]
  assert cells[2:5] == ['70.20 ± 0.20 (n=3)', 'learned', '72.30 ± 0.42 (n=2)']
  assert cells[5] == '-2.10' and float(cells[7]) < 0.1  # Welch p over the seeds
  low, high = (float(x) for x in cells[6].split(' to '))
  assert low < -2.10 < high and (high < 0) == (float(cells[7]) < 0.05)  # its 95% interval
  # The only tested row: adjusted for itself alone, its p stays.
  assert cells[8] == cells[7]
  assert '\n1 of the 5 headlines have seeds enough for a test; ' in text
  assert cells[9] == '-2.10' and cells[10] == '0.25'  # the paper's difference; 100 / 400 params
  cells = [c.strip() for c in explicit.split('|')[1:-1]]
  assert (
    cells[3] == 'fourier' and cells[5] == '+0.80' and cells[6:10] == ['—', 'one seed', '—', '—']
  )
  assert missing == '| a row not run | sweep_b: not run | not run |' + ' — |' * 8
  assert against_unrun.startswith(
    '| against a row not run | sweep_a: fourier | 70.20 ± 0.20 (n=3) | unrun | not run | — |'
  )


def test_only_picks_the_run_of_that_name_before_the_runs_containing_it():
  runs = sweeps.embedding_peers()
  names = lambda only: [r.name for r in run.selected(runs, only)]
  assert names('learned, dropout 0') == ['learned, dropout 0']  # not the dropout 0.1 rows
  assert names('factorised') == ['factorised e=8', 'factorised e=32', 'factorised e=128']
  assert names('') == [r.name for r in runs] and names('no such row') == []
  # In a group, a name exact in one sweep is exact in all: not the rows containing it elsewhere.
  small = sweeps.sweep_runs('moonshot_small')
  assert [r.name for r in run.selected(small, 'fourier_1x256', exact=True)] == []
  assert len(run.selected(small, 'fourier_1x256')) == 2


def test_a_failed_run_fails_the_command_after_the_table_is_written(tiny_sweep, monkeypatch):
  monkeypatch.setattr(jobs.subprocess, 'call', lambda *args, **kwargs: 1)
  with pytest.raises(run.RunsFailed, match='1 run\\(s\\) failed') as failed:
    run.run_sweep('tiny', steps=2, budget=TINY_BUDGET, **tiny_sweep)
  text = pathlib.Path(failed.value.path).read_text()
  assert '| tiny smoke | 74.93 | not run |' in text
  assert re.search(r'^- `python -m pete_jax\.main --config=\S+ .*` \(not run\)$', text, re.M)


def test_zero_shot_table2_pretraining_is_not_compared_with_the_papers_fine_tuned_scores():
  pretrain = sweeps.table2_converged_pretrain()
  assert all(r.paper_spearman is None and r.paper_pearson is None for r in pretrain)
  assert all(r.paper_params for r in pretrain)  # the sizes still compare
  assert all(r.paper_spearman is not None for r in sweeps.table2())  # the fine-tuned table's


def test_a_moonshot_refuses_another_budget_than_the_records_its_choice_reads():
  out = subprocess.run(
    [sys.executable, '-m', 'experiments.run', 'moonshot_small_all', '--steps=5'],
    cwd=REPO, capture_output=True, text=True, timeout=120,
  )  # fmt: skip
  assert out.returncode != 0 and 'at the converged budget' in out.stderr


def test_budget_text_comes_from_the_budget_modules_and_names_what_rows_set_themselves():
  from configs import converged, reduced  # pylint: disable=import-outside-toplevel

  plain = tables.budget_text([{'budget': 'converged', 'overrides': {'model.basis': 'random'}}])
  assert f'lr {tables.rate(converged.LEARNING_RATE)} and {converged.STEPS:,} steps' in plain
  assert 'Rows set their own' not in plain
  grid = tables.budget_text([{'budget': 'reduced', 'overrides': {'train.learning_rate': 1e-4}}])
  assert f'AdamW lr {tables.rate(reduced.LEARNING_RATE)},' in grid
  assert grid.endswith('Rows set their own train.learning_rate (in their names and commands).')
  assert (
    tables.rate(3e-4) == '3e-4' and tables.rate(2e-5) == '2e-5' and tables.rate(1.5e-4) == '1.5e-4'
  )


def test_every_headline_names_rows_its_sweep_defines():
  """A renamed row would otherwise read "not run" in the findings table."""
  for _, sweep, *names in headlines.HEADLINES:
    defined = {r.name for r in sweeps.sweep_runs(sweep)}
    assert set(names) <= defined, (sweep, set(names) - defined)


def test_stale_quotes_finds_prose_numbers_no_table_holds(tmp_path):
  (tmp_path / 'sweep.md').write_text('| a | 73.41 ± 0.68 (n=3) | +2.71 (p=0.011) |\n')
  readme = tmp_path / 'README.md'
  readme.write_text(
    '<!-- generated:headlines -->\n| x | 76.11 ± 0.28 (n=3) | 0.0067 |\n<!-- /generated:headlines -->\n'
    'Fourier scores 73.41 ± 0.68, the code 76.11 ± 0.28 (p = 0.011; frequency p = 0.0067).\n'
  )
  assert readme_blocks.stale_quotes(str(readme), str(tmp_path)) == []
  # A seed lands: the table moves, the prose copied from it does not.
  (tmp_path / 'sweep.md').write_text('| a | 73.60 ± 0.55 (n=4) | +2.52 (p=0.009) |\n')
  assert readme_blocks.stale_quotes(str(readme), str(tmp_path)) == ['73.41 ± 0.68', 'p = 0.011']
  # Numbers quoted in the prose only count as held when a table holds them.
  readme.write_text('two seeds (76.94 ± 0.66)\n')
  assert readme_blocks.stale_quotes(str(readme), str(tmp_path)) == ['76.94 ± 0.66']


def test_results_readme_quotes_only_numbers_its_tables_hold():
  """Every mean ± std and Welch p in the committed results prose is in a generated table:
  a seed that moved a row without its prose being rewritten fails here."""
  results = os.path.join(os.path.dirname(__file__), '..', 'experiments', 'results')
  assert readme_blocks.stale_quotes(os.path.join(results, 'README.md'), results) == []


def test_dry_run_lists_the_runs_not_finished_with_their_seeds_wall_time(tiny_sweep, capsys):
  args = dict(seeds=(0, 1, 2), steps=2, runs_dir=tiny_sweep['runs_dir'],
              results_dir=tiny_sweep['results_dir'], budget=TINY_BUDGET)  # fmt: skip
  todo = run.pending('tiny', **args)
  assert [(job.seed, wall) for job, wall in todo] == [(0, None), (1, None), (2, None)]
  for seed, wall in ((0, 60.0), (1, 180.0)):  # two seeds recorded, say on another machine
    files.write_json(todo[seed][0].record_path, {'wall_s': wall})
  assert [(job.seed, wall) for job, wall in run.pending('tiny', **args)] == [(2, 120.0)]
  run.print_pending('tiny', run.pending('tiny', **args))
  out = capsys.readouterr().out
  assert (
    out.startswith('tiny: 1 run(s) to train, about 2 min') and 'tiny smoke seed 2  ~2 min' in out
  )
  assert not os.path.exists(os.path.join(tiny_sweep['results_dir'], 'tiny.md'))  # wrote nothing


def test_adjusted_p_values_control_the_false_discovery_rate_over_the_tested_headlines(monkeypatch):
  seeds = {'a': [70.0, 70.5, 71.0], 'b': [72.0, 72.4, 73.0], 'c': [70.2, 71.5, 70.9], 'd': [75.0]}
  row = lambda n: {'name': n, 'per_seed_spearman': dict(enumerate(seeds[n])),
                   'spearman': tables.summarise(seeds[n])}  # fmt: skip
  pairs = [
    ('', 's', row('b'), row('a')),
    ('', 's', row('c'), row('a')),
    ('', 's', row('d'), row('a')),
  ]
  raw = [tables.compare(r, o)['welch_p'] for _, _, r, o in pairs[:2]]
  adjusted = headlines.adjusted_p_values(headlines.welch_p_values(pairs))
  assert adjusted[2] is None  # one seed: no test, and not counted among the tests
  # Benjamini-Hochberg over two tests: the larger p stays, the smaller at most doubles.
  small, large = sorted(raw)
  assert max(adjusted[:2]) == pytest.approx(large)
  assert min(adjusted[:2]) == pytest.approx(min(2 * small, large))
