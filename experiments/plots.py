"""Figures of the reproduction (PNG under experiments/results/).

  python -m experiments.plots [--runs_dir=runs] [--out_dir=experiments/results]

1. ``spearman_vs_params.png``: STS-B Spearman against parameter count, Fourier
   and learned, the paper's points and ours (``table1.json``, ``table1_converged.json``).
2. ``training_curves.png``: contrastive loss per logged step (mean over seeds) and
   the final STS-B Spearman of every run (``experiments/results/runs/``): Table 1,
   the other sweeps and Table 2 pre-training, one panel each, one row per budget.
3. ``basis_refinement.png``: the fixed Fourier basis T(p) of a trained Fourier
   model and its learned refinement E(p) - T(p), as functions of the token id.
4. ``neighbour_distance.png``: distance between neighbouring ids' features (and
   the trained model's embeddings) as the vocabulary grows from 30k to 256k.
5. ``ablations.png`` / ``ablations_converged.png``: each ablation row's seeds and mean
   against the spread of the reference (Fourier 1x256) seeds (from the ablation sweeps'
   JSON, at each budget).
6. ``bases.png``: every fixed basis over the BERT id range, with the sign changes
   of its highest feature (how finely it can tell neighbouring ids apart).
7. ``headlines.png``: the comparisons the results README's findings rest on, each
   difference with its 95% confidence interval.
"""

import glob
import json
import os

from absl import app, flags
import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

from experiments.sweeps import ABLATIONS, CONVERGED_ABLATIONS, TABLE1_PAPER, table1  # pylint: disable=wrong-import-position
from pete_jax import files  # pylint: disable=wrong-import-position

VOCABS = (30_522, 50_000, 100_000, 150_000, 200_000, 256_000)


def save_figure(fig, out: str, dpi: int = 120) -> str:
  """Lays out, writes (cropped to what is drawn, long tick labels included) and closes
  ``fig``; returns ``out``."""
  fig.tight_layout()
  fig.savefig(out, dpi=dpi, bbox_inches='tight')
  plt.close(fig)
  return out


def _millions(text: str) -> float:
  return float(text.rstrip('M+')) * 1e6 if text.endswith(('M', 'M+')) else float('nan')


def spearman_vs_params(results_dir: str, out: str) -> str | None:
  """Figure 1 from ``table1.json`` and ``table1_converged.json``; None when neither exists."""
  budgets = {}
  for sweep, label, fill in (
    ('table1', 'early training', 'white'),
    ('table1_converged', 'converged', None),
  ):
    path = os.path.join(results_dir, f'{sweep}.json')
    if os.path.exists(path):
      budgets[label] = (fill, files.read_json(path)['rows'])
  if not budgets:
    return None
  fig, ax = plt.subplots(figsize=(6.4, 4.4))
  for kind, color in (('fourier', 'tab:blue'), ('learned', 'tab:orange')):
    paper = [(_millions(v[2]), v[0]) for k, v in TABLE1_PAPER.items() if k.startswith(kind)]
    ax.scatter(*zip(*paper), marker='s', color=color, label=f'{kind} (paper, 122,700 steps)')
    for label, (fill, rows) in budgets.items():
      ours = [r for r in rows if r['name'].startswith(kind) and r['spearman']['mean'] is not None]
      if ours:
        ax.errorbar(
          [r['params']['total'] for r in ours],
          [r['spearman']['mean'] for r in ours],
          yerr=[r['spearman']['std'] or 0 for r in ours],
          fmt='o',
          color=color,
          mfc=fill or color,
          capsize=3,
          label=f'{kind} (ours, {label})',
        )
  ax.set_xscale('log')
  ax.set_xlabel('encoder parameters')
  ax.set_ylabel('STS-B validation Spearman x100 (zero-shot)')
  ax.set_title('Table 1: STS-B vs parameters (mean ± std over seeds)')
  ax.legend(fontsize=7)
  ax.grid(alpha=0.3)
  return save_figure(fig, out)


def _curve_panel(sweep: str, run: str) -> int:
  """Column of a run's curves: Table 1, the other pre-training sweeps, Table 2.

  ``shared`` workdirs hold Table 1's models and also the ablations' and peers' runs
  that several sweeps read (GeGLU, SentencePiece, ...): only Table 1's go in its column.
  """
  if sweep == 'table1' or (sweep == 'shared' and run in TABLE1_PAPER):
    return 0
  return 2 if sweep.startswith('table2') else 1


def training_curves(records_dir: str, out: str) -> str | None:
  """Figure 2: the pre-training loss of every run under ``records_dir``, mean over its seeds;
  one row of panels per budget (early training, converged)."""
  runs: dict[tuple, list] = {}  # (budget, '<sweep>/<run>') -> the records of its seeds
  for path in sorted(glob.glob(os.path.join(records_dir, '**', '*.json'), recursive=True)):
    record = files.read_json(path)
    if 'losses' not in record:  # a fine-tuning record (GLUE suite): no pre-training curve
      continue
    budget = 'converged' if os.path.basename(path).startswith('converged_') else 'reduced'
    runs.setdefault((budget, os.path.relpath(os.path.dirname(path), records_dir)), []).append(
      record
    )
  if not runs:
    return None
  panels = ('Table 1 runs', 'ablations and other sweeps', 'Table 2 pre-training')
  budgets = {'reduced': 'reduced budget', 'converged': 'converged budget'}
  fig, axes = plt.subplots(2, 3, figsize=(18, 9.6), squeeze=False)
  for (budget, name), records in runs.items():
    sweep, run = name.split('/', 1)
    panel = _curve_panel(sweep, run)
    steps = records[0]['losses']['steps']
    same = [r for r in records if r['losses']['steps'] == steps]  # seeds logged alike
    spearman = np.mean([r['metrics']['pretrain']['spearman'] for r in same])
    label = run if panel != 1 else name
    axes[list(budgets).index(budget), panel].plot(
      steps,
      np.mean([r['losses']['loss'] for r in same], axis=0),
      lw=1,
      label=f'{label} (n={len(same)}, zero-shot STS-B {spearman:.1f})',
    )
  for row, text in zip(axes, budgets.values()):
    for ax, title in zip(row, panels):
      ax.set_xlabel('pre-training step')
      ax.set_title(f'{title} ({text}; mean over seeds)', fontsize=9)
      if ax.lines:
        ax.legend(fontsize=5 if 'ablations' in title else 7)
      ax.grid(alpha=0.3)
    row[0].set_ylabel('symmetric contrastive loss (batch 128)')
  return save_figure(fig, out)


def ablations(results_dir: str, out: str, converged: bool = False) -> str | None:
  """Figure 5: every ablation row's seeds and mean next to its reference row's spread, at the
  reduced budget or (``converged``) at the converged one."""
  rows = []
  for sweep in CONVERGED_ABLATIONS if converged else ABLATIONS:
    path = os.path.join(results_dir, f'{sweep}{"_converged" if converged else ""}.json')
    if os.path.exists(path):
      with open(path, encoding='utf-8') as f:
        rows += [(sweep, r) for r in json.load(f)['rows']]
  reference = next((r for _, r in rows if r.get('reference') and r['per_seed_spearman']), None)
  variants = [(s, r) for s, r in rows if not r.get('reference') and r['per_seed_spearman']]
  if reference is None or not variants:
    return None
  ref = list(reference['per_seed_spearman'].values())
  fig, ax = plt.subplots(figsize=(8.5, 0.32 * len(variants) + 1.6))
  ax.axvspan(
    min(ref),
    max(ref),
    color='gray',
    alpha=0.25,
    label=f'reference seeds (Fourier 1x256, n={len(ref)})',
  )
  ax.axvline(np.mean(ref), color='gray', lw=1)
  for y, (_, r) in enumerate(variants):
    seeds = list(r['per_seed_spearman'].values())
    ax.scatter(
      seeds,
      [y] * len(seeds),
      s=12,
      color='tab:blue',
      alpha=0.6,
      label='one seed' if y == 0 else None,
    )
    ax.scatter(
      [np.mean(seeds)], [y], marker='|', s=200, color='tab:red', label='mean' if y == 0 else None
    )
  ax.set_yticks(range(len(variants)), [f'{s}: {r["name"]}' for s, r in variants], fontsize=7)
  ax.invert_yaxis()
  budget = 'converged budget' if converged else 'reduced budget'
  ax.set_xlabel(f'STS-B validation Spearman x100 (zero-shot, {budget})')
  ax.set_title('Ablations at Fourier 1x256 (grey: the reference seeds)')
  ax.legend(fontsize=7, loc='lower left')
  ax.grid(alpha=0.3, axis='x')
  return save_figure(fig, out)


def bases(out: str, vocab: int = 30_522, dim: int = 256, columns: int = 2048) -> str:
  """Figure 6: the features of every basis over the id range, as an image per basis.

  The title gives the sign changes of the highest feature over all ``vocab`` ids
  (for Fourier its highest sine): Hermite and Laguerre on [-1, 1] leave most ids
  in smooth, nearly redundant features; their stretched forms do not.
  """
  from pete_jax import basis  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel

  shown = np.linspace(0, vocab - 1, columns).round().astype(np.int32)
  fig, axes = plt.subplots(len(basis.BASES), 1, figsize=(8, 1.45 * len(basis.BASES)), sharex=True)
  for ax, name in zip(axes, basis.BASES):
    every = np.asarray(basis.basis_features(jnp.arange(vocab), vocab, dim, basis=name))
    changes = basis.sign_changes(every[:, -2 if name == 'fourier' else -1])
    image = every[shown].T
    limit = np.abs(image).max()
    ax.imshow(
      image,
      aspect='auto',
      cmap='RdBu_r',
      vmin=-limit,
      vmax=limit,
      interpolation='nearest',
      extent=(0, vocab - 1, dim - 0.5, -0.5),
    )
    ax.set_title(f'{name}: highest feature changes sign {changes} times', fontsize=8)
    ax.set_ylabel('feature', fontsize=7)
  axes[-1].set_xlabel(f'token id p (V = {vocab}, x = 2p/(V-1) - 1); colour: feature value')
  return save_figure(fig, out, dpi=100)


def trained_embedding(workdir: str):
  """(config, encoder, params, table [V, d], basis [V, d]) of a trained Fourier workdir."""
  from pete_jax.trained_model import load_workdir  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel

  model = load_workdir(workdir, stage='pretrain')
  variables = {'params': model.params}
  table = model.encoder.apply(variables, method='embedding_table')
  basis = model.encoder.apply(
    variables,
    jnp.arange(model.tokenizer.vocab_size),
    method=lambda m, ids: m.embed.features_of(ids),
  )
  return model.config, model.encoder, model.params, np.asarray(table), np.asarray(basis)


def initial_table(config, encoder) -> np.ndarray:
  """The embedding table of the same model at its initialisation (same seed)."""
  import jax  # pylint: disable=import-outside-toplevel
  from pete_jax.train import init_params  # pylint: disable=import-outside-toplevel

  params = init_params(encoder, config, jax.random.key(config.seed))['encoder']
  return np.asarray(encoder.apply({'params': params}, method='embedding_table'))


def basis_refinement(workdir: str, out: str, dims=(0, 1, 8, 9, 100, 255)) -> str | None:
  """Figure 3: T_i(p) and E_i(p) - T_i(p) for a few feature indices i."""
  if not os.path.exists(os.path.join(workdir, 'final_metrics.json')):
    return None
  config, encoder, _, table, basis = trained_embedding(workdir)
  start = initial_table(config, encoder)
  ids = np.arange(table.shape[0])
  fig, axes = plt.subplots(len(dims), 3, figsize=(13, 1.6 * len(dims)), sharex=True)
  for row, i in enumerate(dims):
    axes[row, 0].plot(ids, basis[:, i], lw=0.4)
    axes[row, 0].set_ylabel(f'i={i}', fontsize=8)
    axes[row, 1].plot(ids, table[:, i] - basis[:, i], lw=0.4, color='tab:red')
    axes[row, 2].plot(ids, table[:, i] - start[:, i], lw=0.4, color='tab:green')
  axes[0, 0].set_title('fixed basis T_i(p)', fontsize=9)
  axes[0, 1].set_title('refinement E_i(p) - T_i(p) (trained)', fontsize=9)
  axes[0, 2].set_title('change from initialisation E_i(p) - E0_i(p)', fontsize=9)
  for ax in axes[-1]:
    ax.set_xlabel('token id p (BERT WordPiece)')
  fig.suptitle(
    f'Fourier 1x256 after {config.train.num_steps:,} steps ({os.path.basename(workdir)}); '
    'E = RMSNorm(Linear(T) + T)',
    fontsize=9,
  )
  save_figure(fig, out, dpi=110)
  return out


def neighbour_distances(vocab: int, dim: int, embed=None, chunk: int = 32_768) -> dict:
  """Distances ||f(p+1) - f(p)|| over all p < V-1 for the basis (or ``embed`` of the ids).

  Returns min and median of the neighbour distance, and the median distance
  between random id pairs (the scale to compare with).
  """
  from pete_jax import fourier_features  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel

  feats = embed or (lambda ids: fourier_features(ids, vocab, dim))
  gaps = []
  for start in range(0, vocab - 1, chunk):
    ids = jnp.arange(start, min(start + chunk + 1, vocab))
    f = np.asarray(feats(ids), np.float64)
    gaps.append(np.linalg.norm(f[1:] - f[:-1], axis=1))
  gaps = np.concatenate(gaps)
  rng = np.random.default_rng(0)
  a, b = (jnp.asarray(rng.integers(0, vocab, 4096)) for _ in range(2))
  random = np.linalg.norm(
    np.asarray(feats(a), np.float64) - np.asarray(feats(b), np.float64), axis=1
  )
  return {
    'vocab': vocab,
    'min': float(gaps.min()),
    'median': float(np.median(gaps)),
    'random_median': float(np.median(random)),
  }


def neighbour_distance(workdir: str, out: str, vocabs=VOCABS) -> tuple[str, list]:
  """Figure 4 (and its numbers): basis, and the trained embedding MLP when ``workdir`` has one."""
  from pete_jax.embeddings import FourierEmbed  # pylint: disable=import-outside-toplevel

  dim, embed_params = 256, None
  if os.path.exists(os.path.join(workdir, 'final_metrics.json')):
    config, _, params, _, _ = trained_embedding(workdir)
    dim, embed_params = config.model.d_model, params['embed']
  rows = []
  for vocab in vocabs:
    row = {'basis': neighbour_distances(vocab, dim)}
    if embed_params is not None:
      module = FourierEmbed(vocab, dim, mlp=config.model.embed_mlp)
      row['embedding'] = neighbour_distances(
        vocab, dim, lambda ids, m=module: m.apply({'params': embed_params}, ids)
      )
    rows.append(row)
  fig, ax = plt.subplots(figsize=(6.4, 4.2))
  xs = [r['basis']['vocab'] for r in rows]
  for key, color in (('basis', 'tab:blue'), ('embedding', 'tab:red')):
    if key not in rows[0]:
      continue
    ratio = [r[key]['median'] / r[key]['random_median'] for r in rows]
    low = [r[key]['min'] / r[key]['random_median'] for r in rows]
    ax.plot(xs, ratio, 'o-', color=color, label=f'{key}: median neighbour / random-pair distance')
    ax.plot(xs, low, 'x--', color=color, label=f'{key}: min neighbour / random-pair distance')
  ax.set_xscale('log')
  ax.set_yscale('log')
  ax.set_xlabel('vocabulary size V (normalisation 2p/(V-1)-1)')
  ax.set_ylabel('relative distance between ids p and p+1')
  ax.set_title(f'Near-collisions of neighbouring ids (d={dim})')
  ax.legend(fontsize=7)
  ax.grid(alpha=0.3, which='both')
  save_figure(fig, out)
  return out, rows


def headlines_figure(results_dir: str, out: str) -> str | None:
  """The findings' comparisons (``experiments/headlines.py``): each difference with its 95%
  confidence interval (Welch); a hollow marker where a side has one seed (no interval)."""
  from experiments import headlines, tables  # pylint: disable=import-outside-toplevel

  points = []
  for finding, _, row, other in headlines.headline_pairs(results_dir):
    cmp = tables.compare(row, other) if row and other else None
    if cmp:
      points.append((f'{finding} (n={row["spearman"]["n"]} vs {other["spearman"]["n"]})', cmp))
  if not points:
    return None
  fig, ax = plt.subplots(figsize=(12, 0.4 * len(points) + 1.4))
  for y, (_, cmp) in enumerate(reversed(points)):
    if cmp['ci95']:
      low, high = cmp['ci95']
      ax.plot([low, high], [y, y], color='tab:blue', lw=2)
    ax.plot(cmp['difference'], y, 'o', color='tab:blue', mfc='tab:blue' if cmp['ci95'] else 'white')
  ax.axvline(0, color='grey', lw=0.8)
  ax.set_yticks(range(len(points)))
  ax.set_yticklabels([label for label, _ in reversed(points)], fontsize=7)
  ax.set_xlabel('STS-B validation Spearman x100: row minus compared row')
  ax.set_title('The findings at a glance: differences with 95% CIs (Welch)', fontsize=9)
  ax.grid(alpha=0.3, axis='x')
  save_figure(fig, out)
  return out


def reference_workdir(runs_dir: str) -> str:
  """The early-training Fourier 1x256 model, seed 0, as ``experiments.run table1`` trains it:
  the trained model figures 3 and 4 read."""
  from experiments import jobs  # pylint: disable=import-outside-toplevel

  (run,) = [r for r in table1() if r.name == 'fourier_1x256']
  return jobs.Job('table1', run, 0, jobs.default_steps(run), runs_dir).workdir


def main(argv):
  del argv
  out_dir, runs_dir = flags.FLAGS.out_dir, flags.FLAGS.runs_dir
  os.makedirs(out_dir, exist_ok=True)
  reference = reference_workdir(runs_dir)
  print(spearman_vs_params(out_dir, os.path.join(out_dir, 'spearman_vs_params.png')))
  print(
    training_curves(os.path.join(out_dir, 'runs'), os.path.join(out_dir, 'training_curves.png'))
  )
  print(ablations(out_dir, os.path.join(out_dir, 'ablations.png')))
  print(ablations(out_dir, os.path.join(out_dir, 'ablations_converged.png'), converged=True))
  print(bases(os.path.join(out_dir, 'bases.png')))
  print(headlines_figure(out_dir, os.path.join(out_dir, 'headlines.png')))
  if not os.path.exists(os.path.join(reference, 'final_metrics.json')):
    # The run records hold metrics, not weights: figures 3 and 4 need the trained model.
    print(
      f'skipped basis_refinement.png and neighbour_distance.png: no trained model in '
      f'{reference}; train it with `python -m pete_jax.main --config=configs/reduced.py:'
      f'table1_fourier_1x256,steps=200 --workdir={reference} --config.seed=0`'
    )
    return
  print(basis_refinement(reference, os.path.join(out_dir, 'basis_refinement.png')))
  path, rows = neighbour_distance(reference, os.path.join(out_dir, 'neighbour_distance.png'))
  files.write_json(os.path.join(out_dir, 'neighbour_distance.json'), rows)
  print(path)


if __name__ == '__main__':
  # Defined here, not at import, so that importing the figure functions (tests, notebooks)
  # does not clash with experiments.run's flags of the same names.
  flags.DEFINE_string('runs_dir', 'runs', 'Workdirs of the sweeps.')
  flags.DEFINE_string('out_dir', 'experiments/results', 'Where the PNGs go.')
  app.run(main)
