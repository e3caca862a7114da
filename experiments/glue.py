"""The GLUE suite: fine-tunes pre-trained models on every task whose data is present.

  python -m experiments.glue [--models=fourier_1x256,learned_1x256] [--tasks=stsb,rte,mrpc]
      [--tfds] [--seeds=0,1,2] [--results_only]

The tasks default to every one whose data is present (``tasks_with_data``). For each (pre-trained model, task): the fine-tuning learning rate is chosen from
``LR_GRID`` on the task's selection split (a fixed tenth of its training data) with
seed 0; the other seeds then train at that rate. Each run is one process
(``python -m pete_jax.glue.main``), skipped when it has finished (its workdir's
result or its committed record under ``experiments/results/runs/glue/``).
``experiments/results/glue.md`` and ``.json`` are rewritten after every run.

The pre-trained models are the converged-budget 1x256 runs of
``python -m experiments.run table1_converged`` (``PRETRAINED``); ``--pretrained``
names other workdirs (``name=path,...``).
"""

import dataclasses
import os
import statistics
import subprocess
import sys
import time

from absl import app, flags

from configs import glue as glue_config
from experiments import jobs, readme_blocks, sweeps, tables
from pete_jax.files import read_json, write_json
from pete_jax.glue import metrics, tasks

RESULT_FILE = 'glue_result.json'  # as pete_jax.glue.main writes it


# The pre-training seed of the models fine-tuned: one per model (fine-tuning has three seeds of
# its own, so the spread of pre-training seeds is not in the GLUE table's).
PRETRAINED_SEED = 1


def table1_workdirs(names=('fourier_1x256', 'learned_1x256')) -> dict:
  """``{name: workdir}`` of converged Table 1 models (pre-training seed ``PRETRAINED_SEED``),
  as ``experiments.run table1_converged`` trains them."""
  runs = {r.name: r for r in sweeps.table1_converged()}
  return {n: jobs.Job('table1_converged', runs[n], PRETRAINED_SEED, jobs.default_steps(runs[n]),
                      'runs').workdir for n in names}  # fmt: skip


PRETRAINED = table1_workdirs()
LR_GRID = (3e-5, 1e-4, 3e-4)
# Where the grid grows when its best rate is at an edge (one step at a time, at most to the ends).
LR_LADDER = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3)
SEEDS = (0, 1, 2)


@dataclasses.dataclass(frozen=True)
class GlueJob:
  """One fine-tuning run: a pre-trained model, a task, a learning rate and a seed."""

  model: str
  pretrained: str
  task: str
  learning_rate: float
  seed: int
  local: bool = True
  runs_dir: str = 'runs'
  records_dir: str = jobs.RECORDS_DIR

  @property
  def name(self) -> str:
    return os.path.join('glue', self.model, self.task, f'lr{self.learning_rate:g}_seed{self.seed}')

  @property
  def workdir(self) -> str:
    return os.path.join(self.runs_dir, self.name)

  @property
  def record_path(self) -> str:
    return os.path.join(self.records_dir, self.name + '.json')

  @property
  def command(self) -> list[str]:
    config = f'configs/glue.py:{self.task}' + (',local' if self.local else '')
    return ['python', '-m', 'pete_jax.glue.main', f'--config={config}',
            f'--pretrained={self.pretrained}', f'--workdir={self.workdir}',
            f'--config.learning_rate={self.learning_rate:g}', f'--config.seed={self.seed}']  # fmt: skip

  def record(self) -> dict | None:
    """The run's record (committed, or written now from a finished workdir); None: not run."""
    record = read_json(self.record_path)
    result = read_json(os.path.join(self.workdir, RESULT_FILE))
    for where, found in ((self.record_path, record and record['result']), (self.workdir, result)):
      # Found by model name alone: a record of another pre-trained model would be reported
      # under this one.
      source = found and found.get('pretrained')
      same = lambda path: os.path.normpath(jobs.rerooted(path, self.runs_dir))
      if source and same(source) != same(self.pretrained):
        raise ValueError(
          f'{where} fine-tuned {source}, not {self.pretrained}: move it away, or give this '
          'pre-trained model another name.'
        )
    if record is None and result is not None:
      runner = read_json(os.path.join(self.workdir, jobs.RUNNER_FILE), {})
      result.pop('config', None)  # the command says it
      record = {'command': ' '.join(self.command), 'machine': runner.get('machine'),
                'wall_s': runner.get('wall_s'), 'result': result}  # fmt: skip
      write_json(self.record_path, record)
    return record


def execute(job: GlueJob, log=print) -> bool:
  """Runs ``job`` unless finished; True when it has a record afterwards."""
  if job.record() is not None:
    return True
  if not os.path.isdir(job.pretrained):
    log(
      f'skip: no pre-trained workdir {job.pretrained} (python -m experiments.run table1_converged)'
    )
    return False
  os.makedirs(job.workdir, exist_ok=True)
  log(f'run: {" ".join(job.command)}')
  start = time.time()
  with open(os.path.join(job.workdir, 'finetune.log'), 'a', encoding='utf-8') as out:
    rc = subprocess.call([sys.executable] + job.command[1:], stdout=out, stderr=subprocess.STDOUT)
  write_json(
    os.path.join(job.workdir, jobs.RUNNER_FILE),
    {'machine': jobs.machine(), 'wall_s': round(time.time() - start, 1), 'rc': rc},
  )
  ok = job.record() is not None
  log(f'{"done" if ok else "failed"} (rc {rc}, {time.time() - start:.0f} s): {job.workdir}')
  return ok


def tasks_with_data(local: bool) -> list[str]:
  """Every task whose data is present: the local files under PETE_DATA_DIR, or (TFDS,
  downloaded on first use) every GLUE task."""
  if not local:
    return list(tasks.GLUE_TASKS)
  present = []
  for name in tasks.TASKS:
    try:
      config = glue_config.get_config(f'{name},local')
    except ValueError:  # no local files for this task
      continue
    specs = [config.train_source, *config.validation_sources]
    if all(os.path.exists(spec.split(':', 1)[1].removesuffix(':train').removesuffix(':dev'))
           for spec in specs):  # fmt: skip
      present.append(name)
  return present


def selection_score(record: dict) -> float:
  """The mean of the task's metrics on the selection split (what the rate is chosen by)."""
  return metrics.combined(record['result']['select'])


def chosen_rate(grid: dict) -> float | None:
  """The rate with the best selection score, once every rate of the grid has run."""
  if any(r is None for r in grid.values()):
    return None
  return max(grid, key=lambda lr: selection_score(grid[lr]))


def widen(grid: dict) -> list[float]:
  """The next rate of ``LR_LADDER`` past the best one when it is at an edge of the grid
  (and the ladder goes further); [] when the best rate is inside the grid."""
  best = chosen_rate(grid)
  if best is None:
    return []
  i = LR_LADDER.index(best)
  step = 1 if best == max(grid) else -1 if best == min(grid) else 0
  nxt = i + step
  return (
    [LR_LADDER[nxt]] if step and 0 <= nxt < len(LR_LADDER) and LR_LADDER[nxt] not in grid else []
  )


def run_pair(model: str, pretrained: str, task: str, seeds, local: bool, train: bool, **dirs):
  """The grid and the seeds of one (model, task); returns its table row."""
  job = lambda lr, seed: GlueJob(model, pretrained, task, lr, seed, local, **dirs)
  grid = {}
  rates = list(LR_GRID)
  while rates:
    for lr in rates:
      if train:
        execute(job(lr, seeds[0]))
      grid[lr] = job(lr, seeds[0]).record()
    rates = widen(grid)
  lr = chosen_rate(grid)
  runs = {}
  if lr is not None:
    for seed in seeds:
      if train:
        execute(job(lr, seed))
      runs[seed] = job(lr, seed).record()
  return row(model, task, grid, lr, {s: r for s, r in runs.items() if r is not None})


def row(model: str, task: str, grid: dict, lr: float | None, runs: dict) -> dict:
  """A table row: the selection scores of the grid, the chosen rate, validation over seeds."""
  names = tasks.metric_names(tasks.get_task(task))
  per_seed = {s: r['result']['validation'] for s, r in runs.items()}
  return {
    'model': model,
    'task': task,
    'grid_select': {f'{k:g}': selection_score(v) for k, v in sorted(grid.items()) if v is not None},
    # Reported beside the choice, never used for it: where selection and validation disagree.
    'grid_validation': {
      f'{k:g}': metrics.combined(v['result']['validation'])
      for k, v in grid.items()
      if v is not None
    },
    'at_grid_edge': lr is not None and lr in (min(grid), max(grid)),
    'learning_rate': lr,
    'validation': {m: tables.summarise([v[m] for v in per_seed.values()]) for m in names},
    'combined_per_seed': {s: metrics.combined(v) for s, v in per_seed.items()},
    'per_seed': per_seed,
    'epochs': {s: r['result']['best_epoch'] for s, r in runs.items()},
    'steps': next((r['result']['steps'] for r in runs.values()), None),
    'examples': next((r['result']['examples'] for r in runs.values()), None),
    'wall_s': [r['wall_s'] for r in runs.values() if r.get('wall_s')],
    'commands': [r['command'] for r in runs.values()],
    'machines': sorted({str(r.get('machine')) for r in runs.values()}),
  }


def comparison(rows: list[dict], a: str, b: str) -> list[str]:
  """Per task: model a − model b on the task's combined score, with Welch's p."""
  lines = [f'| task | {a} − {b} (mean of the metrics) | Welch p |', '|---|---|---|']
  by = {(r['model'], r['task']): r for r in rows}
  seeds = lambda model, task: list(by.get((model, task), {}).get('combined_per_seed', {}).values())
  for task in dict.fromkeys(r['task'] for r in rows):
    cmp = tables.welch(seeds(a, task), seeds(b, task))
    if cmp is None:
      continue
    p_text = '—' if cmp['welch_p'] is None else f'{cmp["welch_p"]:.2g}'
    lines.append(f'| {task} | {cmp["difference"]:+.2f} | {p_text} |')
  return lines


def grid_cell(r: dict) -> str:
  """Each rate's selection / validation score (seed 0), the chosen one in bold."""
  grid = ', '.join(
    (f'**{k}**' if r['learning_rate'] is not None and float(k) == r['learning_rate'] else k)
    + f': {v:.2f} / {r["grid_validation"][k]:.2f}' for k, v in r['grid_select'].items()
  ) or 'not run'  # fmt: skip
  return grid + (' (edge of the grid)' if r['at_grid_edge'] else '')


def write_report(results_dir: str, name: str, intro: list[str], table: str, rows: list[dict],
                 commands: list[str], machines: set, argv: str, data: dict) -> str:  # fmt: skip
  """``<results_dir>/<name>.md`` (intro, table, machines, commands) and ``.json``, and the
  results README's ``name`` block; returns the Markdown path."""
  text = '\n'.join(
    [*intro, '', table, *tables.provenance(machines, [f'`{c}`' for c in commands], argv)]
  )
  os.makedirs(results_dir, exist_ok=True)
  write_json(os.path.join(results_dir, f'{name}.json'), {**data, 'rows': rows})
  path = os.path.join(results_dir, f'{name}.md')
  with open(path, 'w', encoding='utf-8') as f:
    f.write(text)
  readme_blocks.replace_block(
    os.path.join(results_dir, 'README.md'),
    name,
    f'From `{argv}` ([{name}.md]({name}.md)):\n\n{table}',
  )
  return path


def markdown(rows: list[dict]) -> str:
  models = list(dict.fromkeys(r['model'] for r in rows))
  lines = ['| task | model | lr: selection / validation score (seed 0) | validation (mean ± std '
           'over seeds) | per seed | epoch chosen | steps | wall / run |', '|---' * 8 + '|']  # fmt: skip
  for r in rows:
    grid = grid_cell(r)
    val = '; '.join(f'{m} {tables.format_summary(s)}' for m, s in r['validation'].items())
    seeds = '; '.join(
      f's{s}: ' + '/'.join(f'{v:.1f}' for v in vals.values()) for s, vals in r['per_seed'].items()
    ) or '—'  # fmt: skip
    epochs = ', '.join(str(e) for e in r['epochs'].values()) or '—'
    wall = f'{statistics.fmean(r["wall_s"]) / 60:.1f} min' if r['wall_s'] else '—'
    lines.append(f'| {r["task"]} | {r["model"]} | {grid} | {val} | {seeds} | {epochs} '
                 f'| {r["steps"] or "—"} | {wall} |')  # fmt: skip
  if len(models) >= 2:
    lines += ['', *comparison(rows, models[0], models[1])]
  return '\n'.join(lines)


def write(rows: list[dict], results_dir: str, argv: str) -> str:
  """``<results_dir>/glue.md`` and ``.json``, and the README's ``glue`` block."""
  intro = [
    '# GLUE fine-tuning suite',
    '',
    'Fine-tuning of pre-trained encoders on each task (`pete_jax/glue/`, `configs/glue.py`): '
    'AdamW, batch 32, 3 epochs, warmup over 10% of the steps then linear decay, head '
    '[u, v, |u - v|] (one sentence: u) with cross-entropy; STS-B trains the cosine on '
    '1 - Pearson. The learning rate is chosen per (model, task) from '
    f'{", ".join(f"{lr:g}" for lr in LR_GRID)} (widened along {", ".join(f"{lr:g}" for lr in LR_LADDER)} '
    'while the best rate is at an edge) by the selection split (a fixed tenth of the '
    "training data, seed 0; the score is the mean of the task's metrics), and so is the epoch "
    'of every run; the validation score of each rate is shown beside it, never used. '
    "Metrics x 100, GLUE's per task (MRPC: F1/accuracy; STS-B: Pearson/Spearman).",
  ]  # fmt: skip
  commands = [c for r in rows for c in r['commands']]
  machines = {m for r in rows for m in r['machines']}
  return write_report(results_dir, 'glue', intro, markdown(rows), rows, commands, machines, argv,
                      {'lr_grid': LR_GRID})  # fmt: skip


def run_suite(models: dict, task_names, seeds=SEEDS, local=True, train=True,
              runs_dir='runs', results_dir='experiments/results') -> str:  # fmt: skip
  """Every (model, task) in turn; the tables are rewritten after each."""
  dirs = {'runs_dir': runs_dir, 'records_dir': os.path.join(results_dir, 'runs')}
  argv = 'python -m experiments.glue' + ('' if local else ' --tfds')
  argv += f' --tasks={",".join(task_names)}'
  for t in [t for t in task_names if not tasks.get_task(t).train_split]:
    print(f'{t}: not scorable here (no training split; GLUE scores it with the '
          f'{tasks.get_task(t).scored_with} model on labels that are not public)')  # fmt: skip
  task_names = [t for t in task_names if tasks.get_task(t).train_split]
  rows = [
    run_pair(m, w, t, seeds, local, False, **dirs) for t in task_names for m, w in models.items()
  ]
  path = write(rows, results_dir, argv)
  if train:
    for i, (t, (m, w)) in enumerate((t, mw) for t in task_names for mw in models.items()):
      rows[i] = run_pair(m, w, t, seeds, local, True, **dirs)
      path = write(rows, results_dir, argv)
  return path


def main(argv):
  del argv
  f = flags.FLAGS
  models = {m: PRETRAINED[m] for m in f.models.split(',') if m}
  models.update(dict(p.split('=', 1) for p in f.pretrained.split(',') if p))
  task_names = [t for t in f.tasks.split(',') if t] or tasks_with_data(not f.tfds)
  for t in task_names:
    tasks.get_task(t)  # an unknown task fails before anything runs
  seeds = tuple(int(s) for s in f.seeds.split(','))
  print(f'wrote {run_suite(models, task_names, seeds, not f.tfds, not f.results_only)}')


if __name__ == '__main__':
  # Flags are defined only when run as a command, so importing never clashes.
  flags.DEFINE_string('models', ','.join(PRETRAINED), 'Models of PRETRAINED to fine-tune.')
  flags.DEFINE_string('pretrained', '', 'Other pre-trained workdirs: name=path,...')
  flags.DEFINE_string('tasks', '', 'Tasks (pete_jax/glue/tasks.py); default: every one with data.')
  flags.DEFINE_bool('tfds', False, 'TFDS glue/<task> data instead of the local files.')
  flags.DEFINE_string('seeds', ','.join(map(str, SEEDS)), 'Fine-tuning seeds.')
  flags.DEFINE_bool('results_only', False, 'Train nothing; rewrite the tables.')
  app.run(main)
