"""Where ids are rare: does the smooth Fourier code help words seldom seen in pre-training?

  python -m experiments.rare_ids    # the embedding_peers runs' records (or checkpoints)

The paper reads PETE's smooth code of the id as information: neighbouring ids get
similar codes, so an id seldom or never seen in pre-training borrows from its
neighbours, where a learned table's row of such an id stays near its random start. If
that held here, Fourier's deficit against the random code (every id an unrelated fixed
code) and its gap to the learned table would shrink, or turn, on the STS-B validation
pairs whose words the local pre-training pairs seldom contain. This splits STS-B
validation by the pre-training count of each pair's rarest token and scores every seed
of each WordPiece row of ``embedding_peers`` on each part. The STS-B genres differ in how
close their words are to the (caption) pre-training text, so each genre is also halved by
rarity and the rare-vs-common contrast pooled over genres, genre held fixed. Intervals: a
bootstrap over the pairs of a part (each model's score a mean over its seeds; the interval
is over the pairs drawn, not over training seeds).

Writes ``experiments/results/rare_ids.md`` / ``.json`` / ``.png`` and the results README's
``rare_ids`` block.
"""

import os
import re

from absl import app, flags, logging
import numpy as np
from scipy import stats

from experiments import jobs, readme_blocks, sweeps
from pete_jax import evaluate, files, logs
from pete_jax.data import file_readers, pipeline, sources

SWEEP = 'embedding_peers'
REFERENCE = 'fourier (reference)'
# The rows Fourier is compared with, pair by pair (the fixed-code control and the table).
COMPARED = ('random code + MLP', 'learned, dropout 0.1 (Table 1)')
# Parts of STS-B validation by the pre-training count of a pair's rarest token: (low, high).
PARTS = {'never seen': (0, 0), 'seen 1-9 times': (1, 9), 'seen 10+ times': (10, None)}
BOOTSTRAP_SAMPLES = 1000
MIN_PAIRS = 10  # fewer pairs in a part say nothing about a rank correlation


def seed_sources(runs_dir: str = 'runs', records_dir: str = jobs.RECORDS_DIR) -> dict:
  """``{row name: [(record path, workdir), ...]}`` for the finished seeds of every WordPiece
  row whose cosines can be had: from the record's ``pair_cosines`` (kept by training since
  2026-12-07), else from the checkpoints of the workdir, where they are on this machine (a
  seed that trained under another sweep's workdir, as the schedule runs, is found through
  its record's ``trained_as`` command). A seed with neither is left out, with a warning."""
  out = {}
  for run in sweeps.sweep_runs(SWEEP):
    if 'SentencePiece' in run.name:  # another tokenizer: its own counts, not comparable
      continue
    steps = jobs.default_steps(run)
    for job in [jobs.Job(SWEEP, run, s, steps, runs_dir, '', records_dir) for s in run.seeds]:
      record = jobs.run_record(job)
      if record is None:  # not run, or still training
        continue
      command = record.get('trained_as') or record.get('command') or ''
      found = re.search(r'--workdir=(\S+)', command)
      workdir = jobs.rerooted(found.group(1), runs_dir) if found else job.workdir
      if record.get('pair_cosines') or os.path.isdir(os.path.join(workdir, 'checkpoints')):
        out.setdefault(run.name, []).append((job.record_path, workdir))
      else:
        logging.warning('%s seed %d: no pair cosines in its record and no checkpoints in %s; '
                        'left out', run.name, job.seed, workdir)  # fmt: skip
  return out


def reference_data(runs_dir: str, records_dir: str) -> tuple:
  """``(token counts [V], StsData, its source spec)``: the pre-training counts and the STS-B
  validation pairs of the reference run's config (every WordPiece row shares them)."""
  run = next(r for r in sweeps.sweep_runs(SWEEP) if r.name == REFERENCE)
  job = jobs.Job(SWEEP, run, run.seeds[0], jobs.default_steps(run), runs_dir, '', records_dir)
  config = jobs.job_config(job)
  tokenizer = pipeline.build_tokenizer(config, None)  # WordPiece, native order: no files
  return (
    token_counts(config, tokenizer),
    pipeline.prepare_sts(config, tokenizer),
    config.data.eval_source,
  )


def token_counts(config, tokenizer) -> np.ndarray:
  """[V]: how often each token id occurs in the config's pre-training pairs."""
  pairs, _ = sources.load_nli_pairs(config)
  a_ids, b_ids = pipeline.encode_pairs(tokenizer, pairs, config.data.max_len)
  ids = np.concatenate([np.asarray(s, np.int64) for s in a_ids + b_ids])
  return np.bincount(ids, minlength=tokenizer.vocab_size)


def rarest_counts(counts: np.ndarray, a_ids: list, b_ids: list) -> np.ndarray:
  """[n]: the pre-training count of the rarest token of each pair (either sentence)."""
  return np.asarray([counts[np.asarray(a + b)].min() for a, b in zip(a_ids, b_ids)])


def part_masks(rarest: np.ndarray) -> dict:
  """``{part name: bool [n]}``, and 'all pairs'."""
  masks = {'all pairs': np.ones(len(rarest), bool)}
  for name, (low, high) in PARTS.items():
    masks[name] = (rarest >= low) & (rarest <= (np.inf if high is None else high))
  return masks


def genres(spec: str, sts) -> list[str] | None:
  """The STS-B ``genre`` column of each pair (captions, news, forums), read from the eval
  TSV; None where the source has no such column or its rows do not line up with the pairs."""
  source = sources.parse_spec(spec)
  if source.format != 'stsb_tsv':
    return None
  header, *rows = [fields for _, fields in file_readers.tsv_lines(source.location, 'stsb_tsv')]
  names = [h.strip() for h in header]
  if 'genre' not in names or 'sentence1' not in names or len(rows) != len(sts.pairs):
    return None
  genre, first = names.index('genre'), names.index('sentence1')
  if any(r[first].strip() != p.text_a.strip() for r, p in zip(rows, sts.pairs)):
    return None
  return [r[genre].strip() for r in rows]


def genre_halves(rarest: np.ndarray, genre: list[str]) -> dict:
  """``{'<genre>: rarer half' / 'commoner half': bool [n]}``: each genre's pairs split in
  two by the pre-training count of their rarest token (ties in file order), so that a
  rare-vs-common contrast inside a genre is not a contrast between genres."""
  genre = np.asarray(genre)
  masks = {}
  for name in sorted(set(genre.tolist())):
    index = np.flatnonzero(genre == name)
    order = index[np.argsort(rarest[index], kind='stable')]
    for half, members in (
      ('rarer', order[: len(order) // 2]),
      ('commoner', order[len(order) // 2 :]),
    ):
      masks[f'{name}: {half} half'] = np.isin(np.arange(len(rarest)), members)
  return masks


def contrasts(masks: dict) -> dict:
  """``{contrast: [(rare part, common part), ...]}``; a list stands for the mean of its
  contrasts weighted by their pairs (a stratified estimate: genre held fixed)."""
  out = {'never seen vs seen 10+ (genres mixed)': [('never seen', 'seen 10+ times')]}
  within = [(m, m.replace('rarer', 'commoner')) for m in masks if m.endswith('rarer half')]
  for rare, common in within:
    out[f'{rare.split(":")[0]}: rarer vs commoner half'] = [(rare, common)]
  if within:
    out['within genre (pairs-weighted mean over genres)'] = within
  return out


def split(rarest: np.ndarray, genre: list[str] | None) -> tuple[dict, dict]:
  """The parts by rarity and, with genres, each genre's halves; and each part's pairs by
  genre (``{}`` without genres)."""
  masks = part_masks(rarest)
  if genre is None:
    logging.warning('no genre column in the STS source; the within-genre contrasts are left out')
    return masks, {}
  masks |= genre_halves(rarest, genre)
  genre = np.asarray(genre)
  composition = {
    p: {g: int(n) for g, n in zip(*np.unique(genre[m], return_counts=True))}
    for p, m in masks.items()
  }
  return masks, composition


def _spearman(cosines: np.ndarray, gold: np.ndarray) -> float:
  """Mean over seeds (rows of ``cosines``) of Spearman x 100."""
  return float(np.mean([100.0 * stats.spearmanr(c, gold)[0] for c in cosines]))


def _bootstrap(cosines: dict, gold: np.ndarray, index: np.ndarray, other: str, rng) -> np.ndarray:
  """Resampled (with replacement) Fourier minus ``other`` Spearman over the pairs ``index``."""
  samples = []
  for _ in range(BOOTSTRAP_SAMPLES):
    draw = rng.choice(index, len(index))
    samples.append(
      _spearman(cosines[REFERENCE][:, draw], gold[draw])
      - _spearman(cosines[other][:, draw], gold[draw])
    )
  return np.asarray(samples)


def _interval(point: float, samples: np.ndarray) -> dict:
  return {'difference': float(point), 'ci95': np.percentile(samples, [2.5, 97.5]).tolist()}


def compare(cosines: dict, gold: np.ndarray, masks: dict, seed: int = 0) -> dict:
  """Per part: each row's per-seed Spearman, and Fourier minus each compared row with a
  95% bootstrap interval over the part's pairs (the same resamples for both models); then,
  per contrast (``contrasts``), how much that difference changes from the common-word
  pairs to the rare-word ones.

  Args:
    cosines: ``{row name: float [seeds, n]}`` predicted similarities.
    gold: [n] gold scores.
    masks: ``{part name: bool [n]}`` (``part_masks``, ``genre_halves``).
  """
  rng = np.random.default_rng(seed)
  others = [o for o in COMPARED if o in cosines and REFERENCE in cosines]
  parts, samples = {}, {}
  for part, mask in masks.items():
    index = np.flatnonzero(mask)
    if len(index) < MIN_PAIRS:
      logging.warning('%s: %d pairs, too few to score; left out', part, len(index))
      continue
    scores = {
      name: [100.0 * stats.spearmanr(c[index], gold[index])[0] for c in cos]
      for name, cos in cosines.items()
    }
    differences = {}
    for other in others:
      samples[part, other] = _bootstrap(cosines, gold, index, other, rng)
      point = np.mean(scores[REFERENCE]) - np.mean(scores[other])
      differences[other] = _interval(point, samples[part, other])
    parts[part] = {'pairs': int(len(index)), 'spearman': scores, 'fourier_minus': differences}
  # Parts are resampled independently, so differences of their draws resample the change.
  changes = {}
  for name, pairs in contrasts(masks).items():
    if any(p not in parts for pair in pairs for p in pair):
      continue
    weights = [parts[r]['pairs'] + parts[c]['pairs'] for r, c in pairs]
    changes[name] = {
      other: _interval(
        np.average([parts[r]['fourier_minus'][other]['difference']
                    - parts[c]['fourier_minus'][other]['difference'] for r, c in pairs],
                   weights=weights),
        np.average([samples[r, other] - samples[c, other] for r, c in pairs], axis=0,
                   weights=weights),
      )
      for other in others
    }  # fmt: skip
  return {'parts': parts, 'rare_minus_common': changes}


def _interval_text(d: dict) -> str:
  return f'{d["difference"]:+.2f} [{d["ci95"][0]:+.2f}, {d["ci95"][1]:+.2f}]'


def markdown(result: dict) -> str:
  """Spearman per row and part by rarity (mean ± std over seeds) and Fourier minus each
  compared row; then how that difference changes from common-word to rare-word pairs."""
  parts = {p: v for p, v in result['parts'].items() if p == 'all pairs' or p in PARTS}
  composition = result.get('composition', {})
  lines = [
    '| row (seeds) | ' + ' | '.join(f'{p} ({v["pairs"]} pairs)' for p, v in parts.items()) + ' |',
    '|---' * (len(parts) + 1) + '|',
  ]
  if composition:
    cells = [', '.join(f'{g} {n}' for g, n in composition[p].items()) for p in parts]
    lines.append('| *pairs by genre* | ' + ' | '.join(cells) + ' |')
  for name, seeds_all in parts['all pairs']['spearman'].items():
    cells = []
    for part in parts.values():
      seeds = part['spearman'][name]
      spread = f' ± {np.std(seeds, ddof=1):.2f}' if len(seeds) > 1 else ''
      cells.append(f'{np.mean(seeds):.2f}{spread}')
    lines.append(f'| {name} ({len(seeds_all)}) | ' + ' | '.join(cells) + ' |')
  others = list(parts['all pairs']['fourier_minus'])
  for other in others:
    cells = [_interval_text(part['fourier_minus'][other]) for part in parts.values()]
    lines.append(f'| **fourier − {other}** [95% CI] | ' + ' | '.join(cells) + ' |')
  lines += [
    '',
    "How Fourier's difference to each row changes from the common-word pairs to the rare-word "
    'ones (rare minus common; positive: Fourier does relatively better where words are rare):',
    '',
    '| contrast | ' + ' | '.join(f'fourier − {o}: change [95% CI]' for o in others) + ' |',
    '|---' * (len(others) + 1) + '|',
  ]
  for name, change in result['rare_minus_common'].items():
    lines.append(f'| {name} | ' + ' | '.join(_interval_text(change[o]) for o in others) + ' |')
  return '\n'.join(lines)


def plot(result: dict, out: str) -> str:
  """Every row's seeds (points) and mean (diamond) in each part of STS-B validation."""
  from experiments.plots import save_figure  # pylint: disable=import-outside-toplevel
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

  parts = {p: v for p, v in result['parts'].items() if p == 'all pairs' or p in PARTS}
  names = list(parts['all pairs']['spearman'])
  fig, ax = plt.subplots(figsize=(10, 5.5))
  for i, name in enumerate(names):
    for j, part in enumerate(parts.values()):
      x = j + (i - (len(names) - 1) / 2) * 0.07
      seeds = part['spearman'][name]
      ax.scatter([x] * len(seeds), seeds, s=10, color=f'C{i % 10}', alpha=0.5)
      ax.scatter([x], [np.mean(seeds)], s=40, marker='D', color=f'C{i % 10}',
                 label=name if j == 0 else None)  # fmt: skip
  ax.set_xticks(range(len(parts)), [f'{p}\n({v["pairs"]} pairs)' for p, v in parts.items()])
  ax.set(xlabel="STS-B validation pairs, by the pre-training count of the pair's rarest token",
         ylabel='Spearman x100 (zero-shot)')  # fmt: skip
  ax.legend(fontsize=7, ncol=2)
  return save_figure(fig, out)


def workdir_cosines(workdir: str, sts) -> np.ndarray:
  """float [n]: the cosine of every pair of ``sts`` by a workdir's pre-trained checkpoint."""
  from pete_jax.trained_model import load_workdir  # pylint: disable=import-outside-toplevel

  model = load_workdir(workdir, stage='pretrain')
  encode = evaluate.encoder_fn(evaluate.jit_apply(model.encoder), model.params)
  return evaluate.pair_cosines(encode, sts.a_ids, sts.b_ids, pipeline.padding_lengths(model.config))


def cosines_of(seed_sources: dict, sts) -> dict:
  """``{row: float [seeds, n]}``: every seed's cosines, from its record or else from its
  checkpoint; those are added to the record, so that the next run needs no checkpoint."""
  out = {}
  for name, per_seed in seed_sources.items():
    rows = []
    for record_path, workdir in per_seed:
      record = files.read_json(record_path)
      cosines = record.get('pair_cosines')
      if not cosines:
        cosines = evaluate.cosines_as_json(workdir_cosines(workdir, sts))
        files.write_json(record_path, {**record, 'pair_cosines': cosines})
      rows.append(np.asarray(cosines, np.float64))
    if any(len(r) != len(sts.pairs) for r in rows):
      raise ValueError(f'{name}: cosines of another number of pairs than {len(sts.pairs)}')
    out[name] = np.stack(rows)
    logging.info('%s: %.2f over %d seed(s)', name, _spearman(out[name], sts.scores), len(rows))
  return out


def write(result: dict, seed_records: dict, results_dir: str) -> str:
  """``rare_ids.md`` / ``.json`` / ``.png`` and the results README's block; the table."""
  command = 'python -m experiments.rare_ids'
  files.write_json(os.path.join(results_dir, 'rare_ids.json'),
                   {'command': command, 'seed_records': seed_records, **result})  # fmt: skip
  plot(result, os.path.join(results_dir, 'rare_ids.png'))
  table = (
    f'From `{command}` ([rare_ids.md](rare_ids.md), [rare_ids.png](rare_ids.png); cells: '
    'Spearman x100, mean ± std over seeds; intervals: bootstrap over the pairs of a part):'
    f'\n\n{markdown(result)}'
  )
  with open(os.path.join(results_dir, 'rare_ids.md'), 'w', encoding='utf-8') as f:
    f.write(f"# STS-B validation by the pre-training count of each pair's rarest token\n\n"
            f'{table}\n\nThe run record of each seed: `seed_records` in `rare_ids.json`.\n')  # fmt: skip
  readme_blocks.replace_block(os.path.join(results_dir, readme_blocks.README), 'rare_ids', table)
  return table


def main(argv):
  del argv
  logs.quiet_library_logs()
  results_dir = flags.FLAGS.results_dir
  records_dir = os.path.join(results_dir, 'runs')
  per_row = seed_sources(flags.FLAGS.runs_dir, records_dir)
  counts, sts, sts_spec = reference_data(flags.FLAGS.runs_dir, records_dir)
  cosines = cosines_of(per_row, sts)  # and into the records, where they came from checkpoints
  if REFERENCE not in cosines:
    raise SystemExit(
      f'no pair cosines or checkpoints of {REFERENCE!r} (runs_dir {flags.FLAGS.runs_dir})'
    )
  masks, composition = split(rarest_counts(counts, sts.a_ids, sts.b_ids), genres(sts_spec, sts))
  result = compare(cosines, np.asarray(sts.scores, np.float64), masks)
  result['composition'] = composition
  records = {name: [r for r, _ in per_seed] for name, per_seed in per_row.items()}
  print(write(result, records, results_dir))


if __name__ == '__main__':
  flags.DEFINE_string('runs_dir', 'runs', "Where the runs' workdirs are.")
  flags.DEFINE_string('results_dir', 'experiments/results', 'Where the tables and records are.')
  app.run(main)
