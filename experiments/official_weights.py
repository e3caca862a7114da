"""STS-B reproduction of the official pretrained weights, plus one-switch-off ablations.

    python -m experiments.official_weights

Converts the four official .pt files (pete_jax.convert_official), scores each
workdir on all 1,500 STS-B validation pairs with the project's evaluation
(pete_jax.evaluate: each sentence on its own, cosine of pooled vectors vs the
real-valued gold scores, Pearson/Spearman x 100), and compares with the
README of shared/data/official_weights. Then it turns each official-mode
switch off alone, to show which behaviours the weights depend on. The results
files are written by this script only.
"""

import os
import platform
import shutil
import sys
import time
from typing import Any

from absl import app, flags
import jax

from configs import default as default_config
from pete_jax import convert_official, evaluate, files
from pete_jax.config_fields import set_field
from pete_jax.trained_model import load_workdir
from pete_jax.data import batching, pipeline
from pete_jax.encoder import encoder_from_config

_SCRATCH = flags.DEFINE_string(
  'scratch', '/tmp/pete_official_weights', 'Where the converted workdirs go (overwritten).'
)
_OUT = flags.DEFINE_string(
  'out',
  'experiments/results/official_weights',
  'Results path without extension (.md and .json are written).',
)
_BATCH = flags.DEFINE_integer('batch_size', 256, 'Evaluation batch size.')

TOLERANCE = 0.05
# README of shared/data/official_weights: (Pearson, Spearman) per setting.
README = {
  'tan_1_64': {
    'official': (68.51, 69.05),
    'pooling': (55.75, 57.68),
    'normalisation': (41.53, 47.05),
    'normalisation+pooling': (49.20, 51.97),
    'drop_ffn_output': (30.05, 41.73),
  },
  'tan_1_128': {
    'official': (70.91, 71.29),
    'pooling': (63.18, 64.28),
    'normalisation': (40.97, 47.87),
    'normalisation+pooling': (52.26, 53.81),
    'drop_ffn_output': (25.93, 38.71),
  },
  'tan_2_64': {
    'official': (69.98, 70.34),
    'pooling': (57.16, 58.57),
    'normalisation': (49.53, 53.05),
    'normalisation+pooling': (51.98, 54.66),
    'drop_ffn_output': (37.90, 50.65),
  },
  'tan_2_128': {
    'official': (75.02, 75.42),
    'pooling': (61.21, 62.72),
    'normalisation': (44.44, 47.33),
    'normalisation+pooling': (53.67, 55.13),
    'drop_ffn_output': (47.25, 57.73),
  },
}
# Setting name -> config changes that switch one official behaviour off.
ABLATIONS: dict[str, dict[str, Any]] = {
  'official': {},
  'normalisation': {'model.normalisation': 'max_seq_len'},
  'pooling': {'model.pooling': 'masked_mean'},
  'normalisation+pooling': {'model.normalisation': 'max_seq_len', 'model.pooling': 'masked_mean'},
  'drop_ffn_output': {'model.drop_ffn_output': False},
  'rope': {'model.rope': 'standard'},
  'pad_to_max_len': {'data.pad_to_max_len': False},
  # V - 1 of the tokenizer's 30,522 ids instead of the official table's 30,552 rows.
  'basis_vocab_size': {'model.basis_vocab_size': 30522, 'model.vocab_size': 30522},
}


def score(config, encoder_params: dict, sts) -> dict[str, float]:
  """STS scores of a (possibly modified) config, as pete_jax.evaluate.evaluate_workdir does."""
  encoder = encoder_from_config(config.model, config.model.vocab_size, config.data.max_len)
  # The config's own padding, not pipeline.padding_lengths (which always pads 'mean_all'
  # to max_len): the 'pad_to_max_len' setting measures what bucketed padding does to it.
  lengths = batching.bucket_lengths(
    config.data.max_len, config.data.buckets, bool(config.data.pad_to_max_len)
  )
  return evaluate.sts_eval(
    evaluate.encoder_fn(evaluate.jit_apply(encoder), encoder_params), sts, lengths, _BATCH.value
  )


def run_weights(name: str) -> dict:
  """Converts one weight file and scores every setting."""
  workdir = os.path.join(_SCRATCH.value, name)
  shutil.rmtree(workdir, ignore_errors=True)
  convert_official.convert(
    default_config.data_path('official_weights', f'{name}.pt'),
    workdir,
    eval_source='stsb_tsv:' + default_config.data_path('stsb', 'dev.tsv'),
  )
  model = load_workdir(workdir)
  config, params = model.config, {'encoder': model.params}
  sts = pipeline.prepare_sts(config, model.tokenizer)
  rows = []
  for setting, changes in ABLATIONS.items():
    modified = config.copy_and_resolve_references()
    for dotted, value in changes.items():
      set_field(modified, dotted, value)
    got = score(modified, params['encoder'], sts)
    want = README[name].get(setting)
    rows.append(
      {
        'setting': setting,
        'changes': changes,
        'num_pairs': got['num_pairs'],
        'pete_jax': {'pearson': got['pearson'], 'spearman': got['spearman']},
        'readme': None if want is None else {'pearson': want[0], 'spearman': want[1]},
      }
    )
  m = config.model
  return {
    'sizes': {'layers': m.num_layers, 'd_model': m.d_model, 'heads': m.num_heads},
    'rows': rows,
  }


def machine() -> dict[str, str]:
  import torch  # pylint: disable=import-outside-toplevel

  return {
    'python': platform.python_version(),
    'platform': platform.platform(),
    'processor': platform.processor() or platform.machine(),
    'cpus': str(os.cpu_count()),
    'jax': jax.__version__,
    'jax_devices': str(jax.devices()),
    'torch': torch.__version__,
  }


def _fmt(pair: dict | None) -> str:
  return '–' if pair is None else f'{pair["pearson"]:.2f} / {pair["spearman"]:.2f}'


def _diff(row: dict) -> str:
  if row['readme'] is None:
    return '–'
  return ' / '.join(
    f'{row["pete_jax"][k] - row["readme"][k]:+.3f}' for k in ('pearson', 'spearman')
  )


def markdown(record: dict) -> str:
  lines = [
    '# Official pretrained weights: STS-B validation reproduction',
    '',
    f'Command: `{record["command"]}`',
    '',
    f'Produced by `experiments/official_weights.py` on {record["date"]} in '
    f'{record["seconds"]:.0f} s. Machine: '
    + ', '.join(f'{k} {v}' for k, v in record['machine'].items())
    + '.',
    '',
    'Protocol: all 1,500 pairs of shared/data/stsb/dev.tsv, each sentence tokenised on '
    'its own (BERT uncased WordPiece, truncated to 128), cosine of the pooled vectors vs '
    'the real-valued gold scores, Pearson / Spearman x 100 (scipy), float32 on CPU, '
    'scored with `pete_jax.evaluate.sts_eval` (batch '
    f'{record["batch_size"]}; sentences sorted by length, so with `pad_to_max_len` off '
    'each batch pads to the smallest bucket of (16, 32, 64, 128) that fits it). '
    '"README" is the table of shared/data/official_weights/README.md.',
    '',
    f'Official configuration reproduced within {TOLERANCE} for every file: '
    f'**{record["all_official_within_tolerance"]}**.',
    '',
  ]
  for name, res in record['results'].items():
    s = res['sizes']
    lines += [
      f'## {name} ({s["layers"]} layer(s), d_model {s["d_model"]}, {s["heads"]} head(s))',
      '',
      '| setting (switched off) | config change | README P / S | pete_jax P / S | difference |',
      '|---|---|---|---|---|',
    ]
    for row in res['rows']:
      change = ', '.join(f'{k}={v!r}' for k, v in row['changes'].items()) or '(official mode)'
      lines.append(
        f'| {row["setting"]} | `{change}` | {_fmt(row["readme"])} | '
        f'{_fmt(row["pete_jax"])} | {_diff(row)} |'
      )
    lines.append('')
  return '\n'.join(lines)


def main(argv):
  del argv
  start = time.time()
  results = {name: run_weights(name) for name in README}
  ok = all(
    abs(row['pete_jax'][k] - row['readme'][k]) <= TOLERANCE
    for res in results.values()
    for row in res['rows']
    if row['setting'] == 'official'
    for k in ('pearson', 'spearman')
  )
  record = {
    'command': ' '.join(['python -m experiments.official_weights'] + sys.argv[1:]),
    'date': time.strftime('%Y-%m-%d %H:%M:%S %Z'),
    'seconds': time.time() - start,
    'machine': machine(),
    'batch_size': _BATCH.value,
    'tolerance': TOLERANCE,
    'all_official_within_tolerance': ok,
    'results': results,
  }
  files.write_json(_OUT.value + '.json', record)
  files.write_text(_OUT.value + '.md', markdown(record))
  print(markdown(record))
  if not ok:
    raise SystemExit(f'official scores not reproduced within {TOLERANCE}')


if __name__ == '__main__':
  app.run(main)
