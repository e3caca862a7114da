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
  Fourier and learned models of the same size run interleaved, step by step, on
  the same batches, so their ratio is measured under the same machine load.
* ``breakdown``: where the time of a step goes (ablations of the full step and
  jitted sub-functions, interleaved) and the sin/cos count of the compiled HLO.
* ``inference``: sentences/s of ``SentenceEncoder.apply`` with the materialised
  embedding table vs the basis computed on the fly vs the learned table.
* ``vocab``: step time and memory of Fourier vs learned 1x256 as V grows.
* ``shapes``: step time as the batch and the padded length grow.

MFU = analytic matmul FLOPs per second (dense layers + attention score and value
matmuls, forward x 3 for forward + backward) / the fp32 matmul rate of a large
``jnp.dot`` timed in the same run. Both the FLOPs on computed (padded) tokens
and on real tokens are reported. Timings are medians; timings are never tested.

Every section merges its results into ``<out_dir>/benchmark.json`` and the
markdown ``<out_dir>/benchmark.md`` is regenerated from the JSON, entirely (no
hand-written text survives a regeneration, so every number in it comes from a run).
"""

import argparse
import datetime
import json
import math
import os
import platform
import re
import resource
import sys
import tempfile
import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from configs import default as default_config
from configs import local_data
from pete_jax import train
from pete_jax.data import batching, pipeline
from pete_jax.encoder import DTYPES, encoder_from_config

TABLE1 = ('fourier_1x256', 'learned_1x256', 'fourier_1x512', 'learned_1x512',
          'fourier_2x256', 'learned_2x256', 'fourier_2x512', 'learned_2x512')
SECTIONS = ('train', 'breakdown', 'inference', 'vocab', 'shapes')
QUICK_VARIANTS = ('fourier', 'fourier_basis_barrier_off', 'learned', 'learned_no_dropout')

# Official PyTorch code on this machine kind (2 threads, torch 2.13 CPU, fp32, padded
# to 128, batch 128). Its Fourier model drops the FFN output (no FFN backward).
OFFICIAL_PAIRS_PER_S = {'fourier_1x256': 76.0, 'learned_1x256': 46.0, 'fourier_2x256': 52.0,
                        'learned_2x256': 27.0, 'fourier_1x512': 21.0, 'fourier_2x512': 12.0}
OFFICIAL_ENCODE_SENTENCES_PER_S = {'fourier_2x256': 97.0}  # batch 256


# ------------------------------------------------------------------ configs
def table1_config(name: str, quick: bool = False, vocab_size: int = 30522,
                  drop_ffn_output: bool = False):
  """The config of Table 1 model ``name`` ('fourier_2x512'), on the local data.

  ``drop_ffn_output`` (Fourier only): the official code's block, whose FFN output is
  dropped (so the compiler removes the FFN, forward and backward).
  """
  embedding, size = name.split('_')
  layers, d = (int(v) for v in size.split('x'))
  config = local_data.use_local_data(default_config.get_config())
  config.model.embedding = embedding
  config.model.num_layers = config.model.num_heads = layers
  config.model.d_model = d
  config.model.dropout_rate = 0.1 if embedding == 'learned' else 0.0
  config.model.vocab_size = vocab_size
  config.model.drop_ffn_output = bool(drop_ffn_output and embedding == 'fourier')
  if quick:
    config.model.d_model = 32
    config.model.num_layers = config.model.num_heads = 1
  return config


def describe(config) -> str:
  m = config.model
  return f'{m.embedding}_{m.num_layers}x{m.d_model}'


# ------------------------------------------------------------------- FLOPs
def dense_flops_per_token(model) -> float:
  """Forward matmul FLOPs per token of every dense layer (2 per multiply-add)."""
  d = model.d_model
  m = model.ffn_hidden or int(round(model.ffn_multiplier * d))
  embed = 0.0
  if model.embedding == 'fourier':
    if model.embed_mlp == 'linear':
      embed = 2 * d * d
    elif model.embed_mlp == 'geglu':
      h = model.embed_mlp_expansion * d
      embed = 2 * d * 2 * h + 2 * h * d
  block = 2 * d * 3 * d + 2 * d * d  # qkv + out
  if not model.drop_ffn_output:  # A dropped FFN is removed by the compiler.
    block += 2 * d * 2 * m + 2 * m * d
  return embed + model.num_layers * block


def forward_flops(model, lengths: np.ndarray, padded_length: int | None) -> float:
  """Forward matmul FLOPs of encoding sentences with token counts ``lengths``.

  With ``padded_length`` every sentence is counted at that length (the computed
  tokens); without it only real tokens count (attention over real keys only).
  """
  d = model.d_model
  n = np.full(len(lengths), padded_length, np.float64) if padded_length else lengths.astype(
      np.float64)
  attention = model.num_layers * 4.0 * d * float((n * n).sum())  # q.k and weights.v
  pooler = 2.0 * d * d * len(lengths)
  return dense_flops_per_token(model) * float(n.sum()) + attention + pooler


def step_flops(model, batch: dict, padded: bool) -> float:
  """Training-step FLOPs: 3 x forward of both sides (the loss's B x B x d is included)."""
  total = 0.0
  for side in ('a', 'b'):
    mask = np.asarray(batch[f'{side}_mask'])
    total += forward_flops(model, mask.sum(1), mask.shape[1] if padded else None)
  bsz, d = np.asarray(batch['a_mask']).shape[0], model.d_model
  return 3.0 * (total + 2.0 * bsz * bsz * d)


# ------------------------------------------------------------ measurement
def block(x):
  return jax.block_until_ready(x)


def matmul_peak(n: int, reps: int = 5, dtype=jnp.float32) -> dict:
  """fp32 matmul rate (FLOP/s) of one jitted ``n x n @ n x n``: median and max of ``reps``."""
  a = jax.random.normal(jax.random.key(0), (n, n), dtype)
  b = jax.random.normal(jax.random.key(1), (n, n), dtype)
  f = jax.jit(jnp.dot)
  block(f(a, b))
  times = []
  for _ in range(reps):
    t = time.perf_counter()
    block(f(a, b))
    times.append(time.perf_counter() - t)
  flops = 2.0 * n ** 3
  return {'n': n, 'median_flops': flops / float(np.median(times)), 'max_flops': flops / min(times),
          'times_s': times}


def memory_of(compiled) -> dict:
  """Bytes from XLA's memory analysis (peak estimate = arguments + outputs - aliased + temps)."""
  try:
    ma = compiled.memory_analysis()
  except Exception:  # pylint: disable=broad-except
    ma = None
  if ma is None:
    return {}
  out = {k: int(getattr(ma, f'{k}_size_in_bytes', 0)) for k in
         ('argument', 'output', 'alias', 'temp', 'generated_code')}
  out['peak_estimate'] = out['argument'] + out['output'] - out['alias'] + out['temp']
  return out


def count_ops(hlo_text: str, names: Sequence[str] = ('sine', 'cosine'),
              source: str | None = None) -> dict:
  """Number of HLO instructions with each opcode in ``names`` (fused computations included).

  ``source``: only instructions whose metadata op_name contains it (e.g. 'features_of'
  for the basis, 'attention' for RoPE).
  """
  out = {}
  for n in names:
    lines = [l for l in hlo_text.splitlines() if re.search(rf'=\s*\S+\s+{n}\(', l)]
    if source is not None:
      lines = [l for l in lines if source in l]
    out[n] = len(lines)
  return out


class patched_barrier:
  """Within the block, ``jax.lax.optimization_barrier`` is the identity (A/B of the basis barrier)."""

  def __enter__(self):
    self.saved = jax.lax.optimization_barrier
    jax.lax.optimization_barrier = lambda x: x

  def __exit__(self, *exc):
    jax.lax.optimization_barrier = self.saved


def tree_bytes(tree) -> int:
  return int(sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(tree)))


def tree_size(tree) -> int:
  return int(sum(x.size for x in jax.tree.leaves(tree)))


class Trainer:
  """One model's jitted training step, compiled once per batch shape, state donated."""

  def __init__(self, config, compute_dtype: str = 'float32', rng_impl: str | None = None,
               no_barrier: bool = False):
    self.config, self.name = config, describe(config)
    self.no_barrier = no_barrier
    self.model = config.model
    self.encoder = encoder_from_config(config.model, config.model.vocab_size, config.data.max_len,
                                       compute_dtype)
    self.optimizer = train.make_optimizer(config.train, config.train.weight_decay)
    params = train.init_params(self.encoder, config, jax.random.key(config.seed))
    self.num_params = tree_size(params['encoder'])
    self.state = train.create_train_state(params, self.optimizer)
    self.state_bytes = tree_bytes(self.state)
    self.jitted = jax.jit(train.make_train_step(self.encoder, config, self.optimizer, 'contrastive'),
                          donate_argnums=0)
    self.key = jax.random.key(config.seed + 1, impl=rng_impl) if rng_impl else jax.random.key(
        config.seed + 1)
    self.compiled: dict[tuple, Any] = {}
    self.memory: dict[tuple, dict] = {}
    self.compile_s: dict[tuple, float] = {}

  @staticmethod
  def shape_of(batch: dict) -> tuple:
    return tuple(batch[k].shape for k in ('a_ids', 'b_ids'))

  def compile(self, batch: dict):
    shape = self.shape_of(batch)
    if shape not in self.compiled:
      t = time.perf_counter()
      if self.no_barrier:
        with patched_barrier():
          compiled = self.jitted.lower(self.state, batch, self.key).compile()
      else:
        compiled = self.jitted.lower(self.state, batch, self.key).compile()
      self.compile_s[shape] = time.perf_counter() - t
      self.compiled[shape], self.memory[shape] = compiled, memory_of(compiled)
    return self.compiled[shape]

  def step(self, batch: dict) -> float:
    """Runs one step (compiling first if needed); returns its seconds (compile excluded)."""
    compiled = self.compile(batch)
    t = time.perf_counter()
    self.state, metrics = compiled(self.state, batch, self.key)
    block((self.state, metrics))
    return time.perf_counter() - t

  def hlo(self, batch: dict) -> str:
    return self.compile(batch).as_text()


def interleaved(runners: dict[str, Callable[[int], float]], n: int, warmup: int = 1,
                warmup_items: Sequence[int] | None = None) -> dict[str, list[float]]:
  """Calls ``runners[name](i)`` for i in range(n), alternating names at every i.

  ``warmup_items``: indices run once (untimed) first; default range(warmup).
  The order of names is rotated each round, so no one always runs first.
  """
  names = list(runners)
  for i in (warmup_items if warmup_items is not None else range(warmup)):
    for name in names:
      runners[name](i)
  times = {name: [] for name in names}
  for i in range(n):
    rot = names[i % len(names):] + names[:i % len(names)]
    for name in rot:
      times[name].append(runners[name](i))
  return times


def med(x) -> float:
  return float(np.median(np.asarray(x, np.float64)))


# ------------------------------------------------------------------- data
def load_training_batches(config, num_steps: int, start_step: int) -> tuple[list, dict]:
  """The first real training batches, exactly as the training loop draws them."""
  data = pipeline.prepare_training_data(config, tempfile.mkdtemp(prefix='pete_bench_'))
  batcher = data.batcher
  batches = [batcher.batch_at(s) for s in range(start_step, start_step + num_steps)]
  epoch_steps = batcher.steps_per_epoch
  info = {
      'num_pairs': int(batcher.num_examples), 'steps_per_epoch': int(epoch_steps),
      'batch_size': int(batcher.batch_size), 'lengths': list(batcher.lengths),
      'padding_efficiency_epoch': batcher.padding_efficiency(epoch_steps),
      'padding_efficiency_measured': batcher.padding_efficiency(num_steps, start_step),
      'shapes_measured': [list(batcher.shape_at(s)) for s in range(start_step,
                                                                    start_step + num_steps)],
      'mean_len_a': float(batcher.a.lengths.mean()), 'mean_len_b': float(batcher.b.lengths.mean()),
      'vocab_size': int(data.tokenizer.vocab_size),
  }
  shapes = {}
  for s in range(epoch_steps):
    key = 'x'.join(str(v) for v in batcher.shape_at(s))
    shapes[key] = shapes.get(key, 0) + 1
  info['shape_histogram_epoch'] = shapes
  sentences = {'a': batcher.a, 'b': batcher.b}
  return batches, {'info': info, 'sentences': sentences}


def pad_to(batch: dict, length: int) -> dict:
  out = {}
  for k, v in batch.items():
    if k.endswith('_ids') or k.endswith('_mask'):
      out[k] = np.pad(v, ((0, 0), (0, length - v.shape[1])))
    else:
      out[k] = v
  return out


def real_tokens(batch: dict) -> int:
  return int(batch['a_mask'].sum() + batch['b_mask'].sum())


def computed_tokens(batch: dict) -> int:
  return int(batch['a_mask'].size + batch['b_mask'].size)


# --------------------------------------------------------------- sections
def section_train(args, batches: list, peak: float) -> list[dict]:
  """Fourier vs learned of each size, interleaved, bucketed and padded to 128."""
  rows = []
  sizes = []
  for name in args.configs:
    size = name.split('_')[1]
    if size not in sizes:
      sizes.append(size)
  for size in sizes:
    names = [n for n in args.configs if n.endswith('_' + size)]
    for padding in args.paddings:
      n_steps = args.steps if padding == 'bucketed' else args.padded_steps
      if padding == 'padded':
        names_p = [n for n in names if args.quick or args.padded_all or n in OFFICIAL_PAIRS_PER_S]
      else:
        names_p = names
      if not names_p or n_steps <= 0:
        continue
      steps = batches[:n_steps]
      if padding == 'padded':
        steps = [pad_to(b, args.max_len) for b in steps]
      steps = [jax.device_put(b) for b in steps]
      trainers = {n: Trainer(table1_config(n, args.quick, drop_ffn_output=args.drop_ffn_output),
                             args.compute_dtype, args.rng_impl) for n in names_p}
      # Warm-up: one untimed step per distinct shape (compiles it), for every model.
      first_of_shape = {}
      for i, b in enumerate(steps):
        first_of_shape.setdefault(Trainer.shape_of(b), i)
      log(f'train {size} {padding}: {names_p}, {n_steps} steps, shapes {list(first_of_shape)}')
      times = interleaved({n: (lambda i, t=t: t.step(steps[i])) for n, t in trainers.items()},
                          n_steps, warmup_items=sorted(first_of_shape.values()))
      for n, t in trainers.items():
        total = float(sum(times[n]))
        flops_c = sum(step_flops(t.model, b, padded=True) for b in steps)
        flops_r = sum(step_flops(t.model, b, padded=False) for b in steps)
        mem = max((m.get('peak_estimate', 0) for m in t.memory.values()), default=0)
        row = {
            'config': n + ('_dropffn' if t.model.drop_ffn_output else ''), 'padding': padding, 'size': size, 'embedding': n.split('_')[0],
            'num_params': t.num_params, 'steps': n_steps, 'batch_pairs': int(steps[0]['a_ids'].shape[0]),
            'step_time_s_median': med(times[n]), 'step_times_s': times[n],
            'pairs_per_s': n_steps * int(steps[0]['a_ids'].shape[0]) / total,
            'real_tokens_per_s': sum(real_tokens(b) for b in steps) / total,
            'computed_tokens_per_s': sum(computed_tokens(b) for b in steps) / total,
            'padding_efficiency': sum(real_tokens(b) for b in steps) / sum(
                computed_tokens(b) for b in steps),
            'flops_per_step_computed': flops_c / n_steps, 'flops_per_step_real': flops_r / n_steps,
            'mfu_computed': flops_c / total / peak, 'mfu_real': flops_r / total / peak,
            'achieved_gflops_computed': flops_c / total / 1e9,
            'peak_memory_bytes': mem, 'state_bytes': t.state_bytes,
            'compile_s': {('x'.join(str(s[1]) for s in k)): v for k, v in t.compile_s.items()},
        }
        if padding == 'padded' and n in OFFICIAL_PAIRS_PER_S and (
            t.model.drop_ffn_output or n.startswith('learned')):
          row['official_pairs_per_s'] = OFFICIAL_PAIRS_PER_S[n]
          row['like_for_like'] = True
        elif padding == 'padded' and n in OFFICIAL_PAIRS_PER_S:
          row['official_pairs_per_s'] = OFFICIAL_PAIRS_PER_S[n]
        rows.append(row)
        log(f'  {n:15s} {padding:8s} median {row["step_time_s_median"]:.3f} s  '
            f'{row["pairs_per_s"]:.1f} pairs/s  MFU {row["mfu_computed"]:.2f}')
      if not args.drop_ffn_output and len(trainers) == 2 and 'fourier_' + size in times and 'learned_' + size in times:
        f, l = np.asarray(times['fourier_' + size]), np.asarray(times['learned_' + size])
        rows.append({'config': 'ratio_' + size, 'padding': padding, 'size': size,
                     'fourier_over_learned_median_of_ratios': med(f / l),
                     'fourier_over_learned_total': float(f.sum() / l.sum())})
      del trainers
  return rows


def section_breakdown(args, batches: list) -> dict:
  """Where a step's time goes, at one representative shape, per size in ``args.breakdown_sizes``."""
  out = {}
  reps = args.breakdown_reps
  for size in args.breakdown_sizes:
    batch = jax.device_put(_fixed_batch(batches, args.breakdown_shape, args.quick))
    variants = {
        'fourier': ('fourier', {}, None),
        'fourier_basis_barrier_off': ('fourier', {}, 'no_barrier'),
        'fourier_no_embed_mlp': ('fourier', {'embed_mlp': 'none'}, None),
        'fourier_drop_ffn_output': ('fourier', {'drop_ffn_output': True}, None),
        'learned': ('learned', {}, None),
        'learned_no_dropout': ('learned', {'dropout_rate': 0.0}, None),
        'learned_rbg': ('learned', {}, 'rbg'),
        'learned_unsafe_rbg': ('learned', {}, 'unsafe_rbg'),
    }
    if args.quick:
      variants = {k: v for k, v in variants.items() if k in QUICK_VARIANTS}
    trainers = {}
    for vname, (emb, overrides, impl) in variants.items():
      config = table1_config(f'{emb}_{size}', args.quick)
      for k, v in overrides.items():
        config.model[k] = v
      trainers[vname] = Trainer(config, args.compute_dtype, None if impl == 'no_barrier' else impl,
                                no_barrier=impl == 'no_barrier')
    log(f'breakdown {size}: shape {Trainer.shape_of(batch)}')
    times = interleaved({n: (lambda i, t=t: t.step(batch)) for n, t in trainers.items()}, reps,
                        warmup=1)
    step_med = {n: med(v) for n, v in times.items()}

    # Sub-functions, interleaved with the full steps of the two models.
    f_t, l_t = trainers['fourier'], trainers['learned']
    sub = _sub_functions(f_t, l_t, batch)
    sub_times = interleaved(sub, reps, warmup=1)
    sub_med = {n: med(v) for n, v in sub_times.items()}
    hlo_step = f_t.hlo(batch)
    ids = jnp.concatenate([batch['a_ids'].reshape(-1), batch['b_ids'].reshape(-1)])
    basis_fn = jax.jit(lambda i: f_t.encoder.apply({'params': f_t.state.params['encoder']}, i,
                                                   method=lambda m, i: m.embed.features_of(i)))
    hlo_basis = basis_fn.lower(ids).compile().as_text()
    res = {
        'shape': [list(s) for s in Trainer.shape_of(batch)], 'reps': reps,
        'step_s_median': step_med, 'sub_s_median': sub_med,
        'hlo_ops_train_step_fourier': count_ops(hlo_step),
        'hlo_ops_train_step_fourier_basis': count_ops(hlo_step, source='features_of'),
        'hlo_ops_train_step_fourier_rope': count_ops(hlo_step, source='attention'),
        'hlo_ops_basis_only': count_ops(hlo_basis),
        'hlo_ops_train_step_learned': count_ops(l_t.hlo(batch)),
        'hlo_threefry_calls_learned': len(re.findall(r'threefry', l_t.hlo(batch))),
    }
    f, l = step_med['fourier'], step_med['learned']
    nan = float('nan')
    sm = lambda k: step_med.get(k, nan)
    res['shares_of_fourier_step'] = {
        'basis forward (jitted alone; it has no backward)': sub_med['basis_forward'] / f,
        'basis recomputation saved by the barrier (step without - with)':
            (sm('fourier_basis_barrier_off') - f) / f,
        'embed MLP (step - step without it)': (f - sm('fourier_no_embed_mlp')) / f,
        'FFN fwd+bwd (step - step with FFN dropped)': (f - sm('fourier_drop_ffn_output')) / f,
        'attention fwd+bwd (all blocks, measured alone)': sub_med['attention_fwd_bwd'] / f,
        'FFN fwd+bwd (all blocks, measured alone)': sub_med['ffn_fwd_bwd'] / f,
        'optimizer update (AdamW alone)': sub_med['adamw_fourier'] / f,
    }
    res['shares_of_learned_step'] = {
        'dropout incl. RNG (step - step without dropout)': (l - sm('learned_no_dropout')) / l,
        'rbg key instead of threefry (saving)': (l - sm('learned_rbg')) / l,
        'unsafe_rbg key instead of threefry (saving)': (l - sm('learned_unsafe_rbg')) / l,
        'embedding lookup fwd+bwd (gather + dense [V,d] scatter)': sub_med['learned_embed_fwd_bwd'] / l,
        'optimizer update (AdamW alone)': sub_med['adamw_learned'] / l,
    }
    res['fourier_over_learned'] = f / l
    res['fourier_over_learned_no_dropout'] = f / sm('learned_no_dropout')
    res['fourier_over_learned_unsafe_rbg'] = f / sm('learned_unsafe_rbg')
    res['barrier_on_over_off_step'] = f / sm('fourier_basis_barrier_off')
    res['barrier_on_over_off_embed_fwd_bwd'] = (sub_med['fourier_embed_fwd_bwd'] /
                                                sub_med['fourier_embed_fwd_bwd_barrier_off'])
    if 'fourier_basis_barrier_off' in trainers:
      res['hlo_ops_train_step_fourier_basis_barrier_off'] = count_ops(
          trainers['fourier_basis_barrier_off'].hlo(batch), source='features_of')
    out[size] = res
    log(f'  breakdown {size}: {json.dumps(step_med)}  {json.dumps(sub_med)}')
  return out


def _fixed_batch(batches: list, shape: Sequence[int], quick: bool) -> dict:
  """A real batch re-padded (or cut) to the shape (La, Lb), masks kept consistent."""
  b = batches[0]
  out = {}
  for side, length in zip(('a', 'b'), shape):
    ids, mask = b[f'{side}_ids'], b[f'{side}_mask']
    if ids.shape[1] >= length:
      ids, mask = ids[:, :length], mask[:, :length]
    else:
      ids = np.pad(ids, ((0, 0), (0, length - ids.shape[1])))
      mask = np.pad(mask, ((0, 0), (0, length - mask.shape[1])))
    out[f'{side}_ids'], out[f'{side}_mask'] = ids, mask
  del quick
  return out


def _sub_functions(f_t: Trainer, l_t: Trainer, batch: dict) -> dict[str, Callable[[int], float]]:
  """Jitted pieces of a step, each returning its seconds."""
  from pete_jax.embeddings import FourierEmbed, LearnedEmbed  # pylint: disable=import-outside-toplevel
  from pete_jax.layers import GeGLU, MultiHeadAttention  # pylint: disable=import-outside-toplevel

  m = f_t.encoder
  ids = jnp.concatenate([batch['a_ids'], batch['b_ids'][:, :batch['a_ids'].shape[1]]]) if (
      batch['a_ids'].shape[1] == batch['b_ids'].shape[1]) else batch['a_ids']
  mask = (ids > 0).astype(jnp.int32)
  d = m.d_model
  x = jax.random.normal(jax.random.key(3), ids.shape + (d,), jnp.float32)
  scale = float(sum(b.size for b in (batch['a_ids'], batch['b_ids']))) / ids.size

  def timed(fn, *a, no_barrier=False):
    fn = jax.jit(fn)
    if no_barrier:
      with patched_barrier():
        fn = fn.lower(*a).compile()
    def run(_):
      t = time.perf_counter()
      block(fn(*a))
      return (time.perf_counter() - t) * scale  # scaled to both sides of the batch
    return run

  fe = FourierEmbed(m.vocab_size, d, mlp=m.embed_mlp)
  fe_params = fe.init(jax.random.key(0), ids[:1, :2])
  le = LearnedEmbed(m.vocab_size, d, dropout_rate=l_t.encoder.dropout_rate)
  le_params = le.init(jax.random.key(0), ids[:1, :2])
  attn = MultiHeadAttention(m.num_heads)
  attn_params = attn.init(jax.random.key(0), x[:1], mask[:1])
  ffn = GeGLU(m.ffn_hidden, d)
  ffn_params = ffn.init(jax.random.key(0), x[:1])
  layers = m.num_layers

  def fwd_bwd(apply, params, *inputs):
    def loss(p, *inp):
      return jnp.sum(apply(p, *inp) * x)
    return jax.grad(loss, argnums=(0, 1) if inputs and inputs[0].dtype == jnp.float32 else 0)(
        params, *inputs)

  def learned_embed(p, i):
    return le.apply(p, i, deterministic=False, rngs={'dropout': jax.random.key(5)})

  def adamw(trainer):
    opt = trainer.optimizer
    params = trainer.state.params
    opt_state = opt.init(params)
    grads = jax.tree.map(lambda p: jnp.full_like(p, 1e-3), params)

    def upd(g, s, p):
      u, s = opt.update(g, s, p)
      return jax.tree.map(lambda a, b: a + b, p, u), s
    fn = jax.jit(upd, donate_argnums=(1, 2))
    box = {'s': opt_state, 'p': jax.tree.map(jnp.copy, params)}

    def run(_):
      t = time.perf_counter()
      box['p'], box['s'] = block(fn(grads, box['s'], box['p']))
      return time.perf_counter() - t
    return run

  return {
      'basis_forward': timed(lambda i: fe.apply(fe_params, i, method=lambda mod, i: mod.features_of(i)),
                             ids),
      'fourier_embed_fwd_bwd': timed(lambda p, i: fwd_bwd(fe.apply, p, i), fe_params, ids),
      'fourier_embed_fwd_bwd_barrier_off': timed(lambda p, i: fwd_bwd(fe.apply, p, i), fe_params,
                                                 ids, no_barrier=True),
      'learned_embed_fwd_bwd': timed(lambda p, i: fwd_bwd(learned_embed, p, i), le_params, ids),
      'attention_fwd_bwd': _times(timed(lambda p, h: fwd_bwd(
          lambda pp, hh: attn.apply(pp, hh, mask), p, h), attn_params, x), layers),
      'ffn_fwd_bwd': _times(timed(lambda p, h: fwd_bwd(ffn.apply, p, h), ffn_params, x), layers),
      'adamw_fourier': adamw(f_t),
      'adamw_learned': adamw(l_t),
  }


def _times(run: Callable[[int], float], k: int) -> Callable[[int], float]:
  return lambda i: run(i) * k


def section_inference(args, sentences: dict) -> list[dict]:
  """Sentences/s: materialised table vs basis on the fly vs the learned table."""
  rows = []
  seqs_a, seqs_b = sentences['a'], sentences['b']
  rng = np.random.default_rng(0)
  bsz = args.encode_batch
  n_batches = max(args.inference_batches, 1)
  lengths = batching.bucket_lengths(args.max_len, (16, 32, 64, 128))
  batches = {'bucketed': [], 'padded': []}
  for _ in range(n_batches):
    side = seqs_a if rng.random() < 0.5 else seqs_b
    rows_idx = rng.choice(len(side), bsz, replace=False)
    longest = int(side.lengths[rows_idx].max())
    batches['bucketed'].append(side.pad(rows_idx, batching.fit_length(longest, lengths)))
    batches['padded'].append(side.pad(rows_idx, args.max_len))
  for size in args.inference_sizes:
    f_cfg = table1_config(f'fourier_{size}', args.quick)
    l_cfg = table1_config(f'learned_{size}', args.quick)
    f_enc = encoder_from_config(f_cfg.model, 30522, args.max_len, args.compute_dtype)
    l_enc = encoder_from_config(l_cfg.model, 30522, args.max_len, args.compute_dtype)
    f_params = train.init_params(f_enc, f_cfg, jax.random.key(0))['encoder']
    l_params = train.init_params(l_enc, l_cfg, jax.random.key(0))['encoder']
    table_fn = jax.jit(lambda p: f_enc.apply({'params': p}, method='embedding_table'))
    block(table_fn(f_params))
    t = time.perf_counter()
    table = block(table_fn(f_params))
    table_s = time.perf_counter() - t
    enc_table = jax.jit(lambda p, tb, i, m: f_enc.apply({'params': p}, i, m, embedding_table=tb))
    enc_fly = jax.jit(lambda p, i, m: f_enc.apply({'params': p}, i, m))
    enc_learned = jax.jit(lambda p, i, m: l_enc.apply({'params': p}, i, m))
    # The learned baseline is served the same way as in training: lookup + RMSNorm.
    for padding, bl in batches.items():
      if padding == 'padded' and args.inference_padded_batches <= 0:
        continue
      bl = bl if padding == 'bucketed' else bl[:max(args.inference_padded_batches, 1)]
      bl = [jax.device_put(b) for b in bl]

      def run(fn, *pre):
        def r(i):
          ids, mask = bl[i]
          t = time.perf_counter()
          block(fn(*pre, ids, mask))
          return time.perf_counter() - t
        return r
      first = {}
      for i, (ids, _) in enumerate(bl):
        first.setdefault(ids.shape, i)
      times = interleaved({'fourier_table': run(enc_table, f_params, table),
                           'fourier_on_the_fly': run(enc_fly, f_params),
                           'learned': run(enc_learned, l_params)}, len(bl),
                          warmup_items=sorted(first.values()))
      n_sent = bsz * len(bl)
      row = {'size': size, 'padding': padding, 'batch': bsz, 'batches': len(bl),
             'table_materialise_s': table_s, 'table_bytes': int(table.size * table.dtype.itemsize)}
      for k, v in times.items():
        row[f'{k}_sentences_per_s'] = n_sent / float(sum(v))
        row[f'{k}_median_batch_s'] = med(v)
      row['table_over_learned'] = row['fourier_table_sentences_per_s'] / row['learned_sentences_per_s']
      row['table_over_on_the_fly'] = (row['fourier_table_sentences_per_s'] /
                                      row['fourier_on_the_fly_sentences_per_s'])
      row['median_of_ratios_table_over_learned'] = med(
          np.asarray(times['learned']) / np.asarray(times['fourier_table']))
      ref = OFFICIAL_ENCODE_SENTENCES_PER_S.get(f'fourier_{size}')
      if ref and padding == 'padded':
        row['official_sentences_per_s'] = ref
      rows.append(row)
      log(f'inference {size} {padding}: table {row["fourier_table_sentences_per_s"]:.0f}  fly '
          f'{row["fourier_on_the_fly_sentences_per_s"]:.0f}  learned {row["learned_sentences_per_s"]:.0f}')
  return rows


def _random_batch(bsz: int, la: int, lb: int, vocab: int, seed: int = 0) -> dict:
  rng = np.random.default_rng(seed)
  out = {}
  for side, length in (('a', la), ('b', lb)):
    out[f'{side}_ids'] = rng.integers(1, vocab, (bsz, length)).astype(np.int32)
    out[f'{side}_mask'] = np.ones((bsz, length), np.int32)
  return out


def section_vocab(args) -> list[dict]:
  """Fourier vs learned 1x256 step time and memory as the vocabulary grows."""
  rows = []
  size = '1x256'
  for vocab in args.vocab_sizes:
    batch = jax.device_put(_random_batch(args.batch_size, args.scaling_len, args.scaling_len,
                                         vocab))
    trainers = {e: Trainer(table1_config(f'{e}_{size}', args.quick, vocab), args.compute_dtype,
                           args.rng_impl) for e in ('fourier', 'learned')}
    times = interleaved({n: (lambda i, t=t: t.step(batch)) for n, t in trainers.items()},
                        args.scaling_steps, warmup=1)
    for e, t in trainers.items():
      mem = next(iter(t.memory.values()), {})
      rows.append({'vocab_size': vocab, 'embedding': e, 'num_params': t.num_params,
                   'step_time_s_median': med(times[e]), 'step_times_s': times[e],
                   'peak_memory_bytes': mem.get('peak_estimate', 0), 'temp_bytes': mem.get('temp', 0),
                   'state_bytes': t.state_bytes})
    log(f'vocab {vocab}: ' + '  '.join(f'{r["embedding"]} {r["step_time_s_median"]:.3f}s '
                                      f'{r["peak_memory_bytes"] / 2**20:.0f}MiB' for r in rows[-2:]))
    del trainers
  return rows


def section_shapes(args) -> list[dict]:
  """Step time as the batch (at ``scaling_len``) and the padded length (at batch 128) grow."""
  rows = []
  points = [('batch', b, args.scaling_len) for b in args.scaling_batches] + [
      ('max_len', args.batch_size, n) for n in args.scaling_lens]
  for embedding in args.shape_models:
    trainer = Trainer(table1_config(f'{embedding}_1x256', args.quick), args.compute_dtype,
                      args.rng_impl)
    for kind, bsz, length in points:
      batch = jax.device_put(_random_batch(bsz, length, length, 30522))
      times = interleaved({'x': lambda i: trainer.step(batch)}, args.scaling_steps, warmup=1)
      t = med(times['x'])
      rows.append({'embedding': embedding, 'varying': kind, 'batch_pairs': bsz, 'length': length,
                   'step_time_s_median': t, 'pairs_per_s': bsz / t,
                   'tokens_per_s': 2 * bsz * length / t,
                   'peak_memory_bytes': trainer.memory[Trainer.shape_of(batch)].get('peak_estimate', 0)})
      log(f'shapes {embedding} {kind} B={bsz} L={length}: {t:.3f}s')
  return rows


# ----------------------------------------------------------------- output
def log(msg: str) -> None:
  print(f'[{time.strftime("%H:%M:%S")}] {msg}', flush=True)


def gib(b) -> str:
  return f'{b / 2**20:.0f} MiB'


def targets(results: dict) -> list[dict]:
  """Each issue-7 target with its measured ratio and whether it is met."""
  out = []
  train_rows = results.get('train', [])
  for r in train_rows:
    if r['config'].startswith('ratio_'):
      out.append({'target': f'Fourier step <= 0.8 x learned ({r["size"]}, {r["padding"]})',
                  'value': r['fourier_over_learned_total'], 'threshold': 0.8,
                  'met': r['fourier_over_learned_total'] <= 0.8})
  for size, b in results.get('breakdown', {}).items():
    share = b['shares_of_fourier_step']['basis forward (jitted alone; it has no backward)']
    out.append({'target': f'basis < 2% of a Fourier step ({size}, shape {b["shape"]})',
                'value': share, 'threshold': 0.02, 'met': share < 0.02})
    ops, alone = b['hlo_ops_train_step_fourier_basis'], b['hlo_ops_basis_only']
    # The step encodes two sides (a and b): each must compute its basis once.
    out.append({'target': f'no recomputation of the basis sin/cos in the compiled step ({size})',
                'value': f'{ops["sine"]} sine + {ops["cosine"]} cosine for 2 sides '
                         f'(basis alone: {alone["sine"]} + {alone["cosine"]})',
                'threshold': '2 x basis-alone count',
                'met': ops['sine'] == 2 * alone['sine'] and ops['cosine'] == 2 * alone['cosine']})
    off = b.get('hlo_ops_train_step_fourier_basis_barrier_off')
    if off and off != ops:
      out.append({'target': f'same, with the optimization_barrier variant off ({size})',
                  'value': f'{off["sine"]} sine + {off["cosine"]} cosine for 2 sides',
                  'threshold': '2 x basis-alone count',
                  'met': off['sine'] == 2 * alone['sine'] and off['cosine'] == 2 * alone['cosine']})
  for r in train_rows:
    if r['config'].startswith('ratio_') or r['padding'] != 'bucketed':
      continue
    thr = 0.5 if r['size'].endswith('512') else 0.35
    out.append({'target': f'MFU >= {thr:.0%} ({r["config"]}, bucketed, computed tokens)',
                'value': r['mfu_computed'], 'threshold': thr, 'met': r['mfu_computed'] >= thr})
  for r in results.get('inference', []):
    out.append({'target': f'table inference >= learned ({r["size"]}, {r["padding"]})',
                'value': r['table_over_learned'], 'threshold': 1.0,
                'met': r['table_over_learned'] >= 1.0})
  bucketed = {r['config']: r for r in train_rows if r.get('padding') == 'bucketed'}
  padded = {r['config']: r for r in train_rows if r.get('padding') == 'padded'}
  for name, ref in OFFICIAL_PAIRS_PER_S.items():
    if name in bucketed:
      v = bucketed[name]['pairs_per_s'] / ref
      ffn = 'FFN computed, official drops it' if name.startswith('fourier') else 'same model'
      out.append({'target': f'>= 3x official pairs/s ({name}; ours: real data bucketed, {ffn})',
                  'value': v, 'threshold': 3.0, 'met': v >= 3.0})
    for key, what in ((name, 'FFN computed' if name.startswith('fourier') else 'same model'),
                      (name + '_dropffn', 'FFN output dropped as in the official code')):
      if key in padded:
        v = padded[key]['pairs_per_s'] / ref
        out.append({'target': f'padded-128 pairs/s / official ({name}; {what})',
                    'value': v, 'threshold': 'info', 'met': None})
  return out


def vocab_ratio(pair: dict) -> float:
  """Learned / Fourier step time at one V: median of the interleaved per-step ratios."""
  return med(np.asarray(pair['learned']['step_times_s']) / np.asarray(pair['fourier']['step_times_s']))


def fmt(v, digits=3):
  if isinstance(v, float):
    return f'{v:.{digits}g}' if abs(v) < 1e4 else f'{v:.0f}'
  return str(v)


def markdown(results: dict) -> str:
  meta = results.get('meta', {})
  lines = ['# Benchmark: training step, inference, scaling (issue 7)', '',
           f'Generated by `python -m experiments.benchmark {meta.get("argv", "")}` on '
           f'{meta.get("date", "?")}: JAX {meta.get("jax", "?")}, backend {meta.get("backend", "?")}, '
           f'{meta.get("devices", "?")}, {meta.get("cpu_count", "?")} CPU cores, compute dtype '
           f'{meta.get("compute_dtype", "?")}. The machine was shared with a concurrent training '
           'run, so absolute numbers are noisy; comparisons are ratios measured in one run with the '
           'A/B measurements interleaved step by step. Medians throughout.', '']
  peak = meta.get('matmul_peak', {})
  if peak:
    lines += [f'Measured {peak.get("dtype", "float32")} matmul peak ({peak.get("n")}x{peak.get("n")} jnp.dot, median of '
              f'all runs): **{peak.get("flops", 0) / 1e9:.1f} GFLOP/s** '
              f'(individual medians, start and end of each run: '
              f'{", ".join(f"{v / 1e9:.1f}" for v in peak.get("samples", []))}). The MFU of each '
              'training row uses the peak of the run that timed it (column "peak"); "MFU vs best '
              'peak" divides by the highest peak measured in any run (a conservative MFU).', '']
  data = results.get('data')
  if data:
    lines += [f'Data: {data["num_pairs"]} local NLI pairs, batch {data["batch_size"]} pairs, '
              f'buckets {data["lengths"]}; padding efficiency {data["padding_efficiency_epoch"]:.3f} over '
              f'an epoch, {data["padding_efficiency_measured"]:.3f} over the measured steps '
              f'(shapes {data["shapes_measured"]}). Shape histogram of an epoch: '
              f'{data["shape_histogram_epoch"]}.', '']
  t = [r for r in results.get('train', []) if not r['config'].startswith('ratio_')]
  if t:
    lines += ['## Training step (real `make_train_step`, jit, donated state, AdamW, 128 pairs)', '',
              'MFU: analytic matmul FLOPs (dense layers + attention matmuls, forward x 3) per second '
              '/ measured matmul peak; "computed" counts padded tokens (what the hardware does), '
              '"real" counts real tokens only (attention over real keys).', '',
              '| config | padding | params | steps | median step s | pairs/s | real tok/s | pad eff | '
              'GFLOP/s | peak GFLOP/s | MFU computed | MFU real | MFU vs best peak | peak mem | '
              'official pairs/s |',
              '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|']
    best = max(peak.get('samples', [0]) or [0])
    for r in t:
      lines.append(f'| {r["config"]} | {r["padding"]} | {r["num_params"] / 1e6:.2f}M | {r["steps"]} | '
                   f'{r["step_time_s_median"]:.3f} | {r["pairs_per_s"]:.1f} | '
                   f'{r["real_tokens_per_s"]:.0f} | {r["padding_efficiency"]:.3f} | '
                   f'{r["achieved_gflops_computed"]:.1f} | '
                   f'{r.get("matmul_peak_flops", float("nan")) / 1e9:.1f} | {r["mfu_computed"]:.2f} | '
                   f'{r["mfu_real"]:.2f} | '
                   f'{r["achieved_gflops_computed"] * 1e9 / best if best else float("nan"):.2f} | '
                   f'{gib(r["peak_memory_bytes"])} | '
                   f'{r.get("official_pairs_per_s", "")} |')
    ratios = [r for r in results.get('train', []) if r['config'].startswith('ratio_')]
    if ratios:
      lines += ['', '| size | padding | Fourier / learned step time (total) | median of per-step ratios |',
                '|---|---|---|---|']
      for r in ratios:
        lines.append(f'| {r["size"]} | {r["padding"]} | {r["fourier_over_learned_total"]:.3f} | '
                     f'{r["fourier_over_learned_median_of_ratios"]:.3f} |')
    lines.append('')
  for size, b in results.get('breakdown', {}).items():
    lines += [f'## Breakdown {size} (shape a x b = {b["shape"][0]} / {b["shape"][1]}, '
              f'{b["reps"]} interleaved reps)', '',
              '| full-step variant | median s |', '|---|---|']
    lines += [f'| {k} | {v:.3f} |' for k, v in b['step_s_median'].items()]
    lines += ['', '| sub-function (jitted alone, scaled to the whole batch) | median s |', '|---|---|']
    lines += [f'| {k} | {v:.4f} |' for k, v in b['sub_s_median'].items()]
    lines += ['', '| share of the Fourier step | |', '|---|---|']
    lines += [f'| {k} | {v:.1%} |' for k, v in b['shares_of_fourier_step'].items()]
    lines += ['', '| share of the learned step | |', '|---|---|']
    lines += [f'| {k} | {v:.1%} |' for k, v in b['shares_of_learned_step'].items()]
    lines += ['', f'Fourier / learned: {b["fourier_over_learned"]:.3f}; vs learned without dropout '
              f'{b["fourier_over_learned_no_dropout"]:.3f}; vs learned with unsafe_rbg dropout '
              f'{b["fourier_over_learned_unsafe_rbg"]:.3f}.', '',
              f'Basis barrier (pete_jax/embeddings.py): step time with / without '
              f'{b.get("barrier_on_over_off_step", float("nan")):.3f}; Fourier embedding fwd+bwd alone '
              f'with / without {b.get("barrier_on_over_off_embed_fwd_bwd", float("nan")):.3f}.', '',
              f'Compiled HLO sin/cos instructions: Fourier step {b["hlo_ops_train_step_fourier"]}, of which '
              f'basis {b["hlo_ops_train_step_fourier_basis"]} (without the barrier: '
              f'{b.get("hlo_ops_train_step_fourier_basis_barrier_off", "-")}) and RoPE '
              f'{b["hlo_ops_train_step_fourier_rope"]}; the basis alone {b["hlo_ops_basis_only"]}; '
              f'learned step {b["hlo_ops_train_step_learned"]} (all RoPE). '
              f'Threefry mentions in the learned step: {b["hlo_threefry_calls_learned"]}.', '']
  inf = results.get('inference', [])
  if inf:
    lines += ['## Inference (encoding, `SentenceEncoder.apply`, deterministic)', '',
              '| size | padding | batch | table s/s | on-the-fly s/s | learned s/s | table / learned | '
              'table / on-the-fly | table build s | official s/s |', '|---|---|---|---|---|---|---|---|---|---|']
    for r in inf:
      lines.append(f'| {r["size"]} | {r["padding"]} | {r["batch"]} x {r["batches"]} | '
                   f'{r["fourier_table_sentences_per_s"]:.0f} | {r["fourier_on_the_fly_sentences_per_s"]:.0f} | '
                   f'{r["learned_sentences_per_s"]:.0f} | {r["table_over_learned"]:.3f} | '
                   f'{r["table_over_on_the_fly"]:.3f} | {r["table_materialise_s"]:.3f} | '
                   f'{r.get("official_sentences_per_s", "")} |')
    lines.append('')
  voc = results.get('vocab', [])
  if voc:
    lines += ['## Vocabulary scaling (1x256, random ids, batch 128, both sides length '
              f'{results.get("meta", {}).get("scaling_len", "?")})', '',
              '| V | embedding | params | median step s | peak mem (XLA) | train state | '
              'learned / Fourier step (median of interleaved per-step ratios) |',
              '|---|---|---|---|---|---|---|']
    by_v = {}
    for r in voc:
      by_v.setdefault(r['vocab_size'], {})[r['embedding']] = r
    for r in voc:
      pair = by_v[r['vocab_size']]
      ratio = ''
      if r['embedding'] == 'learned' and 'fourier' in pair:
        ratio = f'{vocab_ratio(pair):.3f}'
      lines.append(f'| {r["vocab_size"]} | {r["embedding"]} | {r["num_params"] / 1e6:.2f}M | '
                   f'{r["step_time_s_median"]:.3f} | {gib(r["peak_memory_bytes"])} | '
                   f'{gib(r["state_bytes"])} | {ratio} |')
    if os.path.exists(os.path.join(results.get('_out_dir', ''), 'benchmark_vocab.png')):
      lines += ['', '![vocab scaling](benchmark_vocab.png)']
    lines.append('')
  sh = results.get('shapes', [])
  if sh:
    lines += ['## Batch and length scaling (1x256, random ids, all tokens real)', '',
              '| embedding | varying | batch | length | median step s | pairs/s | tokens/s | peak mem |',
              '|---|---|---|---|---|---|---|---|']
    for r in sh:
      lines.append(f'| {r["embedding"]} | {r["varying"]} | {r["batch_pairs"]} | {r["length"]} | '
                   f'{r["step_time_s_median"]:.3f} | {r["pairs_per_s"]:.1f} | {r["tokens_per_s"]:.0f} | '
                   f'{gib(r["peak_memory_bytes"])} |')
    lines.append('')
  tg = targets(results)
  if tg:
    lines += ['## Targets', '', '| target | measured | threshold | met |', '|---|---|---|---|']
    for r in tg:
      met = {True: 'yes', False: '**no**', None: '-'}[r['met']]
      lines.append(f'| {r["target"]} | {fmt(r["value"])} | {r["threshold"]} | {met} |')
    lines.append('')
  lines += ['## Running it', '',
            '* CPU (this file): `python -m experiments.benchmark` (all sections; about an hour on 2 '
            'cores), or `--sections=train,inference --configs=fourier_1x256,learned_1x256`. Each '
            'section merges into the JSON; `--fresh` starts a new one.',
            '* GPU / TPU: the same command; add `--compute_dtype=bfloat16` for bf16 activations '
            '(parameters and the optimizer stay fp32, the loss is computed in fp32), and '
            '`--padded_all` to pad every config. The matmul peak is then the bf16 `jnp.dot` rate. '
            'Use more steps (`--steps=50`) since steps are short. '
            'On CPU bf16 is not useful: XLA CPU has no fast bf16 matmul path on this '
            'machine (no AVX512-BF16/AMX), so it only adds converts.',
            '* Tests: `python -m pytest -q tests/test_benchmark.py` runs `--quick` (tiny model, 2 steps) '
            'and checks the structure only; timings are never asserted.', '']
  return '\n'.join(lines)


def write_outputs(results: dict, out_dir: str) -> None:
  os.makedirs(out_dir, exist_ok=True)
  results = dict(results)
  results['targets'] = targets(results)
  with open(os.path.join(out_dir, 'benchmark.json'), 'w', encoding='utf-8') as f:
    json.dump({k: v for k, v in results.items() if not k.startswith('_')}, f, indent=1)
  _plot_vocab(results, out_dir)
  results['_out_dir'] = out_dir
  with open(os.path.join(out_dir, 'benchmark.md'), 'w', encoding='utf-8') as f:
    f.write(markdown(results))


def _plot_vocab(results: dict, out_dir: str) -> None:
  voc = results.get('vocab', [])
  if len({r['vocab_size'] for r in voc}) < 2:
    return
  try:
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  except ImportError:
    return
  fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
  for e in ('fourier', 'learned'):
    rs = sorted((r for r in voc if r['embedding'] == e), key=lambda r: r['vocab_size'])
    v = [r['vocab_size'] / 1000 for r in rs]
    axes[0].plot(v, [r['step_time_s_median'] for r in rs], 'o-', label=e)
    axes[2].plot(v, [r['peak_memory_bytes'] / 2**20 for r in rs], 'o-', label=e)
  by_v = {}
  for r in voc:
    by_v.setdefault(r['vocab_size'], {})[r['embedding']] = r
  vs = sorted(v for v, pair in by_v.items() if len(pair) == 2)
  axes[1].plot([v / 1000 for v in vs], [vocab_ratio(by_v[v]) for v in vs], 'o-', color='C2')
  axes[1].axhline(1.0, color='gray', lw=0.5)
  axes[0].set(xlabel='vocabulary (k)', ylabel='step time (s)', title='median step (shared machine)')
  axes[1].set(xlabel='vocabulary (k)', ylabel='learned / Fourier',
              title='step-time ratio (interleaved)')
  axes[2].set(xlabel='vocabulary (k)', ylabel='MiB', title='peak memory (XLA estimate)')
  for a in axes:
    a.set_xscale('log', base=2)
  axes[0].legend()
  axes[2].legend()
  fig.tight_layout()
  fig.savefig(os.path.join(out_dir, 'benchmark_vocab.png'), dpi=100)
  plt.close(fig)


# ------------------------------------------------------------------- main
def parse_args(argv: Sequence[str]) -> argparse.Namespace:
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  csv = lambda s: [v for v in s.split(',') if v]
  ints = lambda s: [int(v) for v in s.split(',') if v]
  p.add_argument('--configs', type=csv, default=list(TABLE1))
  p.add_argument('--sections', type=csv, default=list(SECTIONS))
  p.add_argument('--steps', type=int, default=10, help='timed steps, real bucketed batches')
  p.add_argument('--padded_steps', type=int, default=3, help='timed steps, padded to max_len')
  p.add_argument('--padded_all', action='store_true',
                 help='pad every config (default: those with an official reference)')
  p.add_argument('--paddings', type=csv, default=['bucketed', 'padded'])
  p.add_argument('--drop_ffn_output', action='store_true',
                 help="Fourier models with the official code's dropped FFN output (like for like)")
  p.add_argument('--start_step', type=int, default=0)
  p.add_argument('--max_len', type=int, default=128)
  p.add_argument('--batch_size', type=int, default=128)
  p.add_argument('--compute_dtype', default='float32')
  p.add_argument('--rng_impl', default=None, help="dropout key impl: threefry2x32, rbg, unsafe_rbg")
  p.add_argument('--peak_n', type=int, default=2048)
  p.add_argument('--breakdown_sizes', type=csv, default=['1x256', '2x512'])
  p.add_argument('--breakdown_shape', type=ints, default=[32, 16])
  p.add_argument('--breakdown_reps', type=int, default=5)
  p.add_argument('--inference_sizes', type=csv, default=['1x256', '2x256'])
  p.add_argument('--encode_batch', type=int, default=256)
  p.add_argument('--inference_batches', type=int, default=8)
  p.add_argument('--inference_padded_batches', type=int, default=3)
  p.add_argument('--vocab_sizes', type=ints, default=[30522, 65536, 131072, 262144])
  p.add_argument('--scaling_len', type=int, default=32)
  p.add_argument('--scaling_steps', type=int, default=3)
  p.add_argument('--scaling_batches', type=ints, default=[32, 64, 128, 256])
  p.add_argument('--scaling_lens', type=ints, default=[32, 64, 128])
  p.add_argument('--shape_models', type=csv, default=['fourier', 'learned'])
  p.add_argument('--out_dir', default=os.path.join('experiments', 'results'))
  p.add_argument('--fresh', action='store_true', help='discard the existing JSON')
  p.add_argument('--quick', action='store_true', help='tiny model, 2 steps, small batches (tests)')
  args = p.parse_args(argv)
  bad = [c for c in args.configs if c not in TABLE1] + [s for s in args.sections if s not in SECTIONS]
  if bad:
    p.error(f'unknown configs/sections {bad}; configs: {TABLE1}; sections: {SECTIONS}')
  if args.quick:
    args.steps, args.padded_steps, args.breakdown_reps, args.scaling_steps = 2, 1, 2, 1
    args.batch_size, args.encode_batch, args.inference_batches = 8, 8, 2
    args.inference_padded_batches = 1
    args.configs = [c for c in args.configs if c.endswith('1x256')] or ['fourier_1x256']
    args.breakdown_sizes, args.inference_sizes = ['1x256'], ['1x256']
    args.vocab_sizes = [30522, 65536]
    args.scaling_batches, args.scaling_lens, args.scaling_len = [4, 8], [16, 32], 16
    args.breakdown_shape = [16, 16]
    args.shape_models = ['fourier']
    args.peak_n = 256
  return args


def main(argv: Sequence[str]) -> dict:
  args = parse_args(argv)
  json_path = os.path.join(args.out_dir, 'benchmark.json')
  results: dict = {}
  if os.path.exists(json_path) and not args.fresh:
    with open(json_path, encoding='utf-8') as f:
      results = json.load(f)
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
    keep = [r for r in results.get('train', [])
            if (r['config'], r['padding']) not in {(x['config'], x['padding']) for x in new}]
    results['train'] = keep + new
  if 'breakdown' in args.sections:
    results.setdefault('breakdown', {}).update(section_breakdown(args, batches))
  if 'inference' in args.sections:
    new = section_inference(args, extra['sentences'])
    keep = [r for r in results.get('inference', [])
            if (r['size'], r['padding']) not in {(x['size'], x['padding']) for x in new}]
    results['inference'] = keep + new
  if 'vocab' in args.sections:
    results['vocab'] = section_vocab(args)
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
  results['meta'] = {
      'date': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
      'argv': ' '.join(argv), 'jax': jax.__version__, 'backend': jax.default_backend(),
      'devices': str(jax.devices()[0].device_kind), 'cpu_count': os.cpu_count(),
      'platform': platform.platform(), 'compute_dtype': args.compute_dtype,
      'rng_impl': args.rng_impl or 'default (threefry2x32)', 'quick': args.quick,
      'scaling_len': args.scaling_len,
      'matmul_peak': {'n': args.peak_n, 'dtype': args.compute_dtype, 'flops': peak_all,
                      'samples': samples, 'note': 'MFU of each training row uses the peak '
                      'measured at the start and end of the run that timed it (matmul_peak_flops)'},
      'max_rss_bytes': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
      'official_pairs_per_s': OFFICIAL_PAIRS_PER_S,
      'official_encode_sentences_per_s': OFFICIAL_ENCODE_SENTENCES_PER_S,
  }
  write_outputs(results, args.out_dir)
  log(f'wrote {args.out_dir}/benchmark.json and benchmark.md')
  return results


if __name__ == '__main__':
  main(sys.argv[1:])
