"""The ``ops`` section: where pete_jax's step loses to the PyTorch peer, one operation at a time.

Each operation of a Table 1 model's step, at the padded 128 shape, is timed as XLA
compiles it (``jax.jit``) and as the PyTorch peer runs it (eager, the same threads),
interleaved. The same JAX operations are also timed in a child process pinned to one
core: the ratio says whether XLA:CPU runs the operation on both cores.
"""

import json
import os
import subprocess
import sys
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from experiments.bench.batches import table1_config
from experiments.bench.measure import interleaved, log, med
from pete_jax.encoder import EncoderConfig


def op_shapes(config_name: str, batch_pairs: int, length: int, quick: bool = False) -> dict:
  """The operands' sizes in one step of ``config_name`` with both sides padded to ``length``."""
  config = table1_config(config_name, quick)
  c = EncoderConfig.from_config(config.model, config.model.vocab_size, length)
  sentences = 2 * batch_pairs
  return {
    'sentences': sentences,
    'length': length,
    'tokens': sentences * length,
    'd': c.d_model,
    'heads': c.num_heads,
    'head_dim': c.d_model // c.num_heads,
    'ffn_hidden': c.ffn_hidden,
  }


def _jax_ops(s: dict) -> dict[str, tuple[Callable, tuple]]:
  """name -> (jitted function, operands) for the JAX side."""
  rng = np.random.default_rng(0)
  t, d, h, n, length = s['tokens'], s['d'], s['ffn_hidden'], s['sentences'], s['length']
  heads, hd = s['heads'], s['head_dim']
  x = jnp.asarray(rng.standard_normal((t, d), np.float32))
  w = jnp.asarray(rng.standard_normal((d, 2 * h), np.float32) * 0.05)
  g = jnp.asarray(rng.standard_normal((t, h), np.float32))
  q = jnp.asarray(rng.standard_normal((n, length, heads, hd), np.float32))
  scores = jnp.asarray(rng.standard_normal((n, heads, length, length), np.float32))

  def attention(q, k, v):  # the core of layers.MultiHeadAttention (all keys real)
    logits = jnp.einsum('bqhd,bkhd->bhqk', q, k) / np.sqrt(hd).astype(np.float32)
    return jnp.einsum('bhqk,bkhd->bqhd', jax.nn.softmax(logits, axis=-1), v)

  def attention_grad(q, k, v):
    return jax.grad(lambda *a: attention(*a).sum(), argnums=(0, 1, 2))(q, k, v)

  return {
    'dense x @ W_in (FFN)': (jax.jit(jnp.dot), (x, w)),
    'GELU (erf)': (jax.jit(lambda g: jax.nn.gelu(g, approximate=False)), (g,)),
    'softmax': (jax.jit(lambda s: jax.nn.softmax(s, axis=-1)), (scores,)),
    'attention scores (batched dot)': (
      jax.jit(lambda q, k: jnp.einsum('bqhd,bkhd->bhqk', q, k)),
      (q, q),
    ),
    'attention forward': (jax.jit(attention), (q, q, q)),
    'attention forward + backward': (jax.jit(attention_grad), (q, q, q)),
  }


def _torch_ops(s: dict) -> dict[str, tuple[Callable, tuple]]:
  """The same operations as the PyTorch peer runs them (``F.scaled_dot_product_attention``)."""
  import torch  # pylint: disable=import-outside-toplevel
  import torch.nn.functional as F  # pylint: disable=import-outside-toplevel

  gen = torch.Generator().manual_seed(0)
  rand = lambda *shape: torch.randn(*shape, generator=gen)
  t, d, h, n, length = s['tokens'], s['d'], s['ffn_hidden'], s['sentences'], s['length']
  heads, hd = s['heads'], s['head_dim']
  q = rand(n, heads, length, hd)

  def attention_grad(q, k, v):
    q, k, v = (u.detach().requires_grad_() for u in (q, k, v))
    F.scaled_dot_product_attention(q, k, v).sum().backward()
    return q.grad, k.grad, v.grad

  return {
    'dense x @ W_in (FFN)': (torch.mm, (rand(t, d), rand(d, 2 * h) * 0.05)),
    'GELU (erf)': (F.gelu, (rand(t, h),)),
    'softmax': (lambda s: torch.softmax(s, dim=-1), (rand(n, heads, length, length),)),
    'attention scores (batched dot)': (lambda q, k: q @ k.transpose(-1, -2), (q, q)),
    'attention forward': (F.scaled_dot_product_attention, (q, q, q)),
    'attention forward + backward': (attention_grad, (q, q, q)),
  }


def _timer(fn: Callable, operands: tuple, is_jax: bool) -> Callable[[int], float]:
  def run(_):
    start = time.perf_counter()
    out = fn(*operands)
    if is_jax:
      jax.block_until_ready(out)
    return time.perf_counter() - start

  return run


def time_jax_ops(shapes: dict, reps: int) -> dict[str, float]:
  """Median seconds of each JAX operation (after one compiling call)."""
  runners = {k: _timer(f, a, True) for k, (f, a) in _jax_ops(shapes).items()}
  return {k: med(v) for k, v in interleaved(runners, reps, warmup=1).items()}


def _one_core_times(shapes: dict, reps: int) -> dict[str, float] | None:
  """The JAX times in a child process allowed on one core (None where affinity is unsupported)."""
  if not hasattr(os, 'sched_setaffinity') or len(os.sched_getaffinity(0)) < 2:
    return None
  code = (
    'import os, sys, json; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); '
    'from experiments.bench.op_sections import time_jax_ops; '
    'print(json.dumps(time_jax_ops(json.loads(sys.argv[1]), int(sys.argv[2]))))'
  )
  out = subprocess.run(
    [sys.executable, '-c', code, json.dumps(shapes), str(reps)],
    check=True,
    capture_output=True,
    text=True,
    cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
  )
  return json.loads(out.stdout.strip().splitlines()[-1])


def section_ops(args) -> dict:
  """JAX vs PyTorch per operation, and JAX on one core vs all, for ``args.ops_config``."""
  shapes = op_shapes(args.ops_config, args.batch_size, args.max_len, args.quick)
  log(f'ops {args.ops_config} at {shapes}')
  jax_ops = _jax_ops(shapes)
  runners = {f'jax {k}': _timer(f, a, True) for k, (f, a) in jax_ops.items()}
  if args.peer:
    runners.update({f'torch {k}': _timer(f, a, False) for k, (f, a) in _torch_ops(shapes).items()})
  # settle=1: no timed call directly follows the other framework's (see ``interleaved``).
  times = interleaved(runners, args.ops_reps, warmup=1, settle=1 if args.peer else 0)
  one_core = _one_core_times(shapes, args.ops_reps)
  rows = []
  for name in jax_ops:
    row = {'op': name, 'jax_s': med(times[f'jax {name}'])}
    if f'torch {name}' in times:
      row['torch_s'] = med(times[f'torch {name}'])
      row['torch_over_jax'] = row['torch_s'] / row['jax_s']
    if one_core:
      row['jax_one_core_s'] = one_core[name]
      row['two_core_speedup'] = one_core[name] / row['jax_s']
    rows.append(row)
    log(f'  {name:32s} ' + '  '.join(f'{k} {v:.4g}' for k, v in row.items() if k != 'op'))
  return {'config': args.ops_config, 'shapes': shapes, 'reps': args.ops_reps, 'rows': rows}
