"""Table 2 at the converged budget: pre-training, then STS-B fine-tuning tuned like every GLUE task.

  python -m experiments.run table2_converged_pretrain      # pre-training, fine-tuning off
  python -m experiments.table2_converged [--results_only]  # STS-B fine-tuning, the table

Each Table 2 model is pre-trained at the converged budget (``configs/converged.py``,
seed 0). Its STS-B fine-tuning is a GLUE suite pair (``experiments.glue.run_pair``):
the learning rate is chosen on a held-out tenth of STS-B train from the GLUE grid
(widened while an edge wins), so is the epoch of every run, and fine-tuning seeds
0-2 then run at that rate; STS-B validation is only reported. The reduced-budget
Table 2 fine-tunes for a fixed 180 steps at 2e-5 inside the pre-training run
(``python -m experiments.run table2``).

Writes ``experiments/results/table2_converged.md`` / ``.json`` and the results READMEs'
blocks. Spreads are over fine-tuning seeds of one pre-trained model.
"""

import os
import statistics

from absl import app, flags

from experiments import glue, jobs, sweeps, tables

SWEEP = 'table2_converged'
PRETRAIN_SWEEP = 'table2_converged_pretrain'
TASK = 'stsb'


def model_rows(train: bool, runs_dir='runs', results_dir='experiments/results') -> list[dict]:
  """One row per Table 2 model: pre-training record, fine-tuning grid and seeds."""
  dirs = {'runs_dir': runs_dir, 'records_dir': os.path.join(results_dir, 'runs')}
  rows = []
  paper = {r.name: r for r in sweeps.table2()}  # the paper's scores after fine-tuning
  for r in sweeps.sweep_runs(PRETRAIN_SWEEP):
    steps = jobs.default_steps(r)
    job = jobs.Job(PRETRAIN_SWEEP, r, 0, steps, runs_dir, '', dirs['records_dir'])
    row = tables.row_result(PRETRAIN_SWEEP, r, [job])  # zero-shot, params, wall, command
    ft = glue.run_pair(r.name, job.workdir, TASK, glue.SEEDS, True, train, **dirs)
    per_seed = ft['per_seed']
    row.update(
      paper={
        **row['paper'],
        'spearman': paper[r.name].paper_spearman,
        'pearson': paper[r.name].paper_pearson,
      },
      finetune=ft,
      spearman=tables.summarise([v['spearman'] for v in per_seed.values()]),
      pearson=tables.summarise([v['pearson'] for v in per_seed.values()]),
      per_seed_spearman={s: v['spearman'] for s, v in per_seed.items()},
    )
    mean = row['spearman']['mean']
    row['difference'] = None if mean is None else mean - row['paper']['spearman']
    rows.append(row)
  return rows


def markdown(rows: list[dict]) -> str:
  lines = [
    '| model | paper Spearman / Pearson | ours Spearman (mean ± std) | per fine-tuning seed '
    '| ours − paper | ours Pearson | zero-shot before fine-tuning | params (ours) | paper params '
    '| fine-tuning lr: selection / validation score (seed 0) | epoch chosen | pre-training '
    '/ fine-tuning wall |',
    '|---' * 12 + '|',
  ]
  for r in rows:
    ft = r['finetune']
    grid = glue.grid_cell(ft)
    walls = [s['wall_s'] for s in r['seeds'] if s['wall_s']]
    pre = f'{walls[0] / 60:.1f} min' if walls else '—'
    fine = f'{statistics.fmean(ft["wall_s"]) / 60:.1f} min' if ft['wall_s'] else '—'
    lines.append('| ' + ' | '.join([
      r['name'], f'{r["paper"]["spearman"]:.1f} / {r["paper"]["pearson"]:.1f}',
      tables.format_summary(r['spearman']), tables._per_seed(r),  # pylint: disable=protected-access
      '—' if r['difference'] is None else f'{r["difference"]:+.2f}',
      tables.format_summary(r['pearson']), tables.format_summary(r['zero_shot_spearman']),
      f'{r["params"]["total"]:,}', r['paper']['params'], grid,
      ', '.join(str(e) for e in ft['epochs'].values()) or '—', f'{pre} / {fine}',
    ]) + ' |')  # fmt: skip
  return '\n'.join(lines)


def write(rows: list[dict], results_dir: str) -> str:
  """``<results_dir>/table2_converged.md`` / ``.json`` and the results README's block."""
  commands = [s['command'] for r in rows for s in r['seeds'] if s['metrics']]
  commands += [c for r in rows for c in r['finetune']['commands']]
  machines = {str(s['machine']) for r in rows for s in r['seeds'] if s['machine']}
  machines |= {m for r in rows for m in r['finetune']['machines']}
  intro = [
    '# Table 2 at the converged budget',
    '',
    'Metric: STS-B validation Spearman and Pearson x100 after STS-B fine-tuning (zero-shot '
    'before it in its own column). Pre-training: ' + tables.budget_text([{'budget': 'converged'}]),
    '',
    'Fine-tuning (`experiments/glue.py`, `configs/glue.py`): STS-B train minus a fixed tenth '
    'held out as the selection split; AdamW, batch 32, 3 epochs, 10% warmup then linear decay, '
    'the cosine trained on 1 - Pearson. The learning rate is chosen on the selection split from '
    f'{", ".join(f"{lr:g}" for lr in glue.LR_GRID)} (widened while an edge wins), and so is '
    'the epoch of every run. Spreads are over fine-tuning seeds 0-2 of one pre-trained model '
    '(seed 0).',
  ]
  return glue.write_report(results_dir, SWEEP, intro, markdown(rows), rows, commands, machines,
                           'python -m experiments.table2_converged', {'sweep': SWEEP})  # fmt: skip


def main(argv):
  del argv
  f = flags.FLAGS
  rows = model_rows(False, f.runs_dir, f.results_dir)
  path = write(rows, f.results_dir)
  if not f.results_only:
    rows = model_rows(True, f.runs_dir, f.results_dir)
    path = write(rows, f.results_dir)
  print(f'wrote {path}')
  if tables.update_readme(f.results_dir):
    print('updated the results block of README.md')


if __name__ == '__main__':
  flags.DEFINE_bool('results_only', False, 'Train nothing; rewrite the table.')
  flags.DEFINE_string('runs_dir', 'runs', 'Where the workdirs are.')
  flags.DEFINE_string(
    'results_dir',
    'experiments/results',
    'Where tables go, and where run records are read and written (<results_dir>/runs).',
  )
  app.run(main)
