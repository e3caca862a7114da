"""The embedding-peers sweep's report (issue 17): parameters at every vocabulary size, and
STS-B validation against embedding parameters with the Pareto front.

The parameter table is computed, not trained: each row's embedding module is built at
V = 2k ... 256k and its parameters counted (float32 bytes beside them), so the cost of
the table at a large vocabulary is read off the same code that trains. The plot
comes from the run records (every seed a point, the mean a marker). Step time and
memory come from the benchmark's ``peers`` section (every variant timed in one run), read
from ``benchmark.json`` beside the tables.
"""

import os

from experiments import jobs
from experiments.bench.report import peers_table, provenance
from pete_jax.encoder import encoder_from_config
from pete_jax.files import read_json
from pete_jax.params import count_by_component

VOCAB_SIZES = (2_000, 8_000, 30_522, 128_000, 256_000)


def embedding_parameters(job: jobs.Job, vocab: int) -> int:
  """Parameters of the job's embedding module (``embed``) at vocabulary size ``vocab``."""
  config = jobs.job_config(job)
  config.model.vocab_size = vocab
  counts = count_by_component(encoder_from_config(config.model, vocab, config.data.max_len))
  return counts['embed']


def _size(n: int) -> str:
  return f'{n / 1e6:.2f}M ({4 * n / 2**20:.1f} MiB)' if n >= 1e5 else f'{n / 1e3:.1f}k'


def parameter_table(rows: list[dict], seed_jobs: dict) -> str:
  """Markdown: embedding parameters (and float32 MiB) of each WordPiece row at each V."""
  lines = ['| embedding | ' + ' | '.join(f'V={v:,}' for v in VOCAB_SIZES) + ' |',
           '|---' * (len(VOCAB_SIZES) + 1) + '|']  # fmt: skip
  for r in rows:
    if 'SentencePiece' in r['name']:  # the same modules as the WordPiece rows, at their own V
      continue
    job = seed_jobs[r['name']]
    cells = [_size(embedding_parameters(job, v)) for v in VOCAB_SIZES]
    lines.append(f'| {r["name"]} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def points(rows: list[dict]) -> list[dict]:
  """(name, embedding parameters at the run's own V, per-seed and mean Spearman) of run rows."""
  out = []
  for r in rows:
    seeds = list(r['per_seed_spearman'].values())
    if seeds:
      embed = r['params']['by_component']['embed']
      out.append(
        {'name': r['name'], 'params': embed, 'seeds': seeds, 'mean': sum(seeds) / len(seeds)}
      )
  return out


def pareto_front(pts: list[dict]) -> list[dict]:
  """The points no other point beats with fewer (or equal) parameters, by mean Spearman."""
  front = []
  for p in sorted(pts, key=lambda p: (p['params'], -p['mean'])):
    if not front or p['mean'] > front[-1]['mean']:
      front.append(p)
  return front


# Plot colour of each kind of embedding, by the start of its row name (first match wins);
# within a kind every row gets its own marker.
FAMILY_COLOURS = (
  (('fourier', 'laguerre'), 'tab:blue'),
  (('learned',), 'tab:orange'),
  (('random code', 'binary code'), 'tab:green'),
  (('hashed', 'hash embedding'), 'tab:red'),
  (('factorised',), 'tab:purple'),
  (('quotient',), 'tab:brown'),
)
MARKERS = 'DosP^vX<>*'


def styles(names: list[str]) -> dict:
  """``{name: (colour, marker)}``: one colour per kind of embedding, one marker per row of it."""
  out, used = {}, {}
  for name in names:
    colour = next((c for starts, c in FAMILY_COLOURS if name.startswith(starts)), 'tab:gray')
    out[name] = (colour, MARKERS[used.get(colour, 0) % len(MARKERS)])
    used[colour] = used.get(colour, 0) + 1
  return out


def plot(rows: list[dict], out: str) -> str | None:
  pts = points(rows)
  if not pts:
    return None
  from experiments.plots import save_figure  # pylint: disable=import-outside-toplevel
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

  fig, ax = plt.subplots(figsize=(11, 5.5))
  style = styles([p['name'] for p in pts])
  for p in pts:
    colour, marker = style[p['name']]
    ax.scatter([p['params']] * len(p['seeds']), p['seeds'], s=12, color=colour, alpha=0.4)
    ax.scatter([p['params']], [p['mean']], s=60, marker=marker, color=colour,
               edgecolors='black', linewidths=0.5, label=f'{p["name"]} (n={len(p["seeds"])})')  # fmt: skip
  front = pareto_front(pts)
  ax.step([p['params'] for p in front], [p['mean'] for p in front], 'k--', where='post',
          label='Pareto front (means)')  # fmt: skip
  ax.set(xscale='log', xlabel='embedding parameters (log scale)',
         ylabel='STS-B validation Spearman x100 (zero-shot)')  # fmt: skip
  ax.legend(fontsize=7, loc='upper left', bbox_to_anchor=(1.01, 1.0))  # beside, not on, the data
  return save_figure(fig, out)


def speed_and_memory(results_dir: str) -> list[str]:
  """The benchmark's step time and memory table of every variant, with the command and
  run it came from ([] until ``python -m experiments.benchmark --sections=peers`` has run)."""
  bench = read_json(os.path.join(results_dir, 'benchmark.json'), {})
  meta = bench.get('meta', {})
  table = peers_table(bench.get('peers'), meta)
  if not table:
    return []
  run = meta.get('section_runs', {}).get('peers')
  source = provenance({'section_runs': {'peers': run}} if run else meta)
  return table[:2] + [f'From {source} ([benchmark.md](benchmark.md)).', ''] + table[2:]


def write(rows: list[dict], seed_jobs: dict, results_dir: str) -> None:
  """Appends the parameter table and the plot to ``<results_dir>/embedding_peers.md``."""
  png = plot(rows, os.path.join(results_dir, 'embedding_peers.png'))
  front = ', '.join(p['name'] for p in pareto_front(points(rows))) or 'no finished runs yet'
  rest = rows[0]['params']['total'] - rows[0]['params']['by_component']['embed']
  text = [
    '## Embedding parameters at every vocabulary size',
    '',
    "Computed by building each row's embedding module at V (float32 MiB in brackets); "
    f'the rest of the encoder ({rest:,} parameters at 1x256) is the same for every row.',
    '',
    parameter_table(rows, seed_jobs),
    '',
    '## STS-B validation against embedding parameters',
    '',
    f'Pareto front (by mean over seeds): {front}.',
  ]
  if png:
    text += ['', f'![Spearman vs embedding parameters]({os.path.basename(png)})']
  text += [''] + speed_and_memory(results_dir)
  with open(os.path.join(results_dir, 'embedding_peers.md'), 'a', encoding='utf-8') as f:
    f.write('\n' + '\n'.join(text) + '\n')
