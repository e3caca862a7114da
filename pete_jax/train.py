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
from jax.sharding import NamedSharding, PartitionSpec as P

from pete_jax import checkpoint, config_fields, configuration, devices, files, logs, workdir_lock
from pete_jax.data import pipeline
from pete_jax.encoder import SentenceEncoder, encoder_from_config
from pete_jax.errors import UserError
from pete_jax.evaluate import cosines_as_json, encoder_fn, jit_apply, pair_cosines, sts_eval
from pete_jax import losses
from pete_jax.progress import TrainingProgress


class NonFiniteLoss(UserError, FloatingPointError):
  """The loss became NaN or inf: the message says which step and what to change."""


@flax.struct.dataclass
class TrainState:
  """Everything a resumed run needs besides the data position (which is the step)."""

  step: jax.Array
  params: Any  # {'encoder': ..., 'loss': {'log_temperature': ...}}
  opt_state: Any


def learning_rate_schedule(peak: float, warmup: int, total: int) -> optax.Schedule:
  """Linear warmup from 0 to ``peak`` over ``warmup`` steps, then linear decay to 0 at ``total``
  (with no warmup, step 0 trains at the peak)."""
  decay = optax.linear_schedule(peak, 0.0, max(total - warmup, 1))
  if warmup <= 0:
    return decay
  return optax.join_schedules([optax.linear_schedule(0.0, peak, warmup), decay], [warmup])


def make_optimizer(
  stage: ml_collections.ConfigDict, weight_decay: float = 0.01, grad_clip_norm: float = 0.0
) -> optax.GradientTransformation:
  """AdamW (torch defaults: b2 0.999, eps 1e-8, decay 0.01) with the warmup/linear schedule."""
  schedule = learning_rate_schedule(stage.learning_rate, stage.warmup_steps, stage.num_steps)
  adamw = optax.adamw(schedule, b1=0.9, b2=0.999, eps=1e-8, weight_decay=weight_decay)
  return optax.chain(optax.clip_by_global_norm(grad_clip_norm), adamw) if grad_clip_norm else adamw


def init_params(
  encoder: SentenceEncoder, config: ml_collections.ConfigDict, rng: jax.Array
) -> dict:
  """Fresh parameters ``{'encoder', 'loss'}`` (jitted: 4x faster than eager init on CPU)."""
  ids = jnp.ones((2, 8), jnp.int32)
  vec = jnp.ones((2, encoder.config.d_model))
  loss = losses.ContrastiveLoss(config.model.init_temperature)

  @jax.jit
  def init(rng):
    enc_rng, loss_rng = jax.random.split(rng)
    return {
      'encoder': encoder.init(enc_rng, ids, ids)['params'],
      'loss': loss.init(loss_rng, vec, vec)['params'],
    }

  return init(rng)


def create_train_state(params: dict, optimizer: optax.GradientTransformation) -> TrainState:
  """Step 0 with a fresh optimizer state."""
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=optimizer.init(params))


def encode_side(encoder: SentenceEncoder, params: dict, batch: dict, side: str, key: jax.Array):
  """Pooled vectors of one side ('a' or 'b') of a batch, in training mode (dropout keyed by side)."""
  return encoder.apply(
    {'params': params},
    batch[f'{side}_ids'],
    batch[f'{side}_mask'],
    deterministic=False,
    rngs={'dropout': jax.random.fold_in(key, 0 if side == 'a' else 1)},
  )


def optimizer_step(loss_fn: Callable, optimizer: optax.GradientTransformation) -> Callable:
  """``step(state, batch, key) -> (state, metrics)``: one AdamW step on ``loss_fn``.

  ``loss_fn(params, batch, key) -> (loss, metrics)``; the key is folded with the step, so
  a resumed run draws the dropout masks it would have drawn. Pre-training and GLUE
  fine-tuning both train through this one step.
  """

  def step(state: TrainState, batch: dict, key: jax.Array):
    key = jax.random.fold_in(key, state.step)
    (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, batch, key)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    state = state.replace(
      step=state.step + 1, params=optax.apply_updates(state.params, updates), opt_state=opt_state
    )
    return state, {'loss': loss, 'grad_norm': optax.tree.norm(grads), **metrics}

  return step


def make_train_step(
  encoder: SentenceEncoder, optimizer: optax.GradientTransformation, objective: losses.Objective
) -> Callable:
  """``step(state, batch, key) -> (state, metrics)``: both sentences encoded, ``objective``, AdamW."""

  def loss_fn(params, batch, key):
    encode = lambda side: encode_side(encoder, params['encoder'], batch, side, key)
    loss, temperature = objective(params['loss'], encode('a'), encode('b'), batch)
    return loss, {'temperature': temperature}

  return optimizer_step(loss_fn, optimizer)


def jit_step(step: Callable, replicated: NamedSharding, sharded: NamedSharding) -> Callable:
  """``step`` jitted over the mesh: the batch sharded, the rest replicated, the state donated."""
  return jax.jit(
    step,
    in_shardings=(replicated, sharded, replicated),
    out_shardings=(replicated, replicated),
    donate_argnums=0,
  )


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
  return {
    'step': int(step),
    'epoch': int(batcher.epoch_of(step)),
    'seed': seed,
    'num_examples': int(batcher.num_examples),
    'global_batch_size': int(batcher.batch_size),
  }


def restore_or_create(
  mgr,
  stage: Stage,
  params: dict,
  optimizer: optax.GradientTransformation,
  sharding: NamedSharding,
  seed: int,
) -> TrainState:
  """The newest intact checkpoint of the stage, or step 0 from ``params``; on ``sharding``."""
  state = jax.device_put(create_train_state(params, optimizer), sharding)
  restored = checkpoint.restore(mgr, jax.eval_shape(lambda: state))
  if restored is None:
    return state
  state, saved = restored
  expected = _data_position(stage.batcher, 0, seed)
  for key in ('seed', 'num_examples', 'global_batch_size'):
    if saved.get(key) != expected[key]:
      raise checkpoint.CheckpointError(
        f'cannot resume {stage.workdir}: its checkpoint was written with {key}='
        f'{saved.get(key)}, the current data/config gives {expected[key]}. Use a new workdir '
        'or the same data.'
      )
  logging.info('[%s] resumed from step %d', stage.name, int(state.step))
  return jax.device_put(state, sharding)


class PeriodicActions:
  """What the loop does every few steps: log (with the non-finite check), evaluate, checkpoint.

  Called after every step with the step count done; the loss values stay on the
  device until a log step, so the loop never waits for the host in between. The
  reported pairs/s and ETA leave out what is not training: compiling a new batch
  shape and evaluating (``exclude``).
  """

  def __init__(
    self,
    stage: Stage,
    config: ml_collections.ConfigDict,
    mgr,
    evaluate: Callable[[dict], dict],
    writer,
    start: int,
  ):
    self.stage, self.mgr, self.evaluate, self.writer = stage, mgr, evaluate, writer
    self.seed, self.start = config.seed, start
    self.log_every = config.train.log_every_steps
    self.num_steps = stage.settings.num_steps
    self.stop = min(self.num_steps, stage.stop_at or self.num_steps)
    self.schedule = learning_rate_schedule(
      stage.settings.learning_rate, stage.settings.warmup_steps, self.num_steps
    )
    self.prefix = '' if stage.name == 'pretrain' else f'{stage.name}/'
    self.pending: list[tuple[int, jax.Array]] = []
    self.eval_result: dict = {}
    self.t0 = time.time()
    self.excluded_s, self.excluded_steps = 0.0, 0
    self.pairs_per_s = 0.0  # the training rate at the last log (compilation, evaluation excluded)
    self.progress = TrainingProgress(stage.name, start, self.num_steps)

  def exclude(self, seconds: float, steps: int = 0) -> None:
    """Keeps ``seconds`` (and ``steps``) out of the reported training rate."""
    self.excluded_s += seconds
    self.excluded_steps += steps

  def __call__(self, done: int, state: TrainState, metrics: dict) -> None:
    self.pending.append((done, metrics['loss']))
    self.progress.step()
    is_eval = done % self.stage.eval_every == 0 or done == self.num_steps
    is_ckpt = done % self.stage.checkpoint_every == 0 or done in (self.num_steps, self.stop)
    if done % self.log_every == 0 or is_eval or is_ckpt:
      self.log(done, metrics)
    if is_eval:
      self.evaluate_now(done, state)
    if is_ckpt:
      checkpoint.save(
        self.mgr,
        done,
        state,
        _data_position(self.stage.batcher, done, self.seed),
        self.selection_score() if is_eval else None,
      )

  def selection_score(self) -> float:
    """What the kept best checkpoint is chosen by: the selection set's Spearman, if scored."""
    return self.eval_result.get('select_spearman', self.eval_result['spearman'])

  def log(self, done: int, metrics: dict) -> None:
    """Stops at a non-finite loss since the last log; writes the scalars and the progress."""
    bad = next((s for s, loss in self.pending if not np.isfinite(float(loss))), None)
    if bad is not None:
      self.progress.close()
      self.mgr.wait_until_finished()
      last = self.mgr.latest_step()
      saved = (
        f'the last good checkpoint is step {last} in {self.stage.workdir}/checkpoints'
        if last is not None
        else 'no checkpoint was saved before it'
      )
      raise NonFiniteLoss(
        f'[{self.stage.name}] non-finite loss at step {bad}; {saved}. Lower the learning '
        'rate or use float32 compute, in a new workdir (a workdir resumes only under the '
        'config its checkpoints were trained with).'
      )
    self.pending.clear()
    batch_size = self.stage.settings.batch_size
    trained = max(done - self.start - self.excluded_steps, 0)
    pairs_per_s = trained * batch_size / max(time.time() - self.t0 - self.excluded_s, 1e-9)
    self.pairs_per_s = pairs_per_s
    scalars = {f'{self.prefix}{k}': float(v) for k, v in metrics.items()}
    scalars[f'{self.prefix}learning_rate'] = float(self.schedule(done - 1))
    scalars[f'{self.prefix}pairs_per_second'] = pairs_per_s
    scalars[f'{self.prefix}steps_per_second'] = pairs_per_s / batch_size
    self.writer.write_scalars(done, scalars)
    eta = (self.num_steps - done) * batch_size / max(pairs_per_s, 1e-9)
    self.progress.report(done, scalars[f'{self.prefix}loss'], pairs_per_s, eta)

  def evaluate_now(self, done: int, state: TrainState) -> None:
    start = time.time()
    result = self.eval_result = self.evaluate(state.params)
    self.exclude(time.time() - start)
    self.writer.write_scalars(done, {f'{self.prefix}sts_{k}': v for k, v in result.items()})
    if jax.process_index() == 0:
      files.append_json(
        os.path.join(self.stage.workdir, 'eval_results.json'), {'step': done, **result}
      )
    select = (f'  selection set spearman {result["select_spearman"]:.2f}'
              if 'select_spearman' in result else '')  # fmt: skip
    self.progress.note(
      f'[{self.stage.name}] step {done}  STS spearman {result["spearman"]:.2f}  '
      f'pearson {result["pearson"]:.2f}  ({result["num_pairs"]} pairs){select}'
    )

  def finish(self, state: TrainState) -> dict:
    """Closes the bar and the checkpoints; the stage's final evaluation and training rate."""
    self.progress.close()
    checkpoint.finish(self.mgr)
    if not self.eval_result and self.stop == self.num_steps:  # resumed after the last step
      self.eval_result = self.evaluate(state.params)
    self.writer.flush()
    if not self.pairs_per_s:
      return self.eval_result
    return {**self.eval_result, 'pairs_per_second': self.pairs_per_s}


def run_stage(
  stage: Stage,
  config: ml_collections.ConfigDict,
  encoder: SentenceEncoder,
  params: dict,
  evaluate: Callable[[dict], dict],
  writer,
) -> tuple[dict, dict]:
  """Trains one stage to its last step (or its ``stop_at_step``), resuming from its newest
  intact checkpoint.

  Returns:
    (final parameters, final evaluation metrics).
  """
  mesh = devices.data_mesh()
  replicated, batch_sharding = NamedSharding(mesh, P()), NamedSharding(mesh, P('data'))
  optimizer = make_optimizer(stage.settings, config.train.weight_decay, config.train.grad_clip_norm)
  mgr = checkpoint.manager(
    os.path.join(stage.workdir, 'checkpoints'), config.train.keep_checkpoints
  )
  state = restore_or_create(mgr, stage, params, optimizer, replicated, config.seed)
  step_fn = jit_step(
    make_train_step(encoder, optimizer, losses.OBJECTIVES[stage.objective]),
    replicated,
    batch_sharding,
  )
  key = jax.random.key(config.seed + 1)
  actions = PeriodicActions(stage, config, mgr, evaluate, writer, start=int(state.step))
  compiled = set()
  for step in range(int(state.step), actions.stop):
    batch = {
      k: jax.make_array_from_process_local_data(batch_sharding, v)
      for k, v in stage.batcher.batch_at(step).items()
    }
    shape = stage.batcher.shape_at(step)
    new_shape = shape not in compiled
    if new_shape:
      # This call compiles the shape, which is not part of the training rate. The earlier
      # steps still queued (dispatch is asynchronous) finish first, so their time counts.
      jax.block_until_ready(state)
      start = time.time()
    state, metrics = step_fn(state, batch, key)
    if new_shape:
      jax.block_until_ready(metrics)
      compiled.add(shape)
      actions.exclude(time.time() - start, steps=1)
    actions(step + 1, state, metrics)
  return jax.device_get(state.params), actions.finish(state)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Pre-trains (and optionally fine-tunes) the model described by ``config`` in ``workdir``.

  A restarted run with the same workdir resumes from the latest complete
  checkpoint and ends with exactly the parameters of an uninterrupted run.

  Returns:
    The final evaluation metrics, ``{'pretrain': {...}, 'finetune': {...}}`` (finetune when
    enabled), with the batches' ``padding_efficiency``; ``{'stopped_at_step': N}`` when
    ``train.stop_at_step`` stopped pre-training early.
  """
  devices.maybe_initialize_distributed()
  config = configuration.resolve(config, num_devices=jax.device_count())
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
  configuration.check_vocab_size(config, tokenizer.vocab_size)
  sts = pipeline.prepare_sts(config, tokenizer)
  select = config.data.select_source
  select_sts = pipeline.prepare_sts(config, tokenizer, select, 'train') if select else None
  finetune_batcher = None
  if config.finetune.enabled:
    finetune_batcher, report = pipeline.prepare_finetune_batcher(config, tokenizer, **proc)
    logging.info('Fine-tuning data: %s', report)
  checkpoint.check_resumes_same_run(workdir, config)
  if jax.process_index() == 0:
    checkpoint.write_config(workdir, config)
  writer = logs.MetricWriter(workdir, just_logging=jax.process_index() > 0)
  encoder = encoder_from_config(
    config.model, tokenizer.vocab_size, config.data.max_len, config.train.compute_dtype
  )
  eval_encoder = encoder_from_config(config.model, tokenizer.vocab_size, config.data.max_len)
  lengths = pipeline.padding_lengths(config)
  eval_apply = jit_apply(eval_encoder)  # compiled once per bucket shape, for every evaluation
  score = lambda params, data: sts_eval(encoder_fn(eval_apply, params['encoder']), data, lengths)

  def evaluate(params: dict) -> dict:
    """eval_source, and the selection set (keys select_*) when there is one."""
    result = score(params, sts)
    if select_sts is not None:
      result.update({f'select_{k}': v for k, v in score(params, select_sts).items()})
    return result

  writer.write_hparams(config_fields.flatten(config))
  sample = min(config.train.num_steps, 500)
  results = {'padding_efficiency': train_data.batcher.padding_efficiency(sample)}
  logging.info(
    'Padding efficiency (real / computed tokens, first %d steps): %.3f',
    sample,
    results['padding_efficiency'],
  )
  params = init_params(encoder, config, jax.random.key(config.seed))
  stage = Stage(
    'pretrain',
    'contrastive',
    config.train,
    workdir,
    train_data.batcher,
    config.train.eval_every_steps,
    config.train.checkpoint_every_steps,
    config.train.stop_at_step,
  )
  params, results['pretrain'] = run_stage(stage, config, encoder, params, evaluate, writer)
  if 0 < config.train.stop_at_step < config.train.num_steps:
    logging.info(
      'Stopped at step %d as asked (train.stop_at_step); run again to resume.',
      config.train.stop_at_step,
    )
    writer.close()
    return {'stopped_at_step': config.train.stop_at_step}
  # The pre-trained model's cosine of every eval_source pair, in order: what an analysis by
  # pair (experiments.rare_ids) needs, kept with the run so that it needs no checkpoint.
  cosines = pair_cosines(encoder_fn(eval_apply, params['encoder']), sts.a_ids, sts.b_ids, lengths)
  if jax.process_index() == 0:
    files.write_json(os.path.join(workdir, 'pair_cosines.json'), cosines_as_json(cosines))
  if finetune_batcher is not None:
    ft = Stage(
      'finetune',
      'pearson',
      config.finetune,
      checkpoint.stage_dir(workdir, 'finetune'),
      finetune_batcher,
      config.finetune.eval_every_steps,
      config.finetune.eval_every_steps,
    )
    # Fine-tuning trains on STS pairs: only eval_source says anything about it.
    evaluate_ft = lambda params: score(params, sts)
    _, results['finetune'] = run_stage(ft, config, encoder, params, evaluate_ft, writer)
  if jax.process_index() == 0:
    files.write_json(os.path.join(workdir, 'final_metrics.json'), results)
  writer.close()
  return results
