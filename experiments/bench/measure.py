"""How the benchmark measures: the matmul peak, XLA memory and HLO op counts, one
model's jitted training step (``Trainer``) and interleaved timing of several runners.

Every section times through these, so all numbers are taken the same way.
"""

import re
import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from experiments.bench.batches import describe
from pete_jax import losses, train
from pete_jax.encoder import encoder_from_config


def log(msg: str) -> None:
  print(f'[{time.strftime("%H:%M:%S")}] {msg}', flush=True)


def block(x):
  return jax.block_until_ready(x)


def med(x) -> float:
  return float(np.median(np.asarray(x, np.float64)))


def matmul_peak(n: int, reps: int = 5, dtype=jnp.float32) -> dict:
  """Matmul rate (FLOP/s) of one jitted ``n x n @ n x n`` in ``dtype`` (the run's compute
  dtype): median and max of ``reps``."""
  a = jax.random.normal(jax.random.key(0), (n, n), dtype)
  b = jax.random.normal(jax.random.key(1), (n, n), dtype)
  f = jax.jit(jnp.dot)
  block(f(a, b))
  times = []
  for _ in range(reps):
    t = time.perf_counter()
    block(f(a, b))
    times.append(time.perf_counter() - t)
  flops = 2.0 * n**3
  return {
    'n': n,
    'median_flops': flops / float(np.median(times)),
    'max_flops': flops / min(times),
    'times_s': times,
  }


def memory_of(compiled) -> dict:
  """Bytes from XLA's memory analysis (peak estimate = arguments + outputs - aliased + temps)."""
  try:
    ma = compiled.memory_analysis()
  except Exception:  # pylint: disable=broad-except
    ma = None
  if ma is None:
    return {}
  out = {
    k: int(getattr(ma, f'{k}_size_in_bytes', 0))
    for k in ('argument', 'output', 'alias', 'temp', 'generated_code')
  }
  out['peak_estimate'] = out['argument'] + out['output'] - out['alias'] + out['temp']
  return out


def count_ops(
  hlo_text: str, names: Sequence[str] = ('sine', 'cosine'), source: str | None = None
) -> dict:
  """Number of HLO instructions with each opcode in ``names`` (fused computations included).

  ``source``: only instructions whose metadata op_name contains it (e.g. 'features_of'
  for the basis, 'attention' for RoPE).
  """
  out = {}
  for n in names:
    lines = [line for line in hlo_text.splitlines() if re.search(rf'=\s*\S+\s+{n}\(', line)]
    if source is not None:
      lines = [line for line in lines if source in line]
    out[n] = len(lines)
  return out


def tree_bytes(tree) -> int:
  return int(sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(tree)))


def tree_size(tree) -> int:
  return int(sum(x.size for x in jax.tree.leaves(tree)))


class Trainer:
  """One model's jitted training step, compiled once per batch shape, state donated."""

  def __init__(self, config, compute_dtype: str = 'float32', rng_impl: str | None = None):
    self.config, self.name = config, describe(config)
    self.model = config.model
    self.encoder = encoder_from_config(
      config.model, config.model.vocab_size, config.data.max_len, compute_dtype
    )
    self.optimizer = train.make_optimizer(config.train, config.train.weight_decay)
    params = train.init_params(self.encoder, config, jax.random.key(config.seed))
    self.num_params = tree_size(params['encoder'])
    self.state = train.create_train_state(params, self.optimizer)
    self.state_bytes = tree_bytes(self.state)
    self.jitted = jax.jit(
      train.make_train_step(self.encoder, self.optimizer, losses.OBJECTIVES['contrastive']),
      donate_argnums=0,
    )
    self.key = (
      jax.random.key(config.seed + 1, impl=rng_impl)
      if rng_impl
      else jax.random.key(config.seed + 1)
    )
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


def interleaved(
  runners: dict[str, Callable[[int], float]],
  n: int,
  warmup: int = 1,
  warmup_items: Sequence[int] | None = None,
  settle: int = 0,
) -> dict[str, list[float]]:
  """Calls ``runners[name](i)`` for i in range(n), alternating names at every i.

  ``warmup_items``: indices run once (untimed) first; default range(warmup).
  The order of names is rotated each round, so no one always runs first.
  ``settle``: untimed calls of the same runner on the same item before each timed
  one. The first step after switching between PyTorch and XLA is slower than the
  next (measured 0.4-1.7 s extra on a 2.1 s JAX step, 1x256 at 128x128), so when
  frameworks alternate, no timed step may directly follow the other framework's.
  """
  names = list(runners)
  for i in warmup_items if warmup_items is not None else range(warmup):
    for name in names:
      runners[name](i)
  times = {name: [] for name in names}
  for i in range(n):
    rot = names[i % len(names) :] + names[: i % len(names)]
    for name in rot:
      for _ in range(settle):
        runners[name](i)
      times[name].append(runners[name](i))
  return times
