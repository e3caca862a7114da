"""Training and evaluation: ``train_and_evaluate(config, workdir)``.

One ``jax.jit`` step over a device mesh with a single 'data' axis: the batch is
sharded across devices, parameters and optimizer state are replicated, the
state is donated. The contrastive loss is computed over the global batch (the
compiler inserts the communication), so the same code runs on one CPU, a GPU,
a TPU host or a multi-host slice.

Stages: contrastive pre-training (``config.train``), then optionally STS-B
fine-tuning with the official code's Pearson loss (``config.finetune``), in
``<workdir>/finetune``. Each stage checkpoints and resumes on its own.
"""

import contextlib
import dataclasses
import os
import time
from typing import Any, Callable

from absl import logging
import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P

from pete_jax import checkpoint, configuration, files, logs, workdir_lock
from pete_jax.data import pipeline
from pete_jax.encoder import SentenceEncoder, encoder_from_config
from pete_jax.evaluate import encoder_fn, sts_eval
from pete_jax.losses import ContrastiveLoss, cosine_similarity, pearson_loss
from pete_jax.progress import TrainingProgress


@flax.struct.dataclass
class TrainState:
  """Everything a resumed run needs besides the data position (which is the step)."""
  step: jax.Array
  params: Any  # {'encoder': ..., 'loss': {'log_temperature': ...}}
  opt_state: Any


def learning_rate_schedule(peak: float, warmup: int, total: int) -> optax.Schedule:
  """Linear warmup from 0 to ``peak`` over ``warmup`` steps, then linear decay to 0 at ``total``."""
  return optax.join_schedules(
      [optax.linear_schedule(0.0, peak, max(warmup, 1)),
       optax.linear_schedule(peak, 0.0, max(total - warmup, 1))], [max(warmup, 1)])


def make_optimizer(stage: ml_collections.ConfigDict, weight_decay: float = 0.01,
                   grad_clip_norm: float = 0.0) -> optax.GradientTransformation:
  """AdamW (torch defaults: b2 0.999, eps 1e-8, decay 0.01) with the warmup/linear schedule."""
  schedule = learning_rate_schedule(stage.learning_rate, stage.warmup_steps, stage.num_steps)
  adamw = optax.adamw(schedule, b1=0.9, b2=0.999, eps=1e-8, weight_decay=weight_decay)
  return optax.chain(optax.clip_by_global_norm(grad_clip_norm), adamw) if grad_clip_norm else adamw


def init_params(encoder: SentenceEncoder, config: ml_collections.ConfigDict, rng: jax.Array) -> dict:
  """Fresh parameters ``{'encoder', 'loss'}`` (jitted: 4x faster than eager init on CPU)."""
  ids = jnp.ones((2, 8), jnp.int32)
  vec = jnp.ones((2, encoder.d_model))
  loss = ContrastiveLoss(config.model.init_temperature)

  @jax.jit
  def init(rng):
    enc_rng, loss_rng = jax.random.split(rng)
    return {'encoder': encoder.init(enc_rng, ids, ids)['params'],
            'loss': loss.init(loss_rng, vec, vec)['params']}

  return init(rng)


def create_train_state(params: dict, optimizer: optax.GradientTransformation) -> TrainState:
  """Step 0 with a fresh optimizer state."""
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=optimizer.init(params))


def make_train_step(encoder: SentenceEncoder, config: ml_collections.ConfigDict,
                    optimizer: optax.GradientTransformation, objective: str) -> Callable:
  """``step(state, batch, key) -> (state, metrics)`` for 'contrastive' or 'pearson'."""
  loss_module = ContrastiveLoss(config.model.init_temperature)

  def step(state: TrainState, batch: dict, key: jax.Array):
    key = jax.random.fold_in(key, state.step)

    def loss_fn(params):
      encode = lambda side, k: encoder.apply(
          {'params': params['encoder']}, batch[f'{side}_ids'], batch[f'{side}_mask'],
          deterministic=False, rngs={'dropout': jax.random.fold_in(key, k)})
      a, b = encode('a', 0), encode('b', 1)
      if objective == 'contrastive':
        return loss_module.apply({'params': params['loss']}, a, b)
      return pearson_loss(cosine_similarity(a, b), batch['score']), jnp.exp(
          params['loss']['log_temperature'])

    (loss, temperature), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    state = state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                          opt_state=opt_state)
    return state, {'loss': loss, 'temperature': temperature, 'grad_norm': optax.tree.norm(grads)}

  return step


def maybe_initialize_distributed() -> None:
  """``jax.distributed.initialize()`` on multi-host clusters only (env set by the launcher)."""
  markers = ('JAX_COORDINATOR_ADDRESS', 'COORDINATOR_ADDRESS', 'MEGASCALE_COORDINATOR_ADDRESS')
  multi_tpu = ',' in os.environ.get('TPU_WORKER_HOSTNAMES', '')
  multi_slurm = int(os.environ.get('SLURM_NTASKS', '1')) > 1
  if (any(m in os.environ for m in markers) or multi_tpu or multi_slurm) \
      and not jax.distributed.is_initialized():
    jax.distributed.initialize()


def data_mesh(devices: list | None = None) -> jax.sharding.Mesh:
  """All (or the given) devices on one 'data' axis.

  Auto axis type: the compiler places the communication of the global-batch
  contrastive loss (an Explicit mesh would refuse ``a @ b.T`` of two
  batch-sharded arrays).
  """
  devices = jax.devices() if devices is None else devices
  return jax.make_mesh((len(devices),), ('data',), axis_types=(AxisType.Auto,), devices=devices)


@dataclasses.dataclass
class Stage:
  """One training stage (pre-training or fine-tuning) and where it keeps its files."""
  name: str
  objective: str  # 'contrastive' or 'pearson'
  settings: ml_collections.ConfigDict  # num_steps, batch_size, learning_rate, warmup_steps
  workdir: str
  batcher: Any
  eval_every: int
  checkpoint_every: int
  stop_at: int = 0  # stop after this step as if preempted; 0 = run to the end


def _data_position(batcher, step: int, seed: int) -> dict:
  return {'step': int(step), 'epoch': int(batcher.epoch_of(step)), 'seed': seed,
          'num_examples': int(batcher.num_examples), 'global_batch_size': int(batcher.batch_size)}


def _check_data_position(saved: dict, expected: dict, workdir: str) -> None:
  for key in ('seed', 'num_examples', 'global_batch_size'):
    if saved.get(key) != expected[key]:
      raise ValueError(
          f'Cannot resume {workdir}: its checkpoint was written with {key}={saved.get(key)}, '
          f'the current data/config gives {expected[key]}. Use a new workdir or the same data.')


def _first_nonfinite(losses: list[tuple[int, jax.Array]]) -> int | None:
  for step, loss in losses:
    if not np.isfinite(float(loss)):
      return step
  return None


def run_stage(stage: Stage, config: ml_collections.ConfigDict, encoder: SentenceEncoder,
              params: dict, evaluate: Callable[[dict], dict], writer) -> tuple[dict, dict]:
  """Trains one stage to its last step, resuming from its newest intact checkpoint.

  Returns:
    (final parameters, final evaluation metrics).
  """
  mesh = data_mesh()
  replicated, batch_sharding = NamedSharding(mesh, P()), NamedSharding(mesh, P('data'))
  optimizer = make_optimizer(stage.settings, config.train.weight_decay, config.train.grad_clip_norm)
  state = jax.device_put(create_train_state(params, optimizer), replicated)
  mgr = checkpoint.manager(os.path.join(stage.workdir, 'checkpoints'), config.train.keep_checkpoints)
  restored = checkpoint.restore(mgr, jax.eval_shape(lambda: state))
  num_steps = stage.settings.num_steps
  if restored is not None:
    state, position = restored
    _check_data_position(position, _data_position(stage.batcher, 0, config.seed), stage.workdir)
    state = jax.device_put(state, replicated)
    logging.info('[%s] resumed from step %d', stage.name, int(state.step))
  step_fn = jax.jit(make_train_step(encoder, config, optimizer, stage.objective),
                    in_shardings=(replicated, batch_sharding, replicated),
                    out_shardings=(replicated, replicated), donate_argnums=0)
  key = jax.random.key(config.seed + 1)
  start = int(state.step)
  pending: list[tuple[int, jax.Array]] = []
  metrics, t0, eval_result = {}, time.time(), {}
  log_every = max(1, config.train.log_every_steps)
  prefix = '' if stage.name == 'pretrain' else f'{stage.name}/'
  stop = min(num_steps, stage.stop_at or num_steps)
  progress = TrainingProgress(stage.name, start, num_steps)
  for step in range(start, stop):
    local = stage.batcher.batch_at(step)
    batch = {k: jax.make_array_from_process_local_data(batch_sharding, v) for k, v in local.items()}
    state, metrics = step_fn(state, batch, key)
    pending.append((step, metrics['loss']))
    progress.step()
    done = step + 1
    is_eval = done % stage.eval_every == 0 or done == num_steps
    is_ckpt = done % stage.checkpoint_every == 0 or done in (num_steps, stop)
    if done % log_every == 0 or is_eval or is_ckpt:
      bad = _first_nonfinite(pending)
      if bad is not None:
        progress.close()
        mgr.wait_until_finished()
        raise FloatingPointError(
            f'[{stage.name}] non-finite loss at step {bad + 1}; the last good checkpoint is step '
            f'{mgr.latest_step()} in {stage.workdir}/checkpoints. Lower the learning rate or use '
            'float32 compute.')
      pending.clear()
      scalars = {f'{prefix}{k}': float(v) for k, v in metrics.items()}
      scalars[f'{prefix}learning_rate'] = float(learning_rate_schedule(
          stage.settings.learning_rate, stage.settings.warmup_steps, num_steps)(step))
      elapsed = time.time() - t0
      pairs_per_s = (done - start) * stage.settings.batch_size / max(elapsed, 1e-9)
      scalars[f'{prefix}pairs_per_second'] = pairs_per_s
      scalars[f'{prefix}steps_per_second'] = pairs_per_s / stage.settings.batch_size
      writer.write_scalars(done, scalars)
      eta = (num_steps - done) * stage.settings.batch_size / max(pairs_per_s, 1e-9)
      progress.report(done, scalars[f'{prefix}loss'], pairs_per_s, eta)
    if is_eval:
      eval_result = evaluate(state.params)
      writer.write_scalars(done, {f'{prefix}sts_{k}': v for k, v in eval_result.items()})
      if jax.process_index() == 0:
        files.append_json(os.path.join(stage.workdir, 'eval_results.json'),
                          {'step': done, **eval_result})
      progress.note(f'[{stage.name}] step {done}  STS spearman {eval_result["spearman"]:.2f}  '
                    f'pearson {eval_result["pearson"]:.2f}  ({eval_result["num_pairs"]} pairs)')
    if is_ckpt:
      checkpoint.save(mgr, done, state, _data_position(stage.batcher, done, config.seed),
                      {'spearman': eval_result['spearman']} if is_eval else None, force=True)
  progress.close()
  checkpoint.finish(mgr)
  if not eval_result and stop == num_steps:  # Resumed after the last step: score the restored state.
    eval_result = evaluate(state.params)
  writer.flush()
  return jax.device_get(state.params), eval_result


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Pre-trains (and optionally fine-tunes) the model described by ``config`` in ``workdir``.

  A restarted run with the same workdir resumes from the latest complete
  checkpoint and ends with exactly the parameters of an uninterrupted run.

  Returns:
    The final evaluation metrics: ``{'pretrain': {...}, 'finetune': {...}}``.
  """
  maybe_initialize_distributed()
  config = configuration.resolve(config)
  configuration.validate(config, num_devices=jax.device_count())
  # One run per workdir (process 0 speaks for a multi-host run).
  lock = workdir_lock.hold(workdir) if jax.process_index() == 0 else contextlib.nullcontext()
  with lock:
    return _train_and_evaluate(config, workdir)


def _train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  # All data is read and checked before anything but the tokenizer files is
  # written, so bad input stops the run with the workdir as it was.
  proc = dict(process_index=jax.process_index(), process_count=jax.process_count())
  train_data = pipeline.prepare_training_data(config, workdir, **proc)
  logging.info('Training data: %s', train_data.report)
  tokenizer = train_data.tokenizer
  sts = pipeline.prepare_sts(config, tokenizer)
  finetune_batcher = None
  if config.finetune.enabled:
    finetune_batcher, report = pipeline.prepare_finetune_batcher(config, tokenizer, **proc)
    logging.info('Fine-tuning data: %s', report)
  if jax.process_index() == 0:
    checkpoint.write_config(workdir, config)
  writer = logs.MetricWriter(workdir, just_logging=jax.process_index() > 0)
  encoder = encoder_from_config(config.model, tokenizer.vocab_size, config.data.max_len,
                                config.train.compute_dtype)
  eval_encoder = encoder_from_config(config.model, tokenizer.vocab_size, config.data.max_len)
  lengths = pipeline.padding_lengths(config)
  evaluate = lambda params: sts_eval(encoder_fn(eval_encoder, params['encoder']), sts, lengths)
  writer.write_hparams(flatten(config))
  sample = min(config.train.num_steps, 500)
  results = {'padding_efficiency': train_data.batcher.padding_efficiency(sample)}
  logging.info('Padding efficiency (real / computed tokens, first %d steps): %.3f', sample,
               results['padding_efficiency'])
  if config.finetune.init_from:  # Fine-tune an existing (e.g. converted) workdir's model.
    _, params = checkpoint.load_params(config.finetune.init_from)
    results['pretrain'] = evaluate(params)
  else:
    params = init_params(encoder, config, jax.random.key(config.seed))
    stage = Stage('pretrain', 'contrastive', config.train, workdir, train_data.batcher,
                  config.train.eval_every_steps, config.train.checkpoint_every_steps,
                  config.train.stop_at_step)
    params, results['pretrain'] = run_stage(stage, config, encoder, params, evaluate, writer)
    if 0 < config.train.stop_at_step < config.train.num_steps:
      logging.info('Stopped at step %d as asked (train.stop_at_step); run again to resume.',
                   config.train.stop_at_step)
      writer.close()
      return {'stopped_at_step': config.train.stop_at_step}
  if finetune_batcher is not None:
    ft = Stage('finetune', 'pearson', config.finetune, os.path.join(workdir, 'finetune'),
               finetune_batcher, config.finetune.eval_every_steps, config.finetune.eval_every_steps)
    _, results['finetune'] = run_stage(ft, config, encoder, params, evaluate, writer)
  if jax.process_index() == 0:
    files.write_json(os.path.join(workdir, 'final_metrics.json'), results)
  writer.close()
  return results


def flatten(config: ml_collections.ConfigDict, prefix: str = '') -> dict:
  """``{'model.d_model': 256, ...}`` with tuples as strings (for hparams)."""
  out = {}
  for key, value in config.items():
    if isinstance(value, ml_collections.ConfigDict):
      out.update(flatten(value, f'{prefix}{key}.'))
    else:
      out[f'{prefix}{key}'] = str(value) if isinstance(value, (tuple, list)) else value
  return out
