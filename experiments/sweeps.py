"""Named sweeps: which runs (config module + overrides + seeds) each sweep holds.

A run's config is ``configs/<budget>.py:<module>`` (the experiment config at the
reduced budget, or at the converged one of ``configs/converged.py``) plus
``overrides`` (dotted config fields, passed to ``pete_jax.main`` as
``--config.<field>=<value>``). Every sweep of the reduced budget whose conclusion
the results README draws has a ``<sweep>_converged`` twin: the same runs at the
converged budget.
"""

import dataclasses
import functools
import os
import re

from configs import converged
from pete_jax.files import read_json

# Paper Table 1: STS-B validation, zero-shot (Spearman, Pearson, params, train time).
TABLE1_PAPER = {
  'fourier_1x256': (74.93, 74.54, '1.1M', '37.88 min'),
  'learned_1x256': (77.01, 76.80, '8.9M', '48.48 min'),
  'fourier_1x512': (75.21, 74.65, '4.7M', '1.349 h'),
  'learned_1x512': (77.50, 76.78, '20.1M', '1.688 h'),
  'fourier_2x256': (76.38, 76.02, '2.2M', '1.009 h'),
  'learned_2x256': (77.34, 76.89, '9.9M', '1.322 h'),
  'fourier_2x512': (77.40, 77.11, '8.9M', '2.27 h'),
  'learned_2x512': (77.54, 76.96, '24.3M', '2.982 h'),
}
# Paper Table 2 (after STS-B fine-tuning): the row each config stands in for.
TABLE2_PAPER = {
  'pete_2x64': (69.5, 69.0, '58k+'),
  'pete_1x256': (78.0, 78.0, '396k+'),
  'pete_1x512': (79.7, 79.7, '1.5M+'),
  'pete_2x512': (81.9, 81.7, '3.6M+'),
}
REFERENCE = 'table1_fourier_1x256'
# A SentencePiece size above what the local text supports: the largest vocabulary it trains.
SPM_LARGEST = 200_000
# Every ablation row asks for the three seeds of the Table 1 reference, so that a
# difference can be told from seed noise; the tables show how many have finished.
ABLATION_SEEDS = (0, 1, 2)


@dataclasses.dataclass(frozen=True)
class Run:
  """One experiment: a config module at a budget (``configs/<budget>.py``), plus overrides.

  Attributes:
    name: row name inside the sweep.
    module: ``configs/<module>.py``.
    overrides: dotted config field -> value.
    paper_spearman / paper_pearson: the paper's numbers for this row (None: none).
    paper_params: the paper's parameter count (text).
    shared: runs with the same ``shared`` key (and seed, steps) use one workdir,
      so the reference model is trained once for Table 1 and every ablation.
    seeds: default seeds.
    reference: the row an ablation's other rows are compared with.
    budget: the budget config file the module is wrapped in (``configs/<budget>.py``).
    compare_with: name of the row this one's seeds are tested against (Welch); by
      default the sweep's reference row.
    steps: the run's pre-training steps (0: its budget's ``STEPS``); ``--steps`` overrides.
  """

  name: str
  module: str = REFERENCE
  overrides: tuple = ()
  paper_spearman: float | None = None
  paper_pearson: float | None = None
  paper_params: str = ''
  shared: str = ''
  seeds: tuple = (0,)
  reference: bool = False
  budget: str = 'reduced'  # configs/<budget>.py: 'reduced' or 'converged'
  compare_with: str = ''  # the row this one is compared with (default: the reference row)
  steps: int = 0  # pre-training steps; 0: the budget's own (configs/<budget>.py STEPS)


def _reference(name: str) -> Run:
  """The Fourier 1x256 reference row of an ablation: the Table 1 runs, all three seeds."""
  s, p, n, _ = TABLE1_PAPER['fourier_1x256']
  return Run(
    name, REFERENCE, (), s, p, n, shared='fourier_1x256', seeds=ABLATION_SEEDS, reference=True
  )


def table1() -> list[Run]:
  runs = []
  for key, (s, p, n, _) in TABLE1_PAPER.items():
    seeds = (0, 1, 2) if key.endswith('1x256') else (0,)
    # Shared workdirs: the 1x256 runs are also the ablations' reference and the schedule curves.
    shared = key if key.endswith('1x256') else ''
    peer = key.replace('fourier', 'learned') if key.startswith('fourier') else ''
    runs.append(
      Run(key, f'table1_{key}', (), s, p, n, shared=shared, seeds=seeds, compare_with=peer)
    )
  return runs


def table2() -> list[Run]:
  # The two smallest models take minutes, so they get three seeds; the larger ones one.
  return [
    Run(
      k, f'table2_{k}', (), s, p, n, seeds=(0, 1, 2) if k in ('pete_2x64', 'pete_1x256') else (0,)
    )
    for k, (s, p, n) in TABLE2_PAPER.items()
  ]


def _variants(field: str, reference_value, values) -> list[Run]:
  runs = [_reference(f'{field.split(".")[-1]}={reference_value} (reference)')]
  runs += [
    Run(f'{field.split(".")[-1]}={v}', overrides=((field, v),), seeds=ABLATION_SEEDS)
    for v in values
  ]
  return runs


ABLATIONS = {
  'normalisation': lambda: _variants('model.normalisation', 'vocab', ['max_seq_len']),
  'id_order': lambda: _variants('tokenizer.id_order', 'native', ['frequency', 'random']),
  'embed_mlp': lambda: _variants('model.embed_mlp', 'linear', ['geglu', 'none']),
  'basis': lambda: _variants(
    'model.basis',
    'fourier',
    ['chebyshev', 'legendre', 'hermite', 'laguerre', 'hermite_stretched', 'laguerre_stretched'],
  ),
  # The second SentencePiece row keeps its 8k ids at WordPiece's phase spacing (x = 2p/30521 - 1):
  # it separates the smaller V from the vocabulary fitted to the training text.
  'tokenizer': lambda: (
    _variants('tokenizer.kind', 'wordpiece', ['sentencepiece'])
    + [
      Run(
        'kind=sentencepiece, basis_vocab_size=30522',
        overrides=(('tokenizer.kind', 'sentencepiece'), ('model.basis_vocab_size', 30522)),
        seeds=ABLATION_SEEDS,
      )
    ]
  ),
  # Length-sorted windows (less padding, in-batch negatives of similar length) vs random batches.
  'batching': lambda: _variants('data.sort_window_batches', 64, [0]),
  'official': lambda: [
    _reference('paper behaviour (reference)'),
    Run(
      'pooling=mean_all, pad_to_max_len',
      overrides=(('model.pooling', 'mean_all'), ('data.pad_to_max_len', True)),
      seeds=ABLATION_SEEDS,
    ),
    Run('drop_ffn_output', overrides=(('model.drop_ffn_output', True),), seeds=ABLATION_SEEDS),
    Run('label_filter=all', overrides=(('data.label_filter', 'all'),), seeds=ABLATION_SEEDS),
  ],
}
# Learning rates of the grid: 3x apart, centred on the best value seen in 200-step runs
# (1e-4; the paper's 2e-5 scored 3-5 points lower there). Widened if an edge wins.
LR_GRID = (1e-4, 3e-4, 1e-3)


def lr_grid() -> list[Run]:
  """Fourier and learned 1x256 at each rate of the grid over 1000 steps, evaluated every ``converged.EVAL_EVERY`` steps. The learning rate of each kind is
  chosen by the selection set (zero-shot STS-B train, ``select_spearman``), never by
  STS-B validation."""
  return [
    Run(
      f'{kind} lr={lr:g}',
      f'table1_{kind}_1x256',
      (('train.learning_rate', lr), ('train.eval_every_steps', converged.EVAL_EVERY)),
      steps=1000,
    )
    for lr in LR_GRID
    for kind in ('fourier', 'learned')
  ]


def schedule() -> list[Run]:
  """The chosen rate over the converged budget's schedule, evaluated every
  ``converged.EVAL_EVERY`` steps: the curves that fix its step count
  (``configs/converged.py``). They are seed 0 of the converged Table 1's 1x256 rows."""
  return [
    Run(
      f'{kind} lr={converged.LEARNING_RATE:g}',
      f'table1_{kind}_1x256',
      shared=f'{kind}_1x256',
      budget='converged',
    )
    for kind in ('fourier', 'learned')
  ]


def at_converged_budget(runs: list[Run]) -> list[Run]:
  """The same runs at the converged budget (three seeds for every row)."""
  return [dataclasses.replace(r, budget='converged', seeds=ABLATION_SEEDS) for r in runs]


# Converged ablation rows that ``embedding_peers`` also asks for: (ablation, row) -> the
# shared workdir key, so each trains once for both sweeps.
SHARED_CONVERGED = {
  ('embed_mlp', 'embed_mlp=geglu'): 'fourier_geglu_1x256',
  ('basis', 'basis=laguerre_stretched'): 'fourier_laguerre_stretched_1x256',
  ('tokenizer', 'kind=sentencepiece'): 'fourier_sp8k_1x256',
}


def converged_ablation(name: str) -> list[Run]:
  """The ablation ``name`` at the converged budget, with its rows shared with other sweeps."""
  return [
    dataclasses.replace(r, shared=r.shared or SHARED_CONVERGED.get((name, r.name), ''))
    for r in at_converged_budget(ABLATIONS[name]())
  ]


def _converged_row(ablation: str, row: str, name: str) -> Run:
  """Row ``row`` of a converged ablation, renamed ``name`` for another sweep."""
  (run,) = [r for r in converged_ablation(ablation) if r.name == row]
  return dataclasses.replace(run, name=name)


def table1_converged() -> list[Run]:
  """Table 1 at the converged budget: three seeds for the 1x256 and 2x512 pairs, one for
  the others (whose runs cost 2-4x a 1x256 one on a CPU)."""
  return [
    dataclasses.replace(
      r,
      budget='converged',
      seeds=ABLATION_SEEDS if r.name[-5:] in ('1x256', '2x512') else (0,),
      shared=r.shared or r.name,  # one workdir with the moonshot's plain 2x512 recipe
    )
    for r in table1()
  ]


def table2_converged_pretrain() -> list[Run]:
  """Table 2's models pre-trained at the converged budget, fine-tuning off: STS-B
  fine-tuning is tuned afterwards on a held-out tenth of STS-B train
  (``python -m experiments.table2_converged``). Their table reports zero-shot scores, so it
  carries no paper scores: the paper's Table 2 scores are after fine-tuning."""
  return [
    dataclasses.replace(
      r,
      budget='converged',
      seeds=(0,),
      overrides=r.overrides + (('finetune.enabled', False),),
      paper_spearman=None,
      paper_pearson=None,
    )
    for r in table2()
  ]


LEARNED = (('model.embedding', 'learned'),)


def _sentencepiece(n: int) -> tuple:
  return (('tokenizer.kind', 'sentencepiece'), ('tokenizer.spm_vocab_size', n))


def slug(name: str) -> str:
  """A file-name-safe form of a run name (workdir and shared keys)."""
  return re.sub(r'[^A-Za-z0-9_.=-]+', '_', name).strip('_')


def learned_twin(fourier: Run, name: str) -> Run:
  """The learned table trained exactly as the Fourier run ``fourier``: the same config
  (so dropout 0, as Fourier's), tokenizer and schedule, with the embedding's own fields
  (basis, MLP, normalisation) left out. Beside ``fourier`` it says what the Fourier
  embedding adds, and not what the recipe adds. Twins of the same recipe share a workdir."""
  kept = tuple(o for o in fourier.overrides if not o[0].startswith('model.'))
  size = fourier.module.rsplit('_', 1)[-1]
  shared = '_'.join(['learned_dropout0', size] + [f'{f.split(".")[-1]}={v}' for f, v in kept])
  return Run(name, fourier.module, kept + LEARNED, shared=slug(shared),
             seeds=ABLATION_SEEDS, budget='converged')  # fmt: skip


def _fourier_sentencepiece(n: int) -> Run:
  """Fourier 1x256 over an n-piece SentencePiece vocabulary (a peer row and a moonshot
  candidate: one workdir)."""
  return Run(f'fourier SentencePiece {n // 1000}k', overrides=_sentencepiece(n),
             shared=f'fourier_sp{n // 1000}k_1x256', seeds=ABLATION_SEEDS, budget='converged')  # fmt: skip


def _peer(name: str, overrides: tuple, compare_with: str = '') -> Run:
  """A peers row of its own (three seeds at the converged budget)."""
  return Run(name, overrides=overrides, seeds=ABLATION_SEEDS, budget='converged',
             compare_with=compare_with)  # fmt: skip


def embedding_peers() -> list[Run]:
  """Issue 17: PETE against other ways to shrink the embedding, at the converged budget.

  Every row is the Fourier 1x256 encoder and recipe (dropout 0) with another embedding;
  the Table 1 rows (Fourier, and the learned table with its dropout 0.1) are shared.
  """
  reference = Run(
    'fourier (reference)',
    shared='fourier_1x256',
    seeds=ABLATION_SEEDS,
    reference=True,
    budget='converged',
  )
  # A row is (name, overrides[, compare_with]), or a Run shared with another sweep (the same
  # workdirs).
  rows = [
    reference,
    learned_twin(reference, 'learned, dropout 0'),
    *[(f'factorised e={e}', (('model.embedding', 'factorised'), ('model.embed_rank', e)))
      for e in (8, 32, 128)],
    *[(f'hashed B={b}', (('model.embedding', 'hashed'), ('model.hash_buckets', b)))
      for b in (256, 1024, 4096)],
    ('hash embedding B=1024 k=2', (('model.embedding', 'hashed'), ('model.hash_buckets', 1024),
                                   ('model.hash_functions', 2))),
    ('quotient-remainder m=ceil(sqrt V)', (('model.embedding', 'quotient_remainder'),)),
    ('random code + MLP', (('model.basis', 'random'),)),
    ('binary code + MLP', (('model.basis', 'binary'),)),
    _converged_row('embed_mlp', 'embed_mlp=geglu', 'fourier + GeGLU MLP'),
    # The best other basis of the (reduced-budget) basis ablation.
    _converged_row('basis', 'basis=laguerre_stretched', 'laguerre_stretched'),
    *[run for n in (2000, 4000) for run in (
      learned_twin(_fourier_sentencepiece(n), f'learned SentencePiece {n // 1000}k'),
      _fourier_sentencepiece(n))],
    # The fixed-code control at the vocabulary where Fourier scores best (moonshot_small's pick),
    # tested against Fourier over the same pieces.
    ('random code + MLP, SentencePiece 2k', (('model.basis', 'random'),) + _sentencepiece(2000),
     'fourier SentencePiece 2k'),
    learned_twin(Run('', overrides=_sentencepiece(8000)), 'learned SentencePiece 8k'),
    _converged_row('tokenizer', 'kind=sentencepiece', 'fourier SentencePiece 8k'),
    # SentencePiece numbers its pieces by score, close to frequency order, the order that cost
    # Fourier most in the id-order ablation: the same pieces with their ids shuffled.
    ('fourier SentencePiece 8k, ids shuffled', _sentencepiece(8000) + (('tokenizer.id_order', 'random'),),
     'fourier SentencePiece 8k'),
    # The vocabulary size is a soft limit: asking for more than the text supports trains the
    # largest unigram model it does (14,808 pieces on the local pairs).
    *[(f'{kind} SentencePiece largest', _sentencepiece(SPM_LARGEST) + (LEARNED if kind == 'learned' else ()))
      for kind in ('learned', 'fourier')],
  ]  # fmt: skip
  runs = [row if isinstance(row, Run) else _peer(*row) for row in rows]
  table1_learned = dataclasses.replace(table1_converged()[1], name='learned, dropout 0.1 (Table 1)')
  # The baseline's table as torch's nn.Embedding draws it (the official code's), N(0, 1), not
  # Flax's 1/sqrt(d): is the learned table's lead an artefact of how fast Adam moves it?
  torch_init = dataclasses.replace(
    table1_learned,
    name='learned, dropout 0.1, torch init N(0, 1)',
    overrides=(('model.table_init_std', 1.0),),
    shared='',
    compare_with=table1_learned.name,
  )
  runs[2:2] = [table1_learned, torch_init]
  return runs


# Issue 16's moonshot: a Fourier model trained on the local pairs alone that scores above
# the best published weights (tan_2_128: 75.42) and the paper's Fourier 1x256 (74.93).
# Candidate recipes, one seed each at the converged budget; the one with the best final
# selection score (zero-shot STS-B train) is then trained with three seeds beside its
# learned twin (``moonshot``). Two tiers:
# - ``moonshot``: the paper's largest size with each lever that helped at 1x256 (a GPU job:
#   2x512 runs take hours on a CPU). SentencePiece 2k joined the list because Fourier 1x256
#   over 2k pieces had the best selection score of any Fourier run (69.47; 1x512: 67.23).
# - ``moonshot_small``: every Fourier recipe of the 1x256 and 1x512 encoders trained at the
#   converged budget by Table 1, the ablations or the peers sweep (size, embedding MLP, best
#   other basis, tokenizer and vocabulary): a CPU-sized search whose seed-0 runs exist.
_SP8K = _sentencepiece(8000)
_SP2K = _sentencepiece(2000)
_GEGLU = (('model.embed_mlp', 'geglu'),)
MOONSHOT_CANDIDATES = {
  'fourier_2x512': (),
  'fourier_2x512 lr=1e-4': (('train.learning_rate', 1e-4),),
  'fourier_2x512 GeGLU': _GEGLU,
  'fourier_2x512 SentencePiece 8k': _SP8K,
  'fourier_2x512 SentencePiece 8k GeGLU': _SP8K + _GEGLU,
  'fourier_2x512 SentencePiece 2k': _SP2K,
}
# The committed tables, and the finished runs' records (also ``jobs.RECORDS_DIR``).
RESULTS_DIR = os.path.join('experiments', 'results')
RECORDS_DIR = os.path.join(RESULTS_DIR, 'runs')


def _moonshot_run(name: str) -> Run:
  """A 2x512 candidate (the plain recipe is the converged Table 1's Fourier 2x512 row)."""
  overrides = MOONSHOT_CANDIDATES[name]
  shared = 'moonshot_' + slug(name) if overrides else 'fourier_2x512'
  return Run(name, 'table1_fourier_2x512', overrides, shared=shared, budget='converged')


def _small_moonshot_candidates() -> list[Run]:
  table1 = {r.name: r for r in table1_converged()}
  rename = lambda run, name: dataclasses.replace(run, name=name, seeds=(0,), reference=False)
  return [
    rename(table1['fourier_1x256'], 'fourier_1x256'),
    rename(table1['fourier_1x512'], 'fourier_1x512'),
    _converged_row('embed_mlp', 'embed_mlp=geglu', 'fourier_1x256 GeGLU'),
    _converged_row('basis', 'basis=laguerre_stretched', 'fourier_1x256 laguerre_stretched'),
    _converged_row('tokenizer', 'kind=sentencepiece', 'fourier_1x256 SentencePiece 8k'),
    *[rename(_fourier_sentencepiece(n), f'fourier_1x256 SentencePiece {n // 1000}k')
      for n in (4000, 2000)],
  ]  # fmt: skip


MOONSHOT_TIERS = {
  'moonshot': lambda: [_moonshot_run(name) for name in MOONSHOT_CANDIDATES],
  'moonshot_small': _small_moonshot_candidates,
}


def moonshot_search(tier: str = 'moonshot') -> list[Run]:
  """The tier's candidates, seed 0 each (every one has a shared workdir)."""
  return [dataclasses.replace(r, seeds=(0,)) for r in MOONSHOT_TIERS[tier]()]


def moonshot_scores(records_dir: str = RECORDS_DIR, tier: str = 'moonshot') -> dict:
  """``{candidate: final selection score (zero-shot STS-B train), or None if not run}``."""
  scores = {}
  for run in moonshot_search(tier):
    record = read_json(
      os.path.join(
        records_dir, 'shared', run.shared, f'converged_steps{converged.STEPS}_seed0.json'
      )
    )
    last = record and record['evals'] and max(record['evals'], key=lambda e: e['step'])
    scores[run.name] = last['select_spearman'] if last else None
  return scores


def best_score(scores: dict) -> str | None:
  """The candidate with the best score, once every candidate has one."""
  if None in scores.values():
    return None
  return max(scores, key=scores.get)


def moonshot_choice(records_dir: str = RECORDS_DIR, tier: str = 'moonshot') -> str | None:
  """The candidate with the best final selection score, once every candidate has run."""
  return best_score(moonshot_scores(records_dir, tier))


def moonshot(records_dir: str = RECORDS_DIR, tier: str = 'moonshot') -> list[Run]:
  """The chosen candidate with three seeds (seed 0 the search's run) and its learned twin.
  Empty until the tier's search has finished."""
  chosen = moonshot_choice(records_dir, tier)
  if chosen is None:
    return []
  (run,) = [r for r in moonshot_search(tier) if r.name == chosen]
  fourier = dataclasses.replace(run, seeds=ABLATION_SEEDS, reference=True)
  return [fourier, learned_twin(fourier, f'learned twin of {chosen}')]


# The ablations whose conclusions the results README draws most firmly.
CONVERGED_ABLATIONS = ('normalisation', 'id_order', 'embed_mlp', 'basis', 'tokenizer')

SWEEPS = {
  'table1': table1,
  'table1_converged': table1_converged,
  'table2': table2,
  'table2_converged_pretrain': table2_converged_pretrain,
  'lr_grid': lr_grid,
  'schedule': schedule,
  'embedding_peers': embedding_peers,
  'moonshot_search': moonshot_search,
  'moonshot': moonshot,
  'moonshot_small_search': lambda: moonshot_search('moonshot_small'),
  'moonshot_small': functools.partial(moonshot, tier='moonshot_small'),
  **ABLATIONS,
  **{
    f'{name}_converged': (lambda name=name: converged_ablation(name))
    for name in CONVERGED_ABLATIONS
  },
}
GROUPS = {
  'ablations': tuple(ABLATIONS),
  'ablations_converged': tuple(f'{name}_converged' for name in CONVERGED_ABLATIONS),
  # The search, then the chosen recipe (the second reads the first's records).
  'moonshot_all': ('moonshot_search', 'moonshot'),
  'moonshot_small_all': ('moonshot_small_search', 'moonshot_small'),
}


# Sweeps whose runs are chosen from finished records (the tier's search).
CHOSEN_FROM_RECORDS = ('moonshot', 'moonshot_small')


def sweep_runs(name: str, records_dir: str = RECORDS_DIR) -> list[Run]:
  """The runs of a named sweep (``records_dir``: where the records a choice reads are).

  Raises KeyError for an unknown name.
  """
  if name not in SWEEPS:
    raise KeyError(f'unknown sweep {name!r}; expected one of {sorted(SWEEPS) + sorted(GROUPS)}')
  return SWEEPS[name](records_dir) if name in CHOSEN_FROM_RECORDS else SWEEPS[name]()
