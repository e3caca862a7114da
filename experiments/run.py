"""Runs a named sweep and writes its results table.

  python -m experiments.run table1|table2|table2_converged_pretrain|lr_grid|schedule|ablations|<ablation>[_converged]
      [--seeds=0,1,2] [--steps=N] [--only=NAME] [--budget=batch=64,...] [--workers=N]
      [--results_only] [--dry_run]

Sweeps are defined in experiments/sweeps.py; each run trains in its own process
(``--workers`` at a time, default one) under ``runs/<sweep>/<run>/[<budget>_]steps<N>_seed<S>``
(``runs/shared/<key>/...`` for a run that several sweeps share; ``jobs.Job.workdir``); finished runs
(a workdir with final metrics, or a committed run record under
``experiments/results/runs/``) are skipped, interrupted ones resume. ``experiments/results/<sweep>.md`` and
``.json`` are rewritten after every run, so nothing is lost if the sweep stops.
"""

import concurrent.futures
import os
import sys
import threading

from absl import app, flags
import numpy as np

from experiments import embedding_peers, headlines, jobs, lr_grid, readme_blocks, sweeps, tables
from pete_jax import workdir_lock
from pete_jax.files import read_json

_SEEDS = flags.DEFINE_string('seeds', '', "Comma-separated seeds (default: each run's own).")
_STEPS = flags.DEFINE_integer(
  'steps', 0, "Pre-training steps of every run (0: each run's own, else its budget's STEPS)."
)
_ONLY = flags.DEFINE_string(
  'only', '', 'Train only the run of this name, or if none has it, the runs whose name contains it.'
)
_RESULTS_ONLY = flags.DEFINE_bool('results_only', False, 'Train nothing; rewrite the tables.')
_DRY_RUN = flags.DEFINE_bool(
  'dry_run',
  False,
  'Train and write nothing: list the runs this command would train, each with the median '
  'wall time of its finished seeds.',
)
_BUDGET = flags.DEFINE_string(
  'budget',
  '',
  'Extra configs/reduced.py budget fields, e.g. "batch=64,max_len=32" (part of the workdir name).',
)
_RUNS_DIR = flags.DEFINE_string('runs_dir', 'runs', 'Where the workdirs go.')
_WORKERS = flags.DEFINE_integer(
  'workers',
  1,
  'Training processes at a time (a GPU fits several of these small models; on a CPU they '
  'share the cores).',
)
_RESULTS_DIR = flags.DEFINE_string(
  'results_dir',
  'experiments/results',
  'Where tables go, and where run records are read and written (<results_dir>/runs): another '
  'folder starts without the committed records, so their runs count as not run.',
)


# Sweeps whose table comes with learning curves (``lr_grid.write``) of each row's own seed.
CURVE_SWEEPS = ('lr_grid', 'schedule')


def jobs_of(
  sweep: str,
  run: sweeps.Run,
  seeds: tuple,
  steps: int,
  runs_dir: str,
  budget: str = '',
  results_dir: str = 'experiments/results',
) -> list:
  records = os.path.join(results_dir, 'runs')
  steps = steps or jobs.default_steps(run)
  return [jobs.Job(sweep, run, s, steps, runs_dir, budget, records) for s in (seeds or run.seeds)]


def run_sweep(
  sweep: str,
  seeds: tuple = (),
  steps: int = 0,
  only: str = '',
  results_only: bool = False,
  runs_dir: str = 'runs',
  results_dir: str = 'experiments/results',
  budget: str = '',
  workers: int = 1,
  only_exact: bool | None = None,
) -> str:
  """Trains a sweep's missing runs (``workers`` processes at a time) and writes its table;
  returns the table's path. ``only`` and ``only_exact``: see :func:`selected`. Raises
  ``RunsFailed``, once the table is written, if any run failed."""
  runs = sweeps.sweep_runs(sweep, os.path.join(results_dir, 'runs'))
  chosen = selected(runs, only, only_exact)
  # A moonshot search's tier: its table shows the one seed its choice reads, then the choice.
  tier = sweep.removesuffix('_search')
  search_tier = tier if sweep != tier and tier in sweeps.MOONSHOT_TIERS else None

  # The tables of a choice show the seeds the choice reads: a moonshot search tier's one,
  # and the curves of lr_grid and schedule (whose shared workdirs hold Table 1's other seeds).
  own_seeds_only = bool(search_tier) or sweep in CURVE_SWEEPS

  def table_jobs(r: sweeps.Run) -> list:
    # Every seed the run asks for, those this command trains, and any other with a record
    # (a seed trained beyond the run's own is not dropped by a later --results_only).
    trained_now = set(seeds) if r in chosen else set()
    (probe,) = jobs_of(sweep, r, r.seeds[:1], steps, runs_dir, budget, results_dir)
    recorded = set() if own_seeds_only else jobs.recorded_seeds(probe)
    table_seeds = tuple(sorted(set(r.seeds) | trained_now | recorded))
    return jobs_of(sweep, r, table_seeds, steps, runs_dir, budget, results_dir)

  def write_table() -> str:
    run_jobs = [table_jobs(r) for r in runs]
    rows = [tables.row_result(sweep, r, js) for r, js in zip(runs, run_jobs)]
    path = tables.write(sweep, rows, results_dir)
    headlines.update(results_dir)
    if sweep in CURVE_SWEEPS:  # the choice on the selection set, and the curves
      lr_grid.write(rows, results_dir, sweep)
    if sweep == 'embedding_peers':  # parameters at every V, and the Pareto plot
      first_jobs = {r.name: js[0] for r, js in zip(runs, run_jobs)}
      embedding_peers.write(rows, first_jobs, results_dir)
    if search_tier:  # the scores that make the choice
      choice = sweeps.moonshot_scores(os.path.join(results_dir, 'runs'), search_tier)
      tables.append_choice(path, choice)
    return path

  path = write_table()
  if results_only:
    return path
  todo = [
    job
    for run in chosen
    for job in jobs_of(sweep, run, seeds, steps, runs_dir, budget, results_dir)
  ]
  lock = threading.Lock()
  env = worker_env(workers)

  def train(job: jobs.Job) -> str:
    nonlocal path
    status = jobs.execute(job, env=env)
    if status == 'done':
      with lock:  # one table writer at a time
        path = write_table()
    return status

  with concurrent.futures.ThreadPoolExecutor(max(workers, 1)) as pool:
    failed = [job.workdir for job, status in zip(todo, pool.map(train, todo)) if status == 'failed']
  if failed:
    raise RunsFailed(path, failed)
  return path


def pending(
  sweep: str,
  seeds: tuple = (),
  steps: int = 0,
  only: str = '',
  runs_dir: str = 'runs',
  results_dir: str = 'experiments/results',
  budget: str = '',
  only_exact: bool | None = None,
) -> list[tuple[jobs.Job, float | None]]:
  """The jobs ``run_sweep`` would train (those not finished), each with the median wall
  time in seconds of its run's recorded seeds (None: none recorded), to plan a session by."""
  out = []
  for run in selected(
    sweeps.sweep_runs(sweep, os.path.join(results_dir, 'runs')), only, only_exact
  ):
    todo = [
      j
      for j in jobs_of(sweep, run, seeds, steps, runs_dir, budget, results_dir)
      if not j.finished()
    ]
    if not todo:
      continue
    recorded = jobs_of(
      sweep, run, tuple(sorted(jobs.recorded_seeds(todo[0]))), steps, runs_dir, budget, results_dir
    )
    walls = [w for j in recorded if (w := (read_json(j.record_path) or {}).get('wall_s'))]
    out += [(job, float(np.median(walls)) if walls else None) for job in todo]
  return out


def print_pending(name: str, todo: list) -> None:
  known = [w for _, w in todo if w is not None]
  unknown = len(todo) - len(known)
  print(f'{name}: {len(todo)} run(s) to train, about {sum(known) / 60:.0f} min by the wall times '
        f'of their recorded seeds' + (f' ({unknown} with none recorded)' if unknown else ''))  # fmt: skip
  for job, wall in todo:
    took = f'~{wall / 60:.0f} min' if wall is not None else '? min'
    if workdir_lock.in_use(job.workdir):
      took += ', training now'
    print(f'  {job.run.name} seed {job.seed}  {took}  {" ".join(job.command)}')


class RunsFailed(Exception):
  """Training runs of a sweep failed (their rows read "not run"); the others trained, and
  the table at ``path`` was written."""

  def __init__(self, path: str, workdirs: list[str]):
    super().__init__(f'{len(workdirs)} run(s) failed; see train.log in ' + ', '.join(workdirs))
    self.path = path


def selected(runs: list[sweeps.Run], only: str, exact: bool | None = None) -> list[sweeps.Run]:
  """The runs ``--only`` picks: those named exactly so if ``exact`` (None: if one is), else
  every name containing it (``--only=1x256``: both 1x256 rows); all runs if it is empty."""
  if exact is None:
    exact = any(r.name == only for r in runs)
  return [r for r in runs if (r.name == only if exact else only in r.name)]


def worker_env(workers: int) -> dict | None:
  """The training processes' environment: with several at once, each preallocates only
  its share of an accelerator's memory (JAX takes 75% by default; a CPU ignores it)."""
  if workers <= 1 or 'XLA_PYTHON_CLIENT_MEM_FRACTION' in os.environ:
    return None
  return {**os.environ, 'XLA_PYTHON_CLIENT_MEM_FRACTION': f'{0.9 / workers:.3f}'}


def main(argv):
  if len(argv) != 2:
    raise app.UsageError('usage: python -m experiments.run SWEEP [flags]')
  seeds = tuple(int(s) for s in _SEEDS.value.split(',') if s.strip())
  names = sweeps.GROUPS.get(argv[1], (argv[1],))
  only = _ONLY.value
  group = [
    r.name for n in names for r in sweeps.sweep_runs(n, os.path.join(_RESULTS_DIR.value, 'runs'))
  ]
  if only and not any(only in name for name in group):
    raise app.UsageError(f'--only={only!r} names no run of {argv[1]}: {", ".join(group)}')
  only_exact = only in group  # one meaning for every sweep of a group
  if (_STEPS.value or _BUDGET.value) and any(n.startswith('moonshot') for n in names):
    raise app.UsageError(
      "a moonshot's choice reads its candidates' records at the converged budget: --steps and "
      '--budget would choose among runs of another budget.'
    )
  if _DRY_RUN.value:
    for name in names:
      print_pending(name, pending(name, seeds, _STEPS.value, only, _RUNS_DIR.value,
                                  _RESULTS_DIR.value, _BUDGET.value, only_exact))  # fmt: skip
    return
  failures = []
  for name in names:
    try:
      path = run_sweep(
        name,
        seeds,
        _STEPS.value,
        only,
        _RESULTS_ONLY.value,
        _RUNS_DIR.value,
        _RESULTS_DIR.value,
        _BUDGET.value,
        _WORKERS.value,
        only_exact,
      )
    except RunsFailed as e:
      failures.append(f'{name}: {e}')
      path = e.path
    print(f'wrote {path}')
  if argv[1] in sweeps.GROUPS:
    print(f'wrote {tables.write_group(argv[1], names, _RESULTS_DIR.value)}')
  if any(n.startswith(('table1', 'table2')) for n in names) and tables.update_readme(
    _RESULTS_DIR.value
  ):
    print('updated the results block of README.md')
  readme = os.path.join(_RESULTS_DIR.value, readme_blocks.README)
  if os.path.exists(readme) and (stale := readme_blocks.stale_quotes(readme, _RESULTS_DIR.value)):
    print(
      f'{readme}: its prose quotes numbers no table holds now; rewrite them: ' + ', '.join(stale)
    )
  if failures:
    sys.exit('\n'.join(failures))  # status 1, so that a queue or CI notices


if __name__ == '__main__':
  app.run(main)
