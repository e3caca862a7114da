"""Training / inference speed benchmark of the Table 1 models (issue 7).

    python -m experiments.benchmark                      # everything (about an hour on 2 CPU cores)
    python -m experiments.benchmark --sections=train --configs=fourier_1x256,learned_1x256
    python -m experiments.benchmark --quick --out_dir=/tmp/bench   # tiny model, 2 steps (tests)
    python -m experiments.benchmark --compute_dtype=bfloat16       # GPU / TPU

What is measured (all with the project's own code):

* ``train``: the real training step (``train.make_train_step``: forward, backward,
  AdamW; jit with the state donated) with the paper's batch of 128 pairs, on the
  first ``--steps`` batches of the real local NLI data as the training loop draws
  them (``pipeline.prepare_training_data`` + ``PairBatcher``: max_len 128, buckets
  16/32/64/128), and on the same batches padded to 128 (the official code).
  Fourier and learned models of the same size, and the PyTorch peer of each
  (``experiments/bench/torch_peer.py``: the same model and step in eager PyTorch),
  run interleaved, step by step, on the same batches, so every ratio is measured
  under the same machine load.
* ``loop``: the training loop (``train_and_evaluate``, logging and evaluation
  included, compilation and evaluation time left out of its logged rate) against
  the bare step on the same batches.
* ``ops``: each operation of the step (FFN dense, GELU, softmax, attention) jitted
  alone against the PyTorch peer's, at the padded shape, and on one core against two.
* ``breakdown``: where the time of a step goes at each ``--breakdown_shapes`` batch
  shape (ablations of the full step and jitted sub-functions, interleaved) and the
  sin/cos count of the compiled HLO.
* ``inference``: sentences/s of ``SentenceEncoder.apply`` with the materialised
  embedding table vs the basis computed on the fly vs the learned table.
* ``vocab``: step time and memory of Fourier vs learned 1x256 as V grows.
* ``peers``: step time (and its ratio to the Fourier reference, interleaved) and training
  and inference memory of each embedding of the ``embedding_peers`` sweep (issue 17:
  learned, factorised, hashed, quotient-remainder, other bases; not the SentencePiece
  rows) in the Fourier 1x256 model, at each ``--peer_vocab_sizes`` V.
* ``shapes``: step time as the batch and the padded length grow.

MFU = analytic matmul FLOPs per second (dense layers + attention score and value
matmuls, forward x 3 for forward + backward) / the matmul rate of a large ``jnp.dot``
in the run's compute dtype, timed in the same run. Both the FLOPs on computed (padded) tokens
and on real tokens are reported. Timings are medians; timings are never tested.

Every section merges its results into ``<out_dir>/benchmark.json`` and the
markdown ``<out_dir>/benchmark.md`` is regenerated from the JSON, entirely (no
hand-written text survives a regeneration, so every number in it comes from a run).

This file is the command line; the pieces are in ``experiments/bench/`` (FLOP counts,
timing tools, data, the sections, the targets and the report).
"""

import argparse
import datetime
import json
import os
import platform
import resource
import sys
import time
from typing import Sequence

import jax

from experiments.bench.batches import BERT_VOCAB_SIZE, TABLE1, load_training_batches, table1_config
from experiments.bench.measure import log, matmul_peak, med
from experiments import readme_blocks
from experiments.bench.report import readme_summary, write_outputs
from experiments.bench.op_sections import section_ops
from experiments.bench.scaling_sections import (
  section_inference,
  section_peers,
  section_shapes,
  section_vocab,
)
from experiments.bench.train_sections import section_breakdown, section_loop, section_train
from pete_jax.encoder import DTYPES

SECTIONS = ('train', 'loop', 'ops', 'breakdown', 'inference', 'vocab', 'peers', 'shapes')
DEFAULT_OUT_DIR = os.path.join('experiments', 'results')


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  csv = lambda s: [v for v in s.split(',') if v]
  ints = lambda s: [int(v) for v in s.split(',') if v]
  shapes = lambda s: [[int(n) for n in v.split('x')] for v in s.split(',') if v]
  p.add_argument('--configs', type=csv, default=list(TABLE1))
  p.add_argument('--sections', type=csv, default=list(SECTIONS))
  p.add_argument('--steps', type=int, default=10, help='timed steps, real bucketed batches')
  p.add_argument('--padded_steps', type=int, default=3, help='timed steps, padded to max_len')
  p.add_argument(
    '--peer',
    choices=('auto', 'on', 'off'),
    default='auto',
    help='time the PyTorch peer (experiments/bench/torch_peer.py) beside each model; auto: '
    'when torch is installed and JAX runs fp32 on the CPU (the peer runs there)',
  )
  p.add_argument('--paddings', type=csv, default=['bucketed', 'padded'])
  p.add_argument('--loop_config', default='fourier_1x256', choices=TABLE1)
  p.add_argument('--loop_steps', type=int, default=60, help='steps of the loop section')
  p.add_argument('--ops_config', default='fourier_1x256', choices=TABLE1)
  p.add_argument('--ops_reps', type=int, default=5, help='timed reps of each op (ops section)')
  p.add_argument('--start_step', type=int, default=0)
  p.add_argument('--max_len', type=int, default=128)
  p.add_argument('--batch_size', type=int, default=128)
  p.add_argument('--compute_dtype', default='float32')
  p.add_argument('--rng_impl', default=None, help='dropout key impl: threefry2x32, rbg, unsafe_rbg')
  p.add_argument('--peak_n', type=int, default=2048)
  p.add_argument('--breakdown_sizes', type=csv, default=['1x256', '2x512'])
  p.add_argument(
    '--breakdown_shapes',
    type=shapes,
    default=[[32, 16], [128, 128]],
    help='lengths a x b of the breakdown batch: typical bucketed, and padded to 128',
  )
  p.add_argument('--breakdown_reps', type=int, default=5)
  p.add_argument('--inference_sizes', type=csv, default=['1x256', '2x256'])
  p.add_argument('--encode_batch', type=int, default=256)
  p.add_argument('--inference_batches', type=int, default=8)
  p.add_argument('--inference_padded_batches', type=int, default=3)
  p.add_argument('--vocab_sizes', type=ints, default=[BERT_VOCAB_SIZE, 65536, 131072, 262144])
  p.add_argument(
    '--peer_vocab_sizes',
    type=ints,
    default=[BERT_VOCAB_SIZE, 256000],
    help='V of the peers section (the embedding_peers sweep)',
  )
  p.add_argument('--scaling_len', type=int, default=32)
  p.add_argument('--scaling_steps', type=int, default=3)
  p.add_argument('--scaling_batches', type=ints, default=[32, 64, 128, 256])
  p.add_argument('--scaling_lens', type=ints, default=[32, 64, 128])
  p.add_argument('--shape_models', type=csv, default=['fourier', 'learned'])
  p.add_argument('--out_dir', default=DEFAULT_OUT_DIR)
  p.add_argument(
    '--readme',
    default=None,
    help='README whose "benchmark" block gets the targets table (default: README.md '
    'when writing to the default out_dir, else none)',
  )
  p.add_argument('--fresh', action='store_true', help='discard the existing JSON')
  p.add_argument(
    '--report_only',
    action='store_true',
    help='measure nothing: rewrite benchmark.md (and the README block) from the JSON',
  )
  p.add_argument('--quick', action='store_true', help='tiny model, 2 steps, small batches (tests)')
  args = p.parse_args(argv)
  bad = [c for c in args.configs if c not in TABLE1] + [
    s for s in args.sections if s not in SECTIONS
  ]
  if bad:
    p.error(f'unknown configs/sections {bad}; configs: {TABLE1}; sections: {SECTIONS}')
  args.peer = resolve_peer(args.peer, args.compute_dtype)
  if args.quick:
    args.steps, args.padded_steps, args.breakdown_reps, args.scaling_steps = 2, 1, 2, 1
    args.loop_steps, args.ops_reps = 3, 2
    args.batch_size, args.encode_batch, args.inference_batches = 8, 8, 2
    args.inference_padded_batches = 1
    args.configs = [c for c in args.configs if c.endswith('1x256')] or ['fourier_1x256']
    args.breakdown_sizes, args.inference_sizes = ['1x256'], ['1x256']
    args.vocab_sizes = [BERT_VOCAB_SIZE, 65536]
    args.peer_vocab_sizes = [8192]
    args.scaling_batches, args.scaling_lens, args.scaling_len = [4, 8], [16, 32], 16
    args.breakdown_shapes = [[16, 16]]
    args.shape_models = ['fourier']
    args.peak_n = 256
  return args


def resolve_peer(choice: str, compute_dtype: str) -> bool:
  """Whether to time the PyTorch peer: 'on', 'off', or 'auto' (torch present, fp32 on CPU)."""
  if choice == 'off':
    return False
  try:
    import torch  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
  except ImportError as e:
    if choice == 'on':
      raise SystemExit('--peer=on needs torch: pip install -e .[convert]') from e
    return False
  return choice == 'on' or (compute_dtype == 'float32' and jax.default_backend() == 'cpu')


def section_runs(results: dict, sections: Sequence[str], this_run: dict) -> dict:
  """Section -> the run (command, date, load) that last measured it.

  Sections merge across runs, so the header must say which command produced each one.
  A results file from before this was recorded credits its sections to its last command.
  """
  meta = results.get('meta', {})
  runs = dict(
    meta.get('section_runs')
    or {s: {k: meta.get(k) for k in this_run} for s in SECTIONS if s in results and meta}
  )
  runs.update({s: this_run for s in sections})
  return runs


def main(argv: Sequence[str]) -> dict:
  args = parse_args(argv)
  load_start = list(os.getloadavg())  # 1, 5, 15 min: how busy the machine was (in the header)
  json_path = os.path.join(args.out_dir, 'benchmark.json')
  results: dict = {}
  if os.path.exists(json_path) and not args.fresh:
    with open(json_path, encoding='utf-8') as f:
      results = json.load(f)
  if args.report_only:
    if not results:
      raise SystemExit(f'--report_only: no results at {json_path}; run the benchmark first.')
    publish(results, args)
    return results
  # The peak is the matmul rate in the compute dtype (bf16 on GPU/TPU with --compute_dtype).
  peak_dtype = DTYPES[args.compute_dtype]
  peaks = [matmul_peak(args.peak_n, dtype=peak_dtype)['median_flops']]
  log(f'matmul peak {peaks[0] / 1e9:.1f} GFLOP/s')
  needs_data = any(s in args.sections for s in ('train', 'breakdown', 'inference'))
  batches, extra = [], {}
  if needs_data:
    config = table1_config('fourier_1x256', args.quick)
    config.train.batch_size = args.batch_size
    n = max(args.steps, args.padded_steps, 1)
    batches, extra = load_training_batches(config, n, args.start_step)
    results['data'] = extra['info']

  peak = peaks[0]
  run_id = time.strftime('%Y%m%dT%H%M%S')
  if 'train' in args.sections:
    new = section_train(args, batches, peak)
    for r in new:
      r['run_id'] = run_id
    keep = [
      r
      for r in results.get('train', [])
      if (r['config'], r['padding']) not in {(x['config'], x['padding']) for x in new}
    ]
    results['train'] = keep + new
  if 'loop' in args.sections:
    results['loop'] = section_loop(args)
  if 'ops' in args.sections:
    results['ops'] = section_ops(args)
  if 'breakdown' in args.sections:
    results['breakdown'] = section_breakdown(args, batches)
  if 'inference' in args.sections:
    new = section_inference(args, extra['sentences'])
    keep = [
      r
      for r in results.get('inference', [])
      if (r['size'], r['padding']) not in {(x['size'], x['padding']) for x in new}
    ]
    results['inference'] = keep + new
  if 'vocab' in args.sections:
    results['vocab'] = section_vocab(args)
  if 'peers' in args.sections:
    new = section_peers(args)
    vocabs = {r['vocab_size'] for r in new}
    keep = [r for r in results.get('peers', []) if r['vocab_size'] not in vocabs]
    results['peers'] = keep + new
  if 'shapes' in args.sections:
    results['shapes'] = section_shapes(args)
  peaks.append(matmul_peak(args.peak_n, dtype=peak_dtype)['median_flops'])
  log(f'matmul peak (end) {peaks[-1] / 1e9:.1f} GFLOP/s')
  # MFU of this run's rows against this run's own peak (median of its start and end
  # measurements): the machine's load drifts between runs.
  run_peak = med(peaks)
  for r in results.get('train', []):
    if r.get('run_id') == run_id and 'achieved_gflops_computed' in r:
      r['matmul_peak_flops'] = run_peak
      r['mfu_computed'] = r['achieved_gflops_computed'] * 1e9 / run_peak
      r['mfu_real'] = r['mfu_computed'] * r['flops_per_step_real'] / r['flops_per_step_computed']
  samples = results.get('meta', {}).get('matmul_peak', {}).get('samples', []) + peaks
  peak_all = med(samples)
  date = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')
  this_run = {
    'argv': ' '.join(argv),
    'date': date,
    'load_average_start': load_start,
    'load_average_end': list(os.getloadavg()),
  }
  results['meta'] = {
    'date': date,
    'section_runs': section_runs(results, args.sections, this_run),
    'argv': ' '.join(argv),
    'jax': jax.__version__,
    'backend': jax.default_backend(),
    'devices': str(jax.devices()[0].device_kind),
    'cpu_count': os.cpu_count(),
    'load_average_start': load_start,
    'load_average_end': list(os.getloadavg()),
    'platform': platform.platform(),
    'compute_dtype': args.compute_dtype,
    'rng_impl': args.rng_impl or 'default (threefry2x32)',
    'quick': args.quick,
    'scaling_len': args.scaling_len,
    'matmul_peak': {
      'n': args.peak_n,
      'dtype': args.compute_dtype,
      'flops': peak_all,
      'samples': samples,
      'note': 'MFU of each training row uses the peak '
      'measured at the start and end of the run that timed it (matmul_peak_flops)',
    },
    'max_rss_bytes': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    'peer': _peer_versions(args.peer),
  }
  publish(results, args)
  return results


def _peer_versions(peer: bool) -> dict | None:
  """The PyTorch peer's version and threads (None when it did not run)."""
  if not peer:
    return None
  import torch  # pylint: disable=import-outside-toplevel

  return {'torch': torch.__version__, 'threads': torch.get_num_threads(), 'mode': 'eager, fp32'}


def publish(results: dict, args) -> None:
  """Writes the JSON, the markdown and plot, and (default out_dir) the README block."""
  write_outputs(results, args.out_dir)
  log(f'wrote {args.out_dir}/benchmark.json and benchmark.md')
  readme = args.readme
  if (
    readme is None
    and not args.quick
    and os.path.abspath(args.out_dir) == os.path.abspath(DEFAULT_OUT_DIR)
  ):
    readme = readme_blocks.README
  if readme and readme_blocks.replace_block(readme, 'benchmark', readme_summary(results)):
    log(f'updated the benchmark block of {readme}')


if __name__ == '__main__':
  main(sys.argv[1:])
