"""Dotted config fields (``'model.d_model'``): the one place that reads and writes them by name."""

from typing import Any

import ml_collections


def get_field(config: ml_collections.ConfigDict, dotted: str) -> Any:
  """``config.model.d_model`` for ``dotted = 'model.d_model'``."""
  value = config
  for key in dotted.split('.'):
    value = value[key]
  return value


def set_field(config: ml_collections.ConfigDict, dotted: str, value: Any) -> None:
  """Sets ``config.a.b = value`` for ``dotted = 'a.b'``; the field must already exist."""
  *parents, leaf = dotted.split('.')
  node = config
  for name in parents:
    node = node[name]
  if leaf not in node:
    raise KeyError(f'config has no field {dotted!r}')
  node[leaf] = value


def flatten(config: ml_collections.ConfigDict, prefix: str = '') -> dict:
  """``{'model.d_model': 256, ...}`` with tuples as strings (for hparams)."""
  out = {}
  for key, value in config.items():
    if isinstance(value, ml_collections.ConfigDict):
      out.update(flatten(value, f'{prefix}{key}.'))
    else:
      out[f'{prefix}{key}'] = str(value) if isinstance(value, (tuple, list)) else value
  return out
