"""Runs the experiments of a sweep, one training process at a time, and collects their metrics.

Each run trains in its own process (``python -m pete_jax.main``), so every row of
a results table comes with the exact command that produced it. A run whose
workdir has ``final_metrics.json`` is skipped; an interrupted one resumes from
its checkpoints (``train_and_evaluate`` does that).
"""

import dataclasses
import json
import os
import platform
import re
import subprocess
import sys
import time

from experiments.sweeps import Run

RUNNER_FILE = 'runner.json'


@dataclasses.dataclass(frozen=True)
class Job:
  """One (run, seed) at a step budget."""
  sweep: str
  run: Run
  seed: int
  steps: int
  runs_dir: str = 'runs'
  budget: str = ''  # extra configs/reduced.py budget fields, e.g. 'batch=16,max_len=16'

  @property
  def config_arg(self) -> str:
    extra = f',{self.budget}' if self.budget else ''
    return f'configs/reduced.py:{self.run.module},steps={self.steps}{extra}'

  @property
  def workdir(self) -> str:
    if self.run.shared:
      base = os.path.join(self.runs_dir, 'shared', self.run.shared)
    else:
      base = os.path.join(self.runs_dir, self.sweep, slug(self.run.name))
    extra = '_' + slug(self.budget.replace(',', '_')) if self.budget else ''
    return os.path.join(base, f'steps{self.steps}{extra}_seed{self.seed}')

  @property
  def command(self) -> list[str]:
    return ['python', '-m', 'pete_jax.main', f'--config={self.config_arg}',
            f'--workdir={self.workdir}', f'--config.seed={self.seed}'] + [
                f'--config.{field}={value}' for field, value in self.run.overrides]

  def finished(self) -> bool:
    return os.path.exists(os.path.join(self.workdir, 'final_metrics.json'))


def slug(name: str) -> str:
  """A file-name-safe form of a run name."""
  return re.sub(r'[^A-Za-z0-9_.=-]+', '_', name).strip('_')


def machine() -> dict:
  """Where the runs ran: platform, CPU count, JAX version and devices."""
  import jax  # pylint: disable=import-outside-toplevel
  return {'platform': platform.platform(), 'processor': platform.processor() or platform.machine(),
          'cpu_count': os.cpu_count(), 'python': platform.python_version(),
          'jax': jax.__version__, 'devices': [str(d) for d in jax.devices()]}


def read_json(path: str, default=None):
  if not os.path.exists(path):
    return default
  with open(path, encoding='utf-8') as f:
    return json.load(f)


def write_json(path: str, value) -> None:
  os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
  with open(path + '.tmp', 'w', encoding='utf-8') as f:
    json.dump(value, f, indent=2)
  os.replace(path + '.tmp', path)


def execute(job: Job, python: str = sys.executable, log=print) -> str:
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
    rc = subprocess.call(command, stdout=out, stderr=subprocess.STDOUT)
  record['attempts'].append({'wall_s': round(time.time() - start, 1), 'rc': rc,
                             'started': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(start))})
  record.update(command=' '.join(job.command), machine=machine(),
                wall_s=round(sum(a['wall_s'] for a in record['attempts']), 1))
  write_json(record_path, record)
  status = 'done' if rc == 0 and job.finished() else 'failed'
  log(f'{status} (rc {rc}, {record["wall_s"]:.0f} s): {job.workdir}')
  return status


def job_config(job: Job):
  """The resolved config of a job (the same one its command builds)."""
  from configs import reduced  # pylint: disable=import-outside-toplevel
  config = reduced.get_config(job.config_arg.split(':', 1)[1])
  config.seed = job.seed
  for field, value in job.run.overrides:
    *parents, leaf = field.split('.')
    section = config
    for p in parents:
      section = section[p]
    section[leaf] = value
  return config


def vocab_size(config, workdir: str) -> int:
  """The model's V: the config's, the trained SentencePiece model's, or the WordPiece file's."""
  from pete_jax.params import vocab_size_of  # pylint: disable=import-outside-toplevel
  if config.model.vocab_size:
    return config.model.vocab_size
  if config.tokenizer.kind == 'sentencepiece':
    path = config.tokenizer.spm_model_path or os.path.join(workdir, 'spm.model')
    if os.path.exists(path):
      import sentencepiece  # pylint: disable=import-outside-toplevel
      return sentencepiece.SentencePieceProcessor(model_file=path).get_piece_size()
    return config.tokenizer.spm_vocab_size
  return vocab_size_of(config)


def parameter_count(job: Job) -> dict:
  """``{'total': n, 'by_component': {...}, 'vocab_size': V}`` for the job's model."""
  from pete_jax.encoder import encoder_from_config  # pylint: disable=import-outside-toplevel
  from pete_jax.params import count_by_component  # pylint: disable=import-outside-toplevel
  config = job_config(job)
  vocab = vocab_size(config, job.workdir)
  counts = count_by_component(encoder_from_config(config.model, vocab, config.data.max_len))
  return {'total': sum(counts.values()), 'by_component': counts, 'vocab_size': vocab}


def job_result(job: Job) -> dict:
  """Everything a results table needs about one job (metrics None when not run)."""
  config = job_config(job)
  runner = read_json(os.path.join(job.workdir, RUNNER_FILE), {})
  return {
      'seed': job.seed, 'workdir': job.workdir, 'command': ' '.join(job.command),
      'overrides': {k: v for k, v in job.run.overrides},
      'metrics': read_json(os.path.join(job.workdir, 'final_metrics.json')),
      'steps': config.train.num_steps, 'batch_size': config.train.batch_size,
      'finetune_steps': config.finetune.num_steps if config.finetune.enabled else 0,
      'wall_s': runner.get('wall_s'), 'machine': runner.get('machine'),
      'params': parameter_count(job),
  }
