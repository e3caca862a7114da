"""The learning-rate grid's report (and the schedule sweep's): the choice made on the
selection set, and the curves.

The grid (``experiments/sweeps.py:lr_grid``) trains Fourier and learned 1x256 at each
learning rate, evaluating every few hundred steps on STS-B validation (the reported
set) and on the selection set (zero-shot STS-B *train* pairs, which pre-training
never sees). The learning rate of each kind is the one with the best selection
score at the last step; validation is shown, never used to choose.
"""

import os

from pete_jax.files import read_json

SELECT = 'select_spearman'


def curves(rows: list[dict]) -> dict:
  """``{kind: {lr: [eval, ...]}}`` from the run records (seed 0 of each row; runs not yet done are left out)."""
  out: dict = {}
  for r in rows:
    kind = r['module'].split('_')[1]
    lr = r['seeds'][0]['learning_rate']
    record = read_json(r['seeds'][0]['record']) or {}
    evals = sorted(record.get('evals', []), key=lambda e: e['step'])
    if evals:
      out.setdefault(kind, {})[lr] = evals
  return out


def choices(grid: dict) -> dict:
  """``{kind: lr}``: the best selection score at the last evaluation (only finished runs)."""
  out = {}
  for kind, by_lr in grid.items():
    last = {lr: evals[-1][SELECT] for lr, evals in by_lr.items() if SELECT in evals[-1]}
    if last:
      out[kind] = max(last, key=last.get)
  return out


def markdown(rows: list[dict], plot_name: str | None) -> str:
  """The grid's selection table (every evaluation) and which learning rate each kind gets."""
  grid = curves(rows)
  if not grid:
    return ''
  # One rate per kind (the schedule sweep) is a set of learning curves, not a choice.
  chosen = choices(grid) if any(len(by_lr) > 1 for by_lr in grid.values()) else {}
  lines = [
    '## Learning-rate selection' if chosen else '## Learning curves',
    '',
    'Selection set: zero-shot STS-B train pairs (5,749; never seen in pre-training). '
    'Each cell: selection Spearman / STS-B validation Spearman (x100) at that step.',
    '',
  ]
  if chosen:
    lines[2] += (
      ' The chosen rate (**bold**) has the best selection score at the last step; '
      'validation is reported, not used to choose.'
    )
  steps = sorted({e['step'] for by_lr in grid.values() for ev in by_lr.values() for e in ev})
  lines += [
    '| kind | lr | ' + ' | '.join(f'step {s}' for s in steps) + ' |',
    '|---|---|' + '---|' * len(steps),
  ]
  for kind, by_lr in grid.items():
    for lr in sorted(by_lr):
      at = {e['step']: e for e in by_lr[lr]}
      cells = [
        f'{at[s][SELECT]:.2f} / {at[s]["spearman"]:.2f}' if s in at and SELECT in at[s] else ''
        for s in steps
      ]
      name = f'**{lr:g}**' if chosen.get(kind) == lr else f'{lr:g}'
      lines.append(f'| {kind} | {name} | ' + ' | '.join(cells) + ' |')
  for kind, lr in chosen.items():
    tried = sorted(grid[kind])
    edge = lr in (tried[0], tried[-1])
    lines.append('')
    lines.append(
      f'- {kind}: {lr:g} of {", ".join(f"{v:g}" for v in tried)}'
      + (' (an edge of the grid: widen it before trusting the choice)' if edge else '')
    )
  if plot_name:
    lines += ['', f'![learning curves]({plot_name})']
  return '\n'.join(lines) + '\n'


def plot(rows: list[dict], out: str) -> str | None:
  """Spearman vs step for each kind and learning rate: selection set and validation."""
  grid = curves(rows)
  if not grid:
    return None
  from experiments.plots import save_figure  # pylint: disable=import-outside-toplevel
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

  fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
  styles = {'fourier': '-', 'learned': '--'}
  for kind, by_lr in grid.items():
    for i, lr in enumerate(sorted(by_lr)):
      steps = [e['step'] for e in by_lr[lr]]
      for ax, key in zip(axes, (SELECT, 'spearman')):
        ys = [e.get(key) for e in by_lr[lr]]
        ax.plot(steps, ys, styles.get(kind, ':'), marker='o', color=f'C{i}', label=f'{kind} {lr:g}')
  axes[0].set(title='selection set (STS-B train, zero-shot)', xlabel='step', ylabel='Spearman x100')
  axes[1].set(title='STS-B validation (reported)', xlabel='step')
  axes[1].legend(fontsize=8)
  return save_figure(fig, out)


def write(rows: list[dict], results_dir: str, sweep: str = 'lr_grid') -> None:
  """Appends the selection section (and its plot) to ``<results_dir>/<sweep>.md``."""
  png = plot(rows, os.path.join(results_dir, f'{sweep}.png'))
  text = markdown(rows, os.path.basename(png) if png else None)
  if text:
    with open(os.path.join(results_dir, f'{sweep}.md'), 'a', encoding='utf-8') as f:
      f.write('\n' + text)
