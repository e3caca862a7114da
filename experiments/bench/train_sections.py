"""The training-step sections: ``train`` (every Table 1 model's real step, Fourier and
learned and their PyTorch peers interleaved, bucketed and padded), ``loop`` (the
training loop against its bare step) and ``breakdown`` (where a step's time goes:
ablated full steps, jitted sub-functions, sin/cos counts of the compiled HLO).
"""

import json
import re
import tempfile
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from experiments.bench.batches import (
  DROP_FFN,
  PEER,
  computed_tokens,
  fixed_batch,
  load_training_batches,
  pad_to,
  real_tokens,
  table1_config,
)
from experiments.bench.flops import step_flops
from experiments.bench.measure import Trainer, block, count_ops, interleaved, log, med
from pete_jax import train
from pete_jax.embeddings import FourierEmbed, LearnedEmbed
from pete_jax.layers import GeGLU, MultiHeadAttention

QUICK_VARIANTS = ('fourier', 'learned', 'learned_no_dropout')


def section_train(args, batches: list, peak: float) -> list[dict]:
  """Every model of a size (Fourier, Fourier with the FFN output dropped, learned), in
  pete_jax and in the PyTorch peer, interleaved step by step on the same batches,
  bucketed and padded to ``args.max_len``."""
  rows = []
  sizes = list(dict.fromkeys(name.split('_')[1] for name in args.configs))
  for size in sizes:
    names = [n for n in args.configs if n.endswith('_' + size)]
    for padding in args.paddings:
      n_steps = args.steps if padding == 'bucketed' else args.padded_steps
      if n_steps <= 0:
        continue
      steps = batches[:n_steps]
      if padding == 'padded':
        steps = [pad_to(b, args.max_len) for b in steps]
      trainers = _trainers(args, names)
      peers = _peers(args, trainers)
      on_device = [jax.device_put(b) for b in steps]
      runners = {n: (lambda i, t=t: t.step(on_device[i])) for n, t in trainers.items()}
      if peers:
        from experiments.bench.torch_peer import to_torch  # pylint: disable=import-outside-toplevel

        torch_steps = [to_torch(b) for b in steps]
        runners.update({n: (lambda i, t=t: t.step(torch_steps[i])) for n, t in peers.items()})
      # Warm-up: one untimed step per distinct shape (compiles it), for every model.
      first_of_shape = {}
      for i, b in enumerate(steps):
        first_of_shape.setdefault(Trainer.shape_of(b), i)
      log(
        f'train {size} {padding}: {list(runners)}, {n_steps} steps, shapes {list(first_of_shape)}'
      )
      times = interleaved(
        runners, n_steps, warmup_items=sorted(first_of_shape.values()), settle=1 if peers else 0
      )
      for n in runners:
        jax_name = n.removeprefix(PEER)
        row = _train_row(n, trainers[jax_name], peers.get(n), padding, size, steps, times[n], peak)
        rows.append(row)
        log(
          f'  {n:21s} {padding:8s} median {row["step_time_s_median"]:.3f} s  '
          f'{row["pairs_per_s"]:.1f} pairs/s  MFU {row["mfu_computed"]:.2f}'
        )
      for n in trainers:
        if PEER + n in times:
          j, p = np.asarray(times[n]), np.asarray(times[PEER + n])
          rows.append(
            {
              'config': 'vs_peer_' + n,
              'padding': padding,
              'size': size,
              'peer_over_jax_median_of_ratios': med(p / j),
              'peer_over_jax_total': float(p.sum() / j.sum()),
            }
          )
      if 'fourier_' + size in times and 'learned_' + size in times:
        f, lt = np.asarray(times['fourier_' + size]), np.asarray(times['learned_' + size])
        rows.append(
          {
            'config': 'ratio_' + size,
            'padding': padding,
            'size': size,
            'fourier_over_learned_median_of_ratios': med(f / lt),
            'fourier_over_learned_total': float(f.sum() / lt.sum()),
          }
        )
      del trainers, peers
  return rows


def _train_row(name, t: Trainer, peer, padding, size, steps, times, peak) -> dict:
  """One model's timing row; ``peer``: its PyTorch trainer (then ``t`` is the JAX twin)."""
  n_steps, total = len(steps), float(sum(times))
  flops_c = sum(step_flops(t.model, b, padded=True) for b in steps)
  flops_r = sum(step_flops(t.model, b, padded=False) for b in steps)
  row = {
    'config': name,
    'framework': 'pytorch' if peer else 'jax',
    'padding': padding,
    'size': size,
    'embedding': name.removeprefix(PEER).split('_')[0],
    'num_params': peer.num_params if peer else t.num_params,
    'steps': n_steps,
    'batch_pairs': int(steps[0]['a_ids'].shape[0]),
    'step_time_s_median': med(times),
    'step_times_s': times,
    'pairs_per_s': n_steps * int(steps[0]['a_ids'].shape[0]) / total,
    'real_tokens_per_s': sum(real_tokens(b) for b in steps) / total,
    'computed_tokens_per_s': sum(computed_tokens(b) for b in steps) / total,
    'padding_efficiency': sum(real_tokens(b) for b in steps)
    / sum(computed_tokens(b) for b in steps),
    'flops_per_step_computed': flops_c / n_steps,
    'flops_per_step_real': flops_r / n_steps,
    'mfu_computed': flops_c / total / peak,
    'mfu_real': flops_r / total / peak,
    'achieved_gflops_computed': flops_c / total / 1e9,
  }
  if not peer:
    row['peak_memory_bytes'] = max(
      (m.get('peak_estimate', 0) for m in t.memory.values()), default=0
    )
    row['state_bytes'] = t.state_bytes
    row['compile_s'] = {('x'.join(str(s[1]) for s in k)): v for k, v in t.compile_s.items()}
  return row


def _trainers(args, names: list) -> dict:
  """name -> Trainer. Each Fourier model also runs with its FFN output dropped
  (``<name>_dropffn``): the official code's work (the compiler removes the dead FFN,
  forward and backward)."""
  trainers = {}
  for n in names:
    trainers[n] = Trainer(table1_config(n, args.quick), args.compute_dtype, args.rng_impl)
    if n.startswith('fourier'):
      trainers[n + DROP_FFN] = Trainer(
        table1_config(n, args.quick, drop_ffn_output=True), args.compute_dtype, args.rng_impl
      )
  return trainers


def _peers(args, trainers: dict) -> dict:
  """``torch_<name>`` -> the PyTorch peer of each trainer's model (none without ``args.peer``)."""
  if not args.peer:
    return {}
  from experiments.bench.torch_peer import PeerTrainer  # pylint: disable=import-outside-toplevel

  out = {}
  for n, t in trainers.items():
    c = t.config.train
    out[PEER + n] = PeerTrainer(
      t.encoder.config, c.learning_rate, c.warmup_steps, c.num_steps, c.weight_decay, t.config.seed
    )
  return out


def section_loop(args) -> dict:
  """The training loop (``train_and_evaluate``: data, logging, evaluation, checkpoints)
  against the bare jitted step on the same batches, one after the other.

  The loop's rate is the one it logs (compiling new shapes and evaluating left out);
  the step's is the same batches timed with ``Trainer.step`` after the loop.
  """
  config = table1_config(args.loop_config, args.quick)
  t = config.train
  t.batch_size, t.num_steps = args.batch_size, args.loop_steps
  t.warmup_steps = min(t.warmup_steps, args.loop_steps // 2)
  t.log_every_steps = 10
  t.eval_every_steps = t.checkpoint_every_steps = args.loop_steps
  t.keep_checkpoints = 1
  workdir = tempfile.mkdtemp(prefix='pete_bench_loop_')
  log(f'loop {args.loop_config}: train_and_evaluate, {args.loop_steps} steps in {workdir}')
  start = time.perf_counter()
  metrics = train.train_and_evaluate(config, workdir)
  wall = time.perf_counter() - start
  loop_rate = metrics['pretrain']['pairs_per_second']
  batches, _ = load_training_batches(config, args.loop_steps, 0)
  trainer = Trainer(config, args.compute_dtype, args.rng_impl)
  batches = [jax.device_put(b) for b in batches]
  for b in {Trainer.shape_of(b): b for b in batches}.values():
    trainer.step(b)  # compiles each shape
  times = [trainer.step(b) for b in batches]
  step_rate = len(batches) * args.batch_size / float(sum(times))
  log(f'  loop {loop_rate:.1f} pairs/s, bare step {step_rate:.1f} pairs/s')
  return {
    'config': args.loop_config,
    'steps': args.loop_steps,
    'loop_pairs_per_s': loop_rate,
    'loop_wall_s': wall,
    'step_pairs_per_s': step_rate,
    'step_time_s_median': med(times),
    'loop_over_step': loop_rate / step_rate,
  }


def section_breakdown(args, batches: list) -> dict:
  """Where a step's time goes, per size in ``args.breakdown_sizes`` and batch shape in
  ``args.breakdown_shapes``; keyed ``'<size> at <La>x<Lb>'``."""
  out = {}
  reps = args.breakdown_reps
  for size in args.breakdown_sizes:
    for shape in args.breakdown_shapes:
      out[f'{size} at {shape[0]}x{shape[1]}'] = _breakdown(
        args, size, fixed_batch(batches, shape), reps
      )
  return out


def _breakdown(args, size: str, batch: dict, reps: int) -> dict:
  """The breakdown of one size at one batch shape."""
  batch = jax.device_put(batch)
  variants = {
    'fourier': ('fourier', {}, None),
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
    trainers[vname] = Trainer(config, args.compute_dtype, impl)
  log(f'breakdown {size}: shape {Trainer.shape_of(batch)}')
  times = interleaved(
    {n: (lambda i, t=t: t.step(batch)) for n, t in trainers.items()}, reps, warmup=1
  )
  step_med = {n: med(v) for n, v in times.items()}

  # Sub-functions, interleaved with the full steps of the two models.
  f_t, l_t = trainers['fourier'], trainers['learned']
  sub = _sub_functions(f_t, l_t, batch)
  sub_times = interleaved(sub, reps, warmup=1)
  sub_med = {n: med(v) for n, v in sub_times.items()}
  hlo_step, hlo_learned = f_t.hlo(batch), l_t.hlo(batch)
  ids = jnp.concatenate([batch['a_ids'].reshape(-1), batch['b_ids'].reshape(-1)])
  basis_fn = jax.jit(
    lambda i: f_t.encoder.apply(
      {'params': f_t.state.params['encoder']}, i, method=lambda m, i: m.embed.features_of(i)
    )
  )
  hlo_basis = basis_fn.lower(ids).compile().as_text()
  res = {
    'shape': [list(s) for s in Trainer.shape_of(batch)],
    'reps': reps,
    'step_s_median': step_med,
    'sub_s_median': sub_med,
    'hlo_ops_train_step_fourier': count_ops(hlo_step),
    'hlo_ops_train_step_fourier_basis': count_ops(hlo_step, source='features_of'),
    'hlo_ops_train_step_fourier_rope': count_ops(hlo_step, source='attention'),
    'hlo_ops_basis_only': count_ops(hlo_basis),
    'hlo_ops_train_step_learned': count_ops(hlo_learned),
    'hlo_threefry_calls_learned': len(re.findall(r'threefry', hlo_learned)),
  }
  f, lt = step_med['fourier'], step_med['learned']
  nan = float('nan')
  sm = lambda k: step_med.get(k, nan)
  res['shares_of_fourier_step'] = {
    'basis forward (jitted alone; it has no backward)': sub_med['basis_forward'] / f,
    'embed MLP (step - step without it)': (f - sm('fourier_no_embed_mlp')) / f,
    'FFN fwd+bwd (step - step with FFN dropped)': (f - sm('fourier_drop_ffn_output')) / f,
    'attention fwd+bwd (all blocks, measured alone)': sub_med['attention_fwd_bwd'] / f,
    'FFN fwd+bwd (all blocks, measured alone)': sub_med['ffn_fwd_bwd'] / f,
    'optimizer update (AdamW alone)': sub_med['adamw_fourier'] / f,
  }
  res['shares_of_learned_step'] = {
    'dropout incl. RNG (step - step without dropout)': (lt - sm('learned_no_dropout')) / lt,
    'rbg key instead of threefry (saving)': (lt - sm('learned_rbg')) / lt,
    'unsafe_rbg key instead of threefry (saving)': (lt - sm('learned_unsafe_rbg')) / lt,
    'embedding lookup fwd+bwd (gather + dense [V,d] scatter)': sub_med['learned_embed_fwd_bwd']
    / lt,
    'optimizer update (AdamW alone)': sub_med['adamw_learned'] / lt,
  }
  res['fourier_over_learned'] = f / lt
  res['fourier_over_learned_no_dropout'] = f / sm('learned_no_dropout')
  res['fourier_over_learned_unsafe_rbg'] = f / sm('learned_unsafe_rbg')
  log(f'  breakdown {size}: {json.dumps(step_med)}  {json.dumps(sub_med)}')
  return res


def _sub_functions(f_t: Trainer, l_t: Trainer, batch: dict) -> dict[str, Callable[[int], float]]:
  """Jitted pieces of a step, each returning its seconds."""
  m = f_t.encoder.config
  ids = (
    jnp.concatenate([batch['a_ids'], batch['b_ids'][:, : batch['a_ids'].shape[1]]])
    if (batch['a_ids'].shape[1] == batch['b_ids'].shape[1])
    else batch['a_ids']
  )
  mask = (ids > 0).astype(jnp.int32)
  d = m.d_model
  x = jax.random.normal(jax.random.key(3), ids.shape + (d,), jnp.float32)
  scale = float(sum(b.size for b in (batch['a_ids'], batch['b_ids']))) / ids.size

  def timed(fn, *a):
    fn = jax.jit(fn)

    def run(_):
      t = time.perf_counter()
      block(fn(*a))
      return (time.perf_counter() - t) * scale  # scaled to both sides of the batch

    return run

  fe = FourierEmbed(m.vocab_size, d, mlp=m.embed_mlp)
  fe_params = fe.init(jax.random.key(0), ids[:1, :2])
  le = LearnedEmbed(m.vocab_size, d, dropout_rate=l_t.encoder.config.dropout_rate)
  le_params = le.init(jax.random.key(0), ids[:1, :2])
  attn = MultiHeadAttention(num_heads=m.num_heads)
  attn_params = attn.init(jax.random.key(0), x[:1], mask[:1])
  ffn = GeGLU(hidden=m.ffn_hidden, features=d)
  ffn_params = ffn.init(jax.random.key(0), x[:1])
  layers = m.num_layers

  def fwd_bwd(apply, params, *inputs):
    def loss(p, *inp):
      return jnp.sum(apply(p, *inp) * x)

    return jax.grad(loss, argnums=(0, 1) if inputs and inputs[0].dtype == jnp.float32 else 0)(
      params, *inputs
    )

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
    'basis_forward': timed(
      lambda i: fe.apply(fe_params, i, method=lambda mod, i: mod.features_of(i)), ids
    ),
    'fourier_embed_fwd_bwd': timed(lambda p, i: fwd_bwd(fe.apply, p, i), fe_params, ids),
    'learned_embed_fwd_bwd': timed(lambda p, i: fwd_bwd(learned_embed, p, i), le_params, ids),
    'attention_fwd_bwd': _times(
      timed(lambda p, h: fwd_bwd(lambda pp, hh: attn.apply(pp, hh, mask), p, h), attn_params, x),
      layers,
    ),
    'ffn_fwd_bwd': _times(timed(lambda p, h: fwd_bwd(ffn.apply, p, h), ffn_params, x), layers),
    'adamw_fourier': adamw(f_t),
    'adamw_learned': adamw(l_t),
  }


def _times(run: Callable[[int], float], k: int) -> Callable[[int], float]:
  return lambda i: run(i) * k
