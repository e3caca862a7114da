"""Compatibility mode for the official pretrained TAN/PETE weights.

The published PyTorch weights were trained with a model that differs from the
paper in several places (see shared/data/official_weights/README.md). Each
difference is an ordinary config field, so it can be switched off on its own
(the ablations in experiments/official_weights.py do that); ``config.official``
switches all of them on at once. The paper's behaviour stays the default.
"""

from typing import Any

import ml_collections

from pete_jax.config_fields import get_field, set_field

# Token-id normaliser of the official code: TAN.__init__ passes main.py's
# vocab_size default (30552), not the tokenizer's 30522, so x = 2 p / 30551 - 1.
OFFICIAL_VOCAB_SIZE = 30552

# Dotted config field -> value needed to reproduce the published weights.
OFFICIAL_SETTINGS: dict[str, Any] = {
  'model.embedding': 'fourier',
  'model.normalisation': 'vocab',
  'model.basis_vocab_size': OFFICIAL_VOCAB_SIZE,
  'model.vocab_size': OFFICIAL_VOCAB_SIZE,
  'model.embed_mlp': 'linear',  # one d->d Linear plus residual
  'model.drop_ffn_output': True,  # FFN computed, attention output added twice
  'model.rope': 'official',  # the official non-rotation arithmetic
  'model.pooling': 'mean_all',  # mean over all padded positions
  'model.use_bias': True,
  'model.dropout_rate': 0.0,
  'tokenizer.kind': 'wordpiece',  # BERT uncased
  'tokenizer.lowercase': True,
  'data.max_len': 128,
  'data.pad_to_max_len': True,  # mean_all pooling depends on the padded length
}


def apply_official(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A copy of ``config`` with :data:`OFFICIAL_SETTINGS` applied if ``config.official``.

  Returns an unchanged copy when ``config.official`` is False or absent, so
  callers can apply it unconditionally.
  """
  config = config.copy_and_resolve_references()
  if config.get('official', False):
    for dotted, value in OFFICIAL_SETTINGS.items():
      set_field(config, dotted, value)
  return config


def differences(config: ml_collections.ConfigDict) -> dict[str, tuple[Any, Any]]:
  """``{field: (value in config, official value)}`` for every field that differs."""
  return {
    k: (get_field(config, k), v) for k, v in OFFICIAL_SETTINGS.items() if get_field(config, k) != v
  }
