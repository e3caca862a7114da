"""Results tables of a sweep: ``experiments/results/<sweep>.md`` and ``.json``.

Per row: the paper's value, ours (mean ± std over seeds and each seed), the
difference, the parameter count, steps, batch, wall time, the machine, and the
exact commands with their config overrides.
"""

import json
import os
import statistics
import time

from scipy import stats

from experiments import jobs, readme_blocks, sweeps
from pete_jax import files
from experiments.sweeps import Run

BUDGETS = {
  'reduced': (
    'Reduced-scale budget (configs/reduced.py): batch {batch} pairs; the ~20,400 local SNLI/MNLI '
    "entailment pairs (configs/local_data.py, about 6% of the paper's data); AdamW lr {lr}, "
    '{warmup} warmup steps then linear decay; max_len {max_len}; STS-B validation (1,500 pairs) '
    'zero-shot, masked mean pooling, paper normalisation (2p/(V-1)-1) unless a row says '
    'otherwise. The paper trains 122,700 steps at max_len 128.'
  ),
  'converged': (
    'Converged budget (configs/converged.py): as the reduced budget (configs/reduced.py: batch '
    "{batch} pairs, the ~20,400 local SNLI/MNLI entailment pairs, about 6% of the paper's data, "
    'AdamW, {warmup} warmup steps then linear decay, max_len {max_len}) but lr {lr} and {steps:,} '
    'steps, both chosen on the selection set (zero-shot STS-B train pairs; '
    'lr_grid.md, schedule.md). STS-B validation (1,500 pairs) zero-shot, masked mean pooling, '
    'paper normalisation unless a row says otherwise. The paper trains 122,700 steps at max_len 128.'
  ),
}
# Budget fields a row may set for itself (lr_grid's rates): the budget text names them.
OWN_BUDGET_FIELDS = ('train.learning_rate', 'train.num_steps', 'train.batch_size')


def rate(lr: float) -> str:
  """``3e-4`` (``1.5e-4``), as the papers write a learning rate."""
  mantissa, exponent = f'{lr:e}'.split('e')
  return mantissa.rstrip('0').rstrip('.') + f'e{int(exponent)}'


def budget_text(rows: list[dict]) -> str:
  """The budget paragraph of the rows' budget (the reduced one for an empty table), from
  its config module; the fields rows set for themselves are named."""
  budget = rows[0].get('budget', 'reduced') if rows else 'reduced'
  module, reduced = jobs.budget_module(budget), jobs.budget_module('reduced')
  text = BUDGETS[budget].format(
    batch=reduced.BATCH, lr=rate(module.LEARNING_RATE), warmup=reduced.WARMUP,
    max_len=reduced.MAX_LEN, steps=module.STEPS,
  )  # fmt: skip
  own = sorted({k for r in rows for k in r.get('overrides', {}) if k in OWN_BUDGET_FIELDS})
  if own:
    text += f' Rows set their own {", ".join(own)} (in their names and commands).'
  return text


def stage_of(sweep: str) -> str:
  """Which metrics a sweep reports: 'finetune' for Table 2 (fine-tuned in the same run),
  else 'pretrain' (zero-shot)."""
  return 'finetune' if sweep == 'table2' else 'pretrain'


def summarise(values: list[float]) -> dict:
  if not values:
    return {'mean': None, 'std': None, 'n': 0}
  return {
    'mean': statistics.fmean(values),
    'std': statistics.stdev(values) if len(values) > 1 else None,
    'n': len(values),
  }


def row_result(sweep: str, run: Run, seed_jobs: list[jobs.Job]) -> dict:
  """One table row: a run over its seeds."""
  seeds = [jobs.job_result(j) for j in seed_jobs]
  stage = stage_of(sweep)
  done = [s for s in seeds if s['metrics'] and stage in s['metrics']]
  spearman = [s['metrics'][stage]['spearman'] for s in done]
  pearson = [s['metrics'][stage]['pearson'] for s in done]
  zero_shot = [s['metrics']['pretrain']['spearman'] for s in done]
  ours = summarise(spearman)
  diff = (
    None
    if ours['mean'] is None or run.paper_spearman is None
    else (ours['mean'] - run.paper_spearman)
  )
  return {
    'name': run.name,
    'module': run.module,
    'overrides': dict(run.overrides),
    'paper': {
      'spearman': run.paper_spearman,
      'pearson': run.paper_pearson,
      'params': run.paper_params,
    },
    'spearman': ours,
    'pearson': summarise(pearson),
    'zero_shot_spearman': summarise(zero_shot),
    'final_loss': summarise([s['final_loss'] for s in done if s['final_loss'] is not None]),
    'per_seed_spearman': {s['seed']: s['metrics'][stage]['spearman'] for s in done},
    'difference': diff,
    'params': seeds[0]['params'],
    'seeds': seeds,
    'reference': run.reference,
    'compare_with': run.compare_with,
    'budget': run.budget,
  }


def compare_to_reference(rows: list[dict]) -> list[dict]:
  """Sets each row's ``vs_reference``: its mean Spearman minus that of the row it is
  compared with (its ``compare_with`` row, else the sweep's reference row).

  With two or more seeds on both sides it also gives Welch's t-test p-value and 95%
  confidence interval, so a difference can be told from seed noise. Rows with nothing to
  compare with get None.
  """
  ref = next((r for r in rows if r.get('reference')), None)
  by_name = {r['name']: r for r in rows}
  for r in rows:
    other = by_name.get(r.get('compare_with')) or ref
    r['vs_reference'] = None if other is None or r is other else compare(r, other)
  return rows


def compare(row: dict, other: dict) -> dict | None:
  """``row``'s mean Spearman minus ``other``'s (see :func:`welch`), naming ``other``."""
  cmp = welch(list(row['per_seed_spearman'].values()), list(other['per_seed_spearman'].values()))
  return cmp and {'other': other['name'], **cmp}


def welch(ours: list[float], theirs: list[float]) -> dict | None:
  """The difference of the means, with Welch's p and 95% confidence interval where both
  sides have two seeds or more; None if either has none."""
  if not ours or not theirs:
    return None
  p, ci = None, None
  if len(ours) > 1 and len(theirs) > 1:
    test = stats.ttest_ind(ours, theirs, equal_var=False)
    p, ci = float(test.pvalue), [float(x) for x in test.confidence_interval(0.95)]
  return {'difference': statistics.fmean(ours) - statistics.fmean(theirs), 'welch_p': p,
          'ci95': ci}  # fmt: skip


def format_summary(summary: dict) -> str:
  if summary['mean'] is None:
    return 'not run'
  std = '' if summary['std'] is None else f' ± {summary["std"]:.2f}'
  return f'{summary["mean"]:.2f}{std} (n={summary["n"]})'


def _num(value, spec='.2f', empty='—') -> str:
  return empty if value is None else format(value, spec)


def _per_seed(row: dict) -> str:
  return ', '.join(f's{k}: {v:.2f}' for k, v in row['per_seed_spearman'].items()) or '—'


def _vs_reference(row: dict) -> str:
  cmp = row.get('vs_reference')
  if not cmp:
    return '—'
  p = 'one seed' if cmp['welch_p'] is None else f'p={cmp["welch_p"]:.2g}'
  vs = f' vs {cmp["other"]}' if row.get('compare_with') else ''
  return f'{cmp["difference"]:+.2f}{vs} ({p})'


def _leading_cells(row: dict, ref: bool) -> list[str]:
  """Run, paper, ours, per seed, difference (and the comparison with the reference row)."""
  cells = [row['name'], _num(row['paper']['spearman']), format_summary(row['spearman']), _per_seed(row),
           _num(row['difference'], '+.2f')]  # fmt: skip
  return cells + ([_vs_reference(row)] if ref else [])


def _has_reference(rows: list[dict]) -> bool:
  return any(r.get('reference') or r.get('compare_with') for r in rows)


def _wall(row: dict) -> str:
  walls = [s['wall_s'] for s in row['seeds'] if s['wall_s'] and s['metrics']]
  return '—' if not walls else f'{statistics.fmean(walls) / 60:.1f} min'


def compact_table(rows: list[dict], finetune: bool = False) -> str:
  """The short form of a results table, for the README files."""
  ref = _has_reference(rows)
  lines = [
    '| run | paper Spearman | ours Spearman (mean ± std, n) | per seed | ours − paper | '
    + ('ours − compared row (Welch) | ' if ref else '')
    + 'params (ours) | wall / run |'
    + (' zero-shot before fine-tuning |' if finetune else ''),
    '|---' * (7 + ref + finetune) + '|',
  ]
  for r in rows:
    cells = _leading_cells(r, ref) + [f'{r["params"]["total"]:,}', _wall(r)]
    if finetune:
      cells.append(format_summary(r['zero_shot_spearman']))
    lines.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def _update_results_readme(results_dir: str, name: str, rows: list[dict], finetune: bool) -> None:
  """Rewrites block ``name`` of ``<results_dir>/README.md`` (if it has one)."""
  text = f'From `python -m experiments.run {name}` ([{name}.md]({name}.md)):\n\n' + compact_table(
    rows, finetune
  )
  readme_blocks.replace_block(os.path.join(results_dir, 'README.md'), name, text)


def markdown(sweep: str, rows: list[dict]) -> str:
  """The sweep's results as Markdown."""
  stage = stage_of(sweep)
  what = (
    'STS-B validation after STS-B fine-tuning (pre-training zero-shot in its own column)'
    if stage == 'finetune'
    else 'STS-B validation, zero-shot'
  )
  ref = _has_reference(rows)
  lines = [
    f'# Sweep `{sweep}`',
    '',
    f'Metric: {what}; Spearman and Pearson x100. Final train loss: the pre-training loss '
    'averaged over the last 10% of logged steps, how well a run fits its training pairs.',
    '',
    budget_text(rows),
    '',
    '| run | paper Spearman | ours Spearman (mean ± std) | per seed | ours − paper | '
    + ('ours − compared row (Welch) | ' if ref else '')
    + 'ours Pearson | paper Pearson | params (ours) | paper params | steps | batch | '
    'final train loss | wall / run |'
    + (' zero-shot before fine-tuning |' if stage == 'finetune' else ''),
    '|---' * (13 + ref + (stage == 'finetune')) + '|',
  ]
  for r in rows:
    first = r['seeds'][0]
    steps = str(first['steps']) + (
      f' + {first["finetune_steps"]} ft' if first['finetune_steps'] else ''
    )
    cells = _leading_cells(r, ref) + (
      [
        format_summary(r['pearson']),
        _num(r['paper']['pearson']),
        f'{r["params"]["total"]:,}',
        r['paper']['params'] or '—',
        steps,
        str(first['batch_size']),
        format_summary(r['final_loss']) if r['final_loss']['n'] else '—',
        _wall(r),
      ]
    )
    if stage == 'finetune':
      cells.append(format_summary(r['zero_shot_spearman']))
    lines.append('| ' + ' | '.join(cells) + ' |')
  machines = {str(s['machine']) for r in rows for s in r['seeds'] if s['machine']}
  commands = [f'`{s["command"]}`' + ('' if s['metrics'] else ' (not run)')
              for r in rows for s in r['seeds']]  # fmt: skip
  lines += provenance(machines, commands, f'python -m experiments.run {sweep}')
  return '\n'.join(lines)


def provenance(machines: set, commands: list[str], generated_by: str) -> list[str]:
  """A report's closing sections: the machines, every run's command (Markdown, e.g.
  ``'`python ...` (not run)'``), and the command that wrote the report, with the time."""
  return [
    '', '## Machines', '', *[f'- `{m}`' for m in sorted(machines)], '',
    'Wall time is the whole process (data loading, XLA compilation, training, evaluation) '
    'and depends on what else ran on the same cores.',
    '', '## Commands', '', *[f'- {c}' for c in commands], '',
    f'Generated by `{generated_by}` on {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}'
    + ('' if commands else ' (nothing has run yet)') + '.',
    '',
  ]  # fmt: skip


def write(sweep: str, rows: list[dict], results_dir: str) -> str:
  """Writes ``<results_dir>/<sweep>.md`` and ``.json``; returns the Markdown path."""
  os.makedirs(results_dir, exist_ok=True)
  rows = compare_to_reference(rows)
  files.write_json(
    os.path.join(results_dir, f'{sweep}.json'),
    {'sweep': sweep, 'budget': budget_text(rows), 'rows': rows},
  )
  path = os.path.join(results_dir, f'{sweep}.md')
  with open(path, 'w', encoding='utf-8') as f:
    f.write(markdown(sweep, rows))
  _update_results_readme(results_dir, sweep, rows, stage_of(sweep) == 'finetune')
  return path


def append_choice(path: str, scores: dict) -> None:
  """Appends a moonshot search's final selection scores (zero-shot STS-B train; the
  choice is made on these, never on the validation column) and the choice to ``path``."""
  chosen = sweeps.best_score(scores)
  lines = ['## Choice (selection set: zero-shot STS-B train, Spearman x100, final step)', '']
  lines += [f'- {name}: {_num(score)}' + (' **(chosen)**' if name == chosen else '')
            for name, score in scores.items()]  # fmt: skip
  if chosen is None:
    missing = sum(score is None for score in scores.values())
    lines.append(f'- no choice yet: {missing} candidate(s) not run')
  with open(path, 'a', encoding='utf-8') as f:
    f.write('\n'.join(['', *lines, '']))


def write_group(group: str, sweeps: tuple, results_dir: str) -> str:
  """One table over several sweeps (e.g. every ablation), from their JSON files."""
  rows = []
  for sweep in sweeps:
    path = os.path.join(results_dir, f'{sweep}.json')
    if os.path.exists(path):
      with open(path, encoding='utf-8') as f:
        rows += [{**r, 'name': f'{sweep}: {r["name"]}'} for r in json.load(f)['rows']]
  text = markdown(group, rows).replace(
    f'# Sweep `{group}`', f'# Sweeps `{group}` ({", ".join(sweeps)})', 1
  )
  out = os.path.join(results_dir, f'{group}.md')
  with open(out, 'w', encoding='utf-8') as f:
    f.write(text)
  return out


def trained_at(rows: list[dict]) -> str:
  """'2,000 steps at lr 3e-4': the steps the rows' finished seeds trained, at their budget's rate."""
  steps = sorted({s['steps'] for r in rows for s in r['seeds'] if s['metrics']})
  lr = rate(
    jobs.budget_module(rows[0].get('budget', 'reduced') if rows else 'reduced').LEARNING_RATE
  )
  return f'{" / ".join(f"{n:,}" for n in steps) or "no"} steps at lr {lr}'


def readme_summary(results_dir: str) -> str:
  """The README's results block: Table 1 and Table 2 rows from their JSON files."""
  lines = []
  for sweep, title in (
    ('table1_converged', 'Table 1 at the converged budget ({trained}; zero-shot)'),
    ('table1', 'Table 1, early training ({trained}; zero-shot)'),
    (
      'table2_converged',
      'Table 2 at the converged budget (after STS-B fine-tuning tuned on '
      'a held-out tenth of STS-B train)',
    ),
    ('table2', 'Table 2, early training (after STS-B fine-tuning)'),
  ):
    path = os.path.join(results_dir, f'{sweep}.json')
    if not os.path.exists(path):
      continue
    with open(path, encoding='utf-8') as f:
      rows = json.load(f)['rows']
    command = (
      'experiments.table2_converged' if sweep == 'table2_converged' else f'experiments.run {sweep}'
    )
    lines += [
      f'{title.format(trained=trained_at(rows))}, from `python -m {command}` '
      f'(`experiments/results/{sweep}.md`):',
      '',
      compact_table(rows, sweep.startswith('table2')),
    ]
    lines.append('')
  return '\n'.join(lines)


def update_readme(results_dir: str, readme: str = readme_blocks.README) -> bool:
  """Rewrites the README's ``results`` block from the committed tables.

  The repository's README is rewritten only from the committed results folder: tables
  written elsewhere (``--results_dir``) leave it citing the committed ones.
  """
  elsewhere = os.path.abspath(results_dir) != os.path.abspath(sweeps.RESULTS_DIR)
  if readme == readme_blocks.README and elsewhere:
    return False
  return readme_blocks.replace_block(readme, 'results', readme_summary(results_dir))
