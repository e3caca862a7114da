"""Runs the experiments of a sweep, one training process per run, and collects their metrics.

Each run trains in its own process (``python -m pete_jax.main``), so every row of
a results table comes with the exact command that produced it. A run whose
workdir has ``final_metrics.json`` is skipped; an interrupted one resumes from
its checkpoints (``train_and_evaluate`` does that).

Workdirs (checkpoints, logs) are not committed, so each finished run is also
kept as a small *run record* under ``experiments/results/runs/`` (command,
machine, wall time, final metrics, loss curve). Tables and plots are built from
the records, and a run with a record is never trained again: a sweep resumes in
a fresh clone of the repository.
"""

import dataclasses
import importlib
import os
import platform
import re
import subprocess
import sys
import time

from experiments import sweeps
from experiments.sweeps import Run, slug
from pete_jax import published_weights
from pete_jax.config_fields import set_field
from pete_jax.files import read_json, write_json

RUNNER_FILE = 'runner.json'
RECORDS_DIR = sweeps.RECORDS_DIR
LOSS_LINE = re.compile(r'\[pretrain\] step (\d+)/\d+\s+loss ([0-9.eE+-]+|nan|inf)')


@dataclasses.dataclass(frozen=True)
class Job:
  """One (run, seed) at a step budget."""

  sweep: str
  run: Run
  seed: int
  steps: int
  runs_dir: str = 'runs'
  budget: str = ''  # extra budget fields of configs/reduced.py, e.g. 'batch=16,max_len=16'
  records_dir: str = RECORDS_DIR

  @property
  def config_arg(self) -> str:
    extra = f',{self.budget}' if self.budget else ''
    return f'configs/{self.run.budget}.py:{self.run.module},steps={self.steps}{extra}'

  @property
  def workdir(self) -> str:
    if self.run.shared:
      base = os.path.join(self.runs_dir, 'shared', self.run.shared)
    else:
      base = os.path.join(self.runs_dir, self.sweep, slug(self.run.name))
    extra = '_' + slug(self.budget.replace(',', '_')) if self.budget else ''
    prefix = '' if self.run.budget == 'reduced' else f'{self.run.budget}_'
    return os.path.join(base, f'{prefix}steps{self.steps}{extra}_seed{self.seed}')

  @property
  def command(self) -> list[str]:
    return [
      'python',
      '-m',
      'pete_jax.main',
      f'--config={self.config_arg}',
      f'--workdir={self.workdir}',
      f'--config.seed={self.seed}',
    ] + [f'--config.{field}={value}' for field, value in self.run.overrides]

  @property
  def record_path(self) -> str:
    """``<records_dir>/<workdir relative to runs_dir>.json``."""
    return os.path.join(self.records_dir, os.path.relpath(self.workdir, self.runs_dir) + '.json')

  def trained_here(self) -> bool:
    return os.path.exists(os.path.join(self.workdir, 'final_metrics.json'))

  def finished(self) -> bool:
    return self.trained_here() or os.path.exists(self.record_path)


def recorded_seeds(job: Job) -> set[int]:
  """The seeds of ``job``'s run and budget that left a record, whichever seed ``job`` has."""
  directory, name = os.path.split(job.record_path)
  pattern = re.escape(name[: name.rindex('seed') + len('seed')]) + r'(\d+)\.json'
  names = os.listdir(directory) if os.path.isdir(directory) else ()
  return {int(m.group(1)) for n in names if (m := re.fullmatch(pattern, n))}


def machine() -> dict:
  """Where the runs ran: platform, CPU count, JAX version and devices."""
  import jax  # pylint: disable=import-outside-toplevel

  return {
    'platform': platform.platform(),
    'processor': platform.processor() or platform.machine(),
    'cpu_count': os.cpu_count(),
    'python': platform.python_version(),
    'jax': jax.__version__,
    'devices': [str(d) for d in jax.devices()],
  }


def execute(job: Job, python: str = sys.executable, log=print, env: dict | None = None) -> str:
  """Trains ``job`` unless finished. Returns 'skipped', 'done' or 'failed'.

  Wall time (summed over attempts, so a resumed run counts all of them) and the
  command are kept in ``<workdir>/runner.json``; the process output goes to
  ``<workdir>/train.log``.
  """
  if job.finished():
    log(f'skip (finished): {job.workdir}')
    return 'skipped'
  os.makedirs(job.workdir, exist_ok=True)
  record_path = os.path.join(job.workdir, RUNNER_FILE)
  record = read_json(record_path, {'attempts': []})
  command = [python] + job.command[1:]
  log(f'run: {" ".join(job.command)}')
  start = time.time()
  with open(os.path.join(job.workdir, 'train.log'), 'a', encoding='utf-8') as out:
    rc = subprocess.call(command, stdout=out, stderr=subprocess.STDOUT, env=env)
  record['attempts'].append(
    {
      'wall_s': round(time.time() - start, 1),
      'rc': rc,
      'started': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(start)),
    }
  )
  record.update(
    command=' '.join(job.command),
    machine=machine(),
    wall_s=round(sum(a['wall_s'] for a in record['attempts']), 1),
  )
  write_json(record_path, record)
  status = 'done' if rc == 0 and job.trained_here() else 'failed'
  if status == 'done':
    run_record(job, refresh=True)
  log(f'{status} (rc {rc}, {record["wall_s"]:.0f} s): {job.workdir}')
  return status


def rerooted(path: str, runs_dir: str) -> str:
  """A ``runs/...`` path from a committed record (records are written with the default
  runs folder) under ``runs_dir`` instead; any other path as it is."""
  rel = os.path.relpath(os.path.normpath(path), 'runs')
  return path if rel.startswith('..') or os.path.isabs(path) else os.path.join(runs_dir, rel)


def read_losses(log_path: str) -> dict:
  """``{'steps': [...], 'loss': [...]}`` of the pre-training log lines of a ``train.log``."""
  points = {}
  if os.path.exists(log_path):
    with open(log_path, encoding='utf-8', errors='replace') as f:
      for line in f:
        m = LOSS_LINE.search(line)
        if m:
          points[int(m.group(1))] = float(m.group(2))
  steps = sorted(points)
  return {'steps': steps, 'loss': [points[s] for s in steps]}


def run_record(job: Job, refresh: bool = False) -> dict | None:
  """The job's run record; built from its workdir when it trained here. None: not run.

  A record built from a workdir is saved only if the ``runner.json`` it read had already
  counted the attempt that wrote ``final_metrics.json`` (it is at least as new): a table
  writer in another worker thread can see a run's final metrics before the runner has
  written its bookkeeping, absent (a first attempt) or stale (a resumed run), and a record
  saved then would keep a wrong wall time for good. The file's age is taken before it is
  read, so a ``runner.json`` rewritten in between is judged by its older age. ``execute``
  rebuilds and saves the record (``refresh=True``) after every finished attempt.
  """
  from pete_jax.params import vocab_size_of  # pylint: disable=import-outside-toplevel

  record = None if refresh else read_json(job.record_path)
  if record is None and job.trained_here():
    runner_path = os.path.join(job.workdir, RUNNER_FILE)
    metrics_path = os.path.join(job.workdir, 'final_metrics.json')
    counted = os.path.exists(runner_path) and (
      os.path.getmtime(runner_path) >= os.path.getmtime(metrics_path)
    )
    runner = read_json(runner_path, {})
    record = {
      'command': ' '.join(job.command),
      'machine': runner.get('machine'),
      'wall_s': runner.get('wall_s'),
      'attempts': runner.get('attempts', []),
      'metrics': read_json(metrics_path),
      'losses': read_losses(os.path.join(job.workdir, 'train.log')),
      # Every evaluation of the run (validation and selection set): the learning curve.
      'evals': read_json(os.path.join(job.workdir, 'eval_results.json'), []),
      # The pre-trained model's cosine of every STS-B validation pair (experiments.rare_ids).
      'pair_cosines': read_json(os.path.join(job.workdir, 'pair_cosines.json')),
      # The V the run trained with (a SentencePiece model may stop short of its size).
      'vocab_size': vocab_size_of(job_config(job), job.workdir),
    }
    if refresh or (runner and counted):
      write_json(job.record_path, record)
  return record


def budget_module(budget: str):
  """``configs/<budget>.py`` (its ``get_config`` and default ``STEPS``)."""
  return importlib.import_module(f'configs.{budget}')


def default_steps(run) -> int:
  """The steps a sweep's run trains unless ``--steps`` says otherwise: its own, else its
  budget's."""
  return run.steps or budget_module(run.budget).STEPS


def job_config(job: Job):
  """The resolved config of a job (the same one its command builds)."""
  config = budget_module(job.run.budget).get_config(job.config_arg.split(':', 1)[1])
  config.seed = job.seed
  for field, value in job.run.overrides:
    set_field(config, field, value)
  return published_weights.apply_official(config)  # the ``official`` switch, as training does


def parameter_count(job: Job) -> dict:
  """``{'total': n, 'by_component': {...}, 'vocab_size': V}`` for the job's model."""
  from pete_jax.encoder import encoder_from_config  # pylint: disable=import-outside-toplevel
  from pete_jax.params import count_by_component, vocab_size_of  # pylint: disable=import-outside-toplevel

  config = job_config(job)
  vocab = (read_json(job.record_path) or {}).get('vocab_size') or vocab_size_of(config, job.workdir)
  counts = count_by_component(encoder_from_config(config.model, vocab, config.data.max_len))
  return {'total': sum(counts.values()), 'by_component': counts, 'vocab_size': vocab}


def final_loss(record: dict, fraction: float = 0.1) -> float | None:
  """Mean pre-training loss over the last ``fraction`` of the logged steps (at least one):
  how well the run fits its training pairs, where the validation score says how well it
  generalises. None when the record has no loss lines."""
  losses = (record.get('losses') or {}).get('loss') or []
  if not losses:
    return None
  tail = losses[-max(1, round(len(losses) * fraction)) :]
  return sum(tail) / len(tail)


def job_result(job: Job) -> dict:
  """Everything a results table needs about one job (metrics None when not run)."""
  config = job_config(job)
  record = run_record(job) or {}
  return {
    'seed': job.seed,
    'workdir': job.workdir,
    'record': job.record_path,
    'command': ' '.join(job.command),
    'overrides': {k: v for k, v in job.run.overrides},
    'metrics': record.get('metrics'),
    'steps': config.train.num_steps,
    'batch_size': config.train.batch_size,
    'learning_rate': config.train.learning_rate,
    'finetune_steps': config.finetune.num_steps if config.finetune.enabled else 0,
    'wall_s': record.get('wall_s'),
    'final_loss': final_loss(record),
    'machine': record.get('machine'),
    'params': parameter_count(job),
  }
