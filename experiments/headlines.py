"""The comparisons the results README's findings rest on, as one generated table.

Each headline is a row of a sweep compared with another row of it (by default the row its
sweep compares it with: its ``compare_with`` row, else the sweep's reference): both means
over seeds, the difference with its 95% confidence interval and Welch's p, the paper's
difference between the same rows where it has them, and the parameter ratio, read from the
sweeps' JSON tables. The table is rewritten whenever a sweep's table is, so that the findings
never cite a number a later seed changed.
"""

import json
import os

from scipy import stats

from experiments import readme_blocks, tables

BLOCK = 'headlines'
# (finding, sweep, row[, compared row]).
HEADLINES = (
  ('Table 1, 1x256: Fourier vs learned', 'table1_converged', 'fourier_1x256'),
  ('Table 1, 1x512: Fourier vs learned', 'table1_converged', 'fourier_1x512'),
  ('Table 1, 2x256: Fourier vs learned', 'table1_converged', 'fourier_2x256'),
  ('Table 1, 2x512: Fourier vs learned', 'table1_converged', 'fourier_2x512'),
  ('any fixed code: random code + MLP vs Fourier', 'embedding_peers', 'random code + MLP'),
  ('ids shuffled vs native order (Fourier)', 'id_order_converged', 'id_order=random'),
  ('ids by frequency vs native order (Fourier)', 'id_order_converged', 'id_order=frequency'),
  ('official normalisation (max_seq_len) vs the paper\'s (vocab)', 'normalisation_converged',
   'normalisation=max_seq_len'),
  ('no embedding MLP vs linear', 'embed_mlp_converged', 'embed_mlp=none'),
  ('GeGLU embedding MLP vs linear', 'embed_mlp_converged', 'embed_mlp=geglu'),
  ('Fourier over SentencePiece 2k vs over WordPiece 30k', 'embedding_peers',
   'fourier SentencePiece 2k'),
  ('learned over SentencePiece 2k (dropout 0) vs WordPiece 30k (dropout 0.1)',
   'embedding_peers', 'learned SentencePiece 2k', 'learned, dropout 0.1 (Table 1)'),
  ('the moonshot: learned twin vs Fourier, both over SentencePiece 2k', 'moonshot_small',
   'learned twin of fourier_1x256 SentencePiece 2k'),
  ('Chebyshev basis vs Fourier (2nd best at 200 steps)', 'basis_converged', 'basis=chebyshev'),
  ('stretched Laguerre basis vs Fourier (best at 200 steps)', 'basis_converged',
   'basis=laguerre_stretched'),
)  # fmt: skip
HEADER = (
  '| finding | sweep: row | ours (mean ± std, n) | compared with | theirs | difference '
  '| 95% CI | Welch p | p, BH-adjusted | paper difference | params, row / compared |\n'
  + '|---' * 11
  + '|'
)


def _rows(results_dir: str, sweep: str) -> dict:
  path = os.path.join(results_dir, f'{sweep}.json')
  if not os.path.exists(path):
    return {}
  with open(path, encoding='utf-8') as f:
    return {r['name']: r for r in json.load(f)['rows']}


def _paper_difference(row: dict, other: dict) -> str:
  ours, theirs = row['paper']['spearman'], other['paper']['spearman']
  return '—' if ours is None or theirs is None else f'{ours - theirs:+.2f}'


def headline_pairs(results_dir: str) -> list[tuple]:
  """``(finding, sweep, row, compared row)`` of every headline; a row is None where its
  sweep has no table or no such row yet."""
  pairs = []
  for finding, sweep, name, *compared in HEADLINES:
    rows = _rows(results_dir, sweep)
    row = rows.get(name)
    if not compared and row:  # the row its sweep compares it with, run or not
      reference = next((n for n, r in rows.items() if r.get('reference')), None)
      compared = [row.get('compare_with') or reference]
    pairs.append((finding, sweep, row, rows.get(compared[0]) if compared else None))
  return pairs


def adjusted_p_values(raw: list[float | None]) -> list[float | None]:
  """Each headline's Welch p adjusted for the table's other tests (Benjamini-Hochberg: the
  false discovery rate over the headlines tested); None where a row has no test.

  Thirteen comparisons read side by side: at p < 0.05 one of them could pass by chance, so
  the adjusted p is what says which findings stand as a set."""
  tested = [p for p in raw if p is not None]
  adjusted = iter(stats.false_discovery_control(tested).tolist() if tested else [])
  return [None if p is None else next(adjusted) for p in raw]


def welch_p_values(pairs: list[tuple]) -> list[float | None]:
  """Each headline's Welch p; None where a row has no test (not run, or one seed)."""
  return [
    cmp['welch_p'] if (cmp := _comparison(row, other)) else None for _, _, row, other in pairs
  ]


def _comparison(row: dict | None, other: dict | None) -> dict | None:
  return tables.compare(row, other) if row and other else None


def headline_line(
  finding: str, sweep: str, row: dict | None, other: dict | None, adjusted_p: float | None = None
) -> str:
  """One table line; a row not run, or with nothing to compare with yet, says so."""
  if row is None:
    return f'| {finding} | {sweep}: not run | not run |' + ' — |' * 8
  ours = tables.format_summary(row['spearman'])
  cmp = _comparison(row, other)
  if cmp is None:
    theirs = tables.format_summary(other['spearman']) if other else '—'
    name = other['name'] if other else '—'
    return f'| {finding} | {sweep}: {row["name"]} | {ours} | {name} | {theirs} |' + ' — |' * 6
  p = 'one seed' if cmp['welch_p'] is None else f'{cmp["welch_p"]:.2g}'
  p_adjusted = '—' if adjusted_p is None else f'{adjusted_p:.2g}'
  ci = '—' if cmp['ci95'] is None else '{:+.2f} to {:+.2f}'.format(*cmp['ci95'])
  ratio = row['params']['total'] / other['params']['total']
  cells = [finding, f'{sweep}: {row["name"]}', ours, other['name'],
           tables.format_summary(other['spearman']), f'{cmp["difference"]:+.2f}', ci, p,
           p_adjusted, _paper_difference(row, other), f'{ratio:.2f}']  # fmt: skip
  return '| ' + ' | '.join(cells) + ' |'


def headline_table(results_dir: str) -> str:
  """The headlines' table (STS-B validation Spearman x100, zero-shot) from the sweeps' JSON."""
  pairs = headline_pairs(results_dir)
  raw = welch_p_values(pairs)
  adjusted = adjusted_p_values(raw)
  lines = [HEADER] + [headline_line(*pair, p) for pair, p in zip(pairs, adjusted)]
  tested = [p for p in raw if p is not None]
  count = (
    f'{len(tested)} of the {len(pairs)} headlines have seeds enough for a test; '
    f'{sum(p < 0.05 for p in tested)} of those have Welch p < 0.05, '
    f'{sum(p is not None and p < 0.05 for p in adjusted)} after the adjustment.'
  )
  sweeps = ', '.join(dict.fromkeys(f'[{s}]({s}.md)' for _, s, *_ in HEADLINES))
  return (
    f"From the sweeps' tables ({sweeps}), rewritten with them by `python -m experiments.run "
    '<sweep>` (difference: the row minus the row it is compared with, with its 95% confidence '
    'interval (Welch); p, BH-adjusted: Welch p adjusted for the false discovery rate over the '
    "headlines tested (Benjamini-Hochberg); paper difference: the same rows' scores in the paper; "
    '`headlines.png`, by `python -m experiments.plots`, draws the differences):\n\n'
    + '\n'.join(lines)
    + f'\n\n{count}'
  )


def update(results_dir: str) -> bool:
  """Rewrites the headlines block of ``<results_dir>/README.md``; False if it has none."""
  path = os.path.join(results_dir, 'README.md')
  return readme_blocks.replace_block(path, BLOCK, headline_table(results_dir))
