"""Config resolution and validation: every mistake is reported, naming the field, before any compute.

The allowed values of each field are defined next to the code that implements
them (``basis.BASES``, ``sources.LABEL_FILTERS``, ...) and checked here, once,
for every config that reaches training, evaluation or export.
"""

import os

import ml_collections

from pete_jax import assets, default_config, published_weights
from pete_jax.config_fields import get_field
from pete_jax.data import id_order, sources, tokenizers
from pete_jax.data.records import SourceError
from pete_jax.errors import ConfigError
from pete_jax.basis import FIXED_CODES, NORMALISATIONS
from pete_jax.embeddings import EMBED_MLPS
from pete_jax.encoder import DTYPES, EncoderConfig

# The fields that choose among named things (the encoder's own choices are checked by
# EncoderConfig.problems).
CHOICES = {
  'model.basis': FIXED_CODES,
  'model.normalisation': NORMALISATIONS,
  'model.embed_mlp': EMBED_MLPS,
  'tokenizer.kind': tokenizers.KINDS,
  'tokenizer.id_order': id_order.ID_ORDERS,
  'data.label_filter': sources.LABEL_FILTERS,
  'data.on_bad_row': sources.ON_BAD_ROW,
  'train.compute_dtype': tuple(DTYPES),
}


def from_json(record: dict) -> ml_collections.ConfigDict:
  """A ConfigDict from its JSON form, with lists back to tuples (as the configs write them)."""

  def tuples(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    for key, value in config.items():
      if isinstance(value, ml_collections.ConfigDict):
        tuples(value)
      elif isinstance(value, list):
        config[key] = tuple(value)
    return config

  return tuples(ml_collections.ConfigDict(record))


def with_defaults(saved: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A saved config with every field added to the code since it was written set to its default.

  A workdir's ``config.json`` holds the fields that existed when it was trained; the
  model code reads every current field, and each new one defaults to the behaviour
  from before it existed. Fields the code no longer has are kept as they were.
  """

  def overlay(base: dict, over: dict) -> dict:
    for key, value in over.items():
      both_sections = isinstance(value, dict) and isinstance(base.get(key), dict)
      base[key] = overlay(base[key], value) if both_sections else value
    return base

  merged = overlay(default_config.get_config().to_dict(), saved.to_dict())
  return from_json(merged)


def resolve(config: ml_collections.ConfigDict, num_devices: int = 1) -> ml_collections.ConfigDict:
  """A copy of the config with the ``official`` switch applied, validated for ``num_devices``
  (raises ConfigError)."""
  config = published_weights.apply_official(ml_collections.ConfigDict(config.to_dict()))
  validate(config, num_devices)
  return config


def _check_sources(field: str, specs) -> list[str]:
  """Each spec parsed as the readers parse it; a local file must exist (TFDS is read later)."""
  errors = []
  for spec in specs:
    try:
      parsed = sources.parse_spec(str(spec))
    except SourceError as e:
      errors.append(f'{field}: {e}')
      continue
    if parsed.format != 'tfds':
      errors += _check_file(
        field, parsed.location, hint=f' (set PETE_DATA_DIR or point {field} at your local copy)'
      )
  return errors


def _check_file(field: str, path: str, hint: str = '') -> list[str]:
  """An error if ``path`` is not a readable file; a directory is named as such."""
  if os.path.isdir(path):
    return [f'{field}: {path!r} is a directory; a file is expected here']
  if not os.path.isfile(path):
    return [f'{field}: file {path!r} not found{hint}']
  return []


def check_vocab_size(config: ml_collections.ConfigDict, tokenizer_vocab_size: int) -> None:
  """A set ``model.vocab_size`` must cover every id the tokenizer emits.

  Past the end of a table the lookup returns NaN (the run would stop later with a
  misleading non-finite-loss error) and the Fourier basis wraps the id silently (x > 1).
  """
  if config.model.vocab_size and config.model.vocab_size < tokenizer_vocab_size:
    raise ConfigError(
      [
        f'model.vocab_size ({config.model.vocab_size}) is smaller than the '
        f"tokenizer's vocabulary ({tokenizer_vocab_size}): ids >= {config.model.vocab_size} "
        'would have no embedding. Set it to 0 to take the size from the tokenizer.'
      ]
    )


def _model_errors(config: ml_collections.ConfigDict) -> list[str]:
  """The problems of the fields that choose things and of ``model``, one line each."""
  errors = [
    f'{field} must be one of {choices}, got {get_field(config, field)!r}'
    for field, choices in CHOICES.items()
    if get_field(config, field) not in choices
  ]
  model = config.model
  if model.basis == 'fourier' and model.d_model % 2:
    errors.append(f'model.d_model ({model.d_model}) must be even for the Fourier basis')
  if model.vocab_size and model.vocab_size < 2:
    errors.append(
      f'model.vocab_size must be >= 2 (or 0 = from the tokenizer), got {model.vocab_size}'
    )
  try:
    EncoderConfig.from_config(model, vocab_size=2, max_len=config.data.max_len)
  except ConfigError as e:
    errors += e.problems
  return errors


def validate_model(config: ml_collections.ConfigDict) -> None:
  """Raises one ConfigError for the fields of CHOICES and ``model.*`` only, what building the
  encoder needs: ``params`` counts a model whose data and files need not be on this machine."""
  _raise_if_any(_model_errors(config))


def validate(config: ml_collections.ConfigDict, num_devices: int = 1) -> None:
  """Raises one ConfigError listing every problem found, each naming its field."""
  errors = _model_errors(config)
  data, train = config.data, config.train
  if data.max_len < 3:
    errors.append(f'data.max_len must be >= 3, got {data.max_len}')
  for name, stage in (('train', train), ('finetune', config.finetune)):
    if stage.batch_size < 2:
      errors.append(
        f'{name}.batch_size must be >= 2 (contrastive/Pearson losses need pairs), '
        f'got {stage.batch_size}'
      )
    elif stage.batch_size % num_devices:
      errors.append(
        f'{name}.batch_size ({stage.batch_size}) must be divisible by the number '
        f'of devices ({num_devices})'
      )
  schedules = (('train', train),) + (
    (('finetune', config.finetune),) if config.finetune.enabled else ()
  )
  for name, stage in schedules:
    if stage.num_steps < 1:
      errors.append(f'{name}.num_steps must be >= 1, got {stage.num_steps}')
    if stage.warmup_steps > stage.num_steps:
      errors.append(
        f'{name}.warmup_steps ({stage.warmup_steps}) must be <= {name}.num_steps '
        f'({stage.num_steps})'
      )
    if stage.learning_rate <= 0:
      errors.append(f'{name}.learning_rate must be > 0, got {stage.learning_rate}')
  periods = ('train.log_every_steps', 'train.eval_every_steps', 'train.checkpoint_every_steps')
  periods += ('train.keep_checkpoints', 'finetune.eval_every_steps')
  errors += [
    f'{field} must be >= 1, got {get_field(config, field)}'
    for field in periods
    if get_field(config, field) < 1
  ]
  if config.tokenizer.kind == 'wordpiece':
    errors += _check_file('tokenizer.vocab_path', assets.vocab_file(config.tokenizer.vocab_path))
  if config.tokenizer.spm_model_path:
    errors += _check_file('tokenizer.spm_model_path', config.tokenizer.spm_model_path)
  errors += _check_sources('data.train_sources', data.train_sources)
  errors += _check_sources('data.eval_source', [data.eval_source])
  if data.select_source:
    errors += _check_sources('data.select_source', [data.select_source])
    if data.select_source.strip() == data.eval_source.strip():
      errors.append(
        f'data.select_source is the reported set (data.eval_source = {data.eval_source!r}): '
        'choosing a checkpoint on it would overstate the result; use a held-out set '
        "(configs/local_data.py uses STS-B train) or '' for none"
      )
  if config.finetune.enabled:
    errors += _check_sources('data.finetune_source', [data.finetune_source])
  _raise_if_any(errors)


def _raise_if_any(errors: list[str]) -> None:
  """One ConfigError listing every problem, or nothing."""
  if errors:
    raise ConfigError(errors)
