"""Fine-tuning a pre-trained encoder on one task: ``finetune(model, config)``.

The encoder and a fresh head (``head.ClassifierHead``; none for STS-B, which
trains the cosine of the pooled vectors on 1 - Pearson as pre-training's STS-B
stage does) are trained together with AdamW, linear warmup then decay, in one
``jax.jit`` step sharded over the device mesh as pre-training is. After every epoch
the model is scored on the selection split (a fixed tenth of the training data)
and on the validation split(s); the result reported is the validation score at
the epoch with the best selection score. Runs take minutes, so they keep no
checkpoints: the suite runner skips a task whose result file exists.
"""

from __future__ import annotations

import dataclasses
import time

from absl import logging
import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec as P
import ml_collections
import numpy as np
import optax

from pete_jax import devices, losses, train
from pete_jax.data import batching, pipeline
from pete_jax.data.records import SourceError
from pete_jax.data.sources import ON_BAD_ROW
from pete_jax.errors import ConfigError
from pete_jax.evaluate import encode_sequences, encoder_fn, jit_apply, pair_cosines
from pete_jax.glue import metrics, readers
from pete_jax.glue.head import FEATURES, ClassifierHead
from pete_jax.glue.tasks import TASKS, Task, get_task
from pete_jax.progress import TrainingProgress
from pete_jax.trained_model import TrainedModel

# The held-out selection split is drawn with this seed, not the run's, so that every
# seed and learning rate of a task is chosen on the same examples.
SELECT_SEED = 0


@dataclasses.dataclass
class TaskData:
  """A task's examples: training, selection (held out of training) and validation splits."""

  train: list
  select: list
  validation: dict  # split name -> examples
  reports: list


def split_name(task: Task, index: int) -> str:
  """'validation', or MNLI's 'matched' / 'mismatched'."""
  split = task.validation_splits[index]
  return split.split('_')[-1] if len(task.validation_splits) > 1 else 'validation'


def check_config(config: ml_collections.ConfigDict, num_devices: int = 1) -> None:
  """Raises one ConfigError naming every invalid field, before any data is read."""
  choices = (
    ('task', sorted(TASKS)),
    ('head', FEATURES),
    ('on_bad_row', ON_BAD_ROW),
  )
  problems = [
    f'{field} must be one of {allowed}, got {config[field]!r}'
    for field, allowed in choices
    if config[field] not in allowed
  ]
  if config.epochs < 1:
    problems.append(f'epochs must be >= 1, got {config.epochs}')
  if not 0 < config.select_fraction < 1:
    problems.append(f'select_fraction must be in (0, 1), got {config.select_fraction}')
  if config.learning_rate <= 0:
    problems.append(f'learning_rate must be > 0, got {config.learning_rate}')
  if config.batch_size < 2 or config.batch_size % num_devices:
    problems.append(
      f'batch_size ({config.batch_size}) must be >= 2 and divisible by the number of '
      f'devices ({num_devices})'
    )
  if config.max_len < 3:
    problems.append(f'max_len must be >= 3, got {config.max_len}')
  if problems:
    raise ConfigError(problems)


def load_task_data(config: ml_collections.ConfigDict) -> TaskData:
  """Checks the config, reads its sources and holds out the selection split."""
  check_config(config, jax.device_count())
  task = get_task(config.task)
  if not config.train_source:
    raise SourceError(
      f'{task.name} has no training split; GLUE scores it with the {task.scored_with} model, '
      'and its public (TFDS) split has no labels, so it cannot be scored here.'
    )
  read = lambda spec: readers.read_examples(
    spec, task, config.on_bad_row, config.tfds_data_dir, config.tfds_download
  )
  examples, report = read(config.train_source)
  reports = [report]
  order = np.random.default_rng(SELECT_SEED).permutation(len(examples))
  n_select = int(round(config.select_fraction * len(examples)))
  selected = set(order[:n_select].tolist())
  train_split = [e for i, e in enumerate(examples) if i not in selected]
  select = [e for i, e in enumerate(examples) if i in selected]
  validation = {}
  for i, spec in enumerate(config.validation_sources):
    validation[split_name(task, i)], report = read(spec)
    reports.append(report)
  if not select:
    raise SourceError(
      f'select_fraction={config.select_fraction} holds out no {task.name} example; the epoch '
      'and learning rate are chosen on that split, so it must hold some (e.g. 0.1)'
    )
  if len(train_split) < config.batch_size:
    raise SourceError(
      f'{len(train_split)} {task.name} training examples are fewer than one batch '
      f'(batch_size={config.batch_size})'
    )
  return TaskData(train_split, select, validation, reports)


class Encoded:
  """Token ids of a split's texts, and its labels."""

  def __init__(self, examples: list, tokenizer, max_len: int):
    self.a = tokenizer.encode([e.text_a for e in examples], max_len)
    pair = examples[0].text_b is not None
    self.b = tokenizer.encode([e.text_b for e in examples], max_len) if pair else None
    self.labels = np.asarray([e.label for e in examples], np.float32)


def _head(task: Task, config) -> ClassifierHead | None:
  return None if task.is_regression else ClassifierHead(task.num_labels, config.head)


def make_loss(task: Task, encoder, head: ClassifierHead | None):
  """``loss(params, batch, key) -> (loss, {})``: cross-entropy of the head's logits, or
  STS-B's 1 - Pearson."""

  def loss_fn(params, batch, key):
    u = train.encode_side(encoder, params['encoder'], batch, 'a', key)
    v = train.encode_side(encoder, params['encoder'], batch, 'b', key) if task.is_pair else None
    if head is None:
      return losses.pearson_loss(losses.cosine_similarity(u, v), batch['score']), {}
    logits = head.apply({'params': params['head']}, u, v)
    labels = batch['score'].astype(jnp.int32)
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean(), {}

  return loss_fn


def predict(encoder_apply, head, params: dict, data: Encoded, lengths) -> np.ndarray:
  """Class ids (or STS-B cosines, as evaluation scores them) of an encoded split."""
  encode = encoder_fn(encoder_apply, params['encoder'])
  if head is None:
    return pair_cosines(encode, data.a, data.b, lengths)
  u = encode_sequences(encode, data.a, lengths)
  v = encode_sequences(encode, data.b, lengths) if data.b is not None else None
  logits = head.apply({'params': params['head']}, u, v)
  return np.asarray(jnp.argmax(logits, axis=-1))


def finetune(model: TrainedModel, config: ml_collections.ConfigDict, data: TaskData) -> dict:
  """Fine-tunes ``model`` on the task; returns the scores (see the module docstring)."""
  start_time = time.time()
  task = get_task(config.task)
  max_len = config.max_len
  if model.config.model.pooling == 'mean_all' and model.config.data.max_len != max_len:
    # Its sentence vector averages the padding too, so it is defined only at the one
    # padded length the model was trained (or converted) with.
    logging.info(
      "'mean_all' model: max_len %d as it was trained, not %d", model.config.data.max_len, max_len
    )
    max_len = model.config.data.max_len
  lengths = batching.bucket_lengths(max_len, config.buckets, pipeline.pads_to_max_len(model.config))
  encoded = {
    'train': Encoded(data.train, model.tokenizer, max_len),
    'select': Encoded(data.select, model.tokenizer, max_len),
    **{k: Encoded(v, model.tokenizer, max_len) for k, v in data.validation.items()},
  }
  tr = encoded['train']
  batcher = batching.PairBatcher(
    tr.a,
    tr.b if tr.b is not None else tr.a,  # single-sentence tasks never encode side b
    batch_size=config.batch_size,
    lengths=lengths,
    seed=config.seed,
    scores=tr.labels,
    sort_window_batches=config.sort_window_batches,
    process_index=jax.process_index(),  # each process feeds its own block of the batch
    process_count=jax.process_count(),
  )
  num_steps = config.epochs * batcher.steps_per_epoch
  settings = ml_collections.ConfigDict(
    {
      'num_steps': num_steps,
      'learning_rate': config.learning_rate,
      'warmup_steps': int(config.warmup_fraction * num_steps),
    }
  )
  optimizer = train.make_optimizer(settings, config.weight_decay)
  head = _head(task, config)
  rng = jax.random.key(config.seed)
  params = {'encoder': model.params}
  if head is not None:
    d = model.encoder.config.d_model
    v = jnp.zeros((1, d)) if task.is_pair else None
    params['head'] = head.init(rng, jnp.zeros((1, d)), v)['params']

  mesh = devices.data_mesh()
  replicated, sharded = NamedSharding(mesh, P()), NamedSharding(mesh, P('data'))
  step = train.jit_step(
    train.optimizer_step(make_loss(task, model.encoder, head), optimizer), replicated, sharded
  )
  # A copy: the step donates its input, and the caller's model keeps its parameters.
  params = jax.tree.map(lambda x: jnp.array(x, copy=True), params)
  state = jax.device_put(train.create_train_state(params, optimizer), replicated)
  encoder_apply = jit_apply(model.encoder)
  key = jax.random.fold_in(rng, 1)
  curve, best = [], None
  progress = TrainingProgress(f'finetune {task.name}', 0, num_steps)
  for epoch in range(config.epochs):
    for s in range(epoch * batcher.steps_per_epoch, (epoch + 1) * batcher.steps_per_epoch):
      batch = {
        k: jax.make_array_from_process_local_data(sharded, v)
        for k, v in batcher.batch_at(s).items()
      }
      state, step_metrics = step(state, batch, key)
      progress.step()
    host = jax.device_get(state.params)
    scores = {
      split: metrics.score(task, predict(encoder_apply, head, host, e, lengths), e.labels)
      for split, e in encoded.items()
      if split != 'train'
    }
    point = {'epoch': epoch + 1, 'step': (epoch + 1) * batcher.steps_per_epoch,
             'loss': float(step_metrics['loss']), **scores}  # fmt: skip
    curve.append(point)
    text = '; '.join(
      f'{k} ' + ' '.join(f'{m} {v:.2f}' for m, v in s.items()) for k, s in scores.items()
    )
    progress.note(f'[finetune {task.name}] epoch {epoch + 1}: {text}')
    if best is None or metrics.combined(scores['select']) > metrics.combined(best['select']):
      best = point
  progress.close()
  validation = {}
  for split in data.validation:
    suffix = '' if split == 'validation' else f'_{split}'
    validation.update({f'{m}{suffix}': v for m, v in best[split].items()})
  result = {
    'task': task.name,
    'validation': validation,
    'select': best['select'],
    'best_epoch': best['epoch'],
    'curve': curve,
    'steps': num_steps,
    'examples': {k: len(e.labels) for k, e in encoded.items()},
    'sources': [r.summary() for r in data.reports],
    'wall_s': round(time.time() - start_time, 1),
  }
  logging.info('[finetune %s] validation at epoch %d: %s', task.name, best['epoch'], validation)
  return result
