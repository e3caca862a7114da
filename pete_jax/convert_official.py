"""Converts an official TAN/PETE PyTorch state_dict into a pete_jax workdir.

    python -m pete_jax.convert_official --weights=tan_2_128.pt --workdir=/tmp/tan_2_128

The sizes (layers, d_model, heads, FFN width) are read off the tensors; the head
count comes from the RoPE buffer ``layers.N.rope.inv_freq`` (head_dim/2 entries),
because the file names do not say it reliably (tan_1_64 has 2 heads). The
state_dict must match the expected keys and shapes exactly: a partial or
renamed file would otherwise convert into a silently wrong model. The workdir
gets the official-mode config (pete_jax/published_weights.py) and an Orbax checkpoint at
step 0, so every pete_jax tool (evaluation, fine-tuning) reads it like a trained
run. Needs torch: ``pip install -e .[convert]``.
"""

import dataclasses
import os
import re
from typing import Callable, Mapping, Sequence

from absl import app, flags
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from pete_jax import default_config, logs, published_weights, workdir_lock
from pete_jax.encoder import encoder_from_config
from pete_jax.errors import UserError, exit_with
from pete_jax.layers import rope_angles

Params = dict


@dataclasses.dataclass(frozen=True)
class Sizes:
  """Model sizes read off a state_dict."""

  num_layers: int
  d_model: int
  num_heads: int
  ffn_hidden: int

  @property
  def head_dim(self) -> int:
    return self.d_model // self.num_heads


class ConversionError(UserError, ValueError):
  """Weights that are not an official state_dict, or a workdir that cannot take them."""


def load_state_dict(path: str) -> dict[str, np.ndarray]:
  """The tensors of a ``torch.save``d state_dict as float32 numpy arrays (CPU only)."""
  try:
    import torch  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise ImportError(
      'Reading official PyTorch weights needs torch: pip install -e .[convert]'
    ) from e
  if not os.path.isfile(path):
    raise ConversionError(f'--weights: no such file: {path!r}')
  try:
    state = torch.load(path, map_location='cpu', weights_only=True)
  except Exception as e:  # torch raises pickle, zip and runtime errors for a file it cannot read
    raise ConversionError(
      f'{path} is not a PyTorch state_dict file (torch.load: {type(e).__name__}: '
      f'{str(e).splitlines()[0] if str(e) else ""}); give the .pt file of the official weights.'
    ) from None
  if not isinstance(state, Mapping):
    raise ConversionError(
      f'{path}: expected a state_dict (name -> tensor), got {type(state).__name__}'
    )
  return {k: v.detach().to(torch.float32).numpy() for k, v in state.items()}


def _first(state: Mapping[str, np.ndarray], getters: Sequence[tuple[str, Callable]]) -> int | None:
  """The size read by the first getter whose key is present, else None."""
  for key, get in getters:
    if key in state:
      return int(get(state[key].shape))
  return None


def infer_sizes(state: Mapping[str, np.ndarray]) -> Sizes:
  """Layers, width, heads and FFN width from the tensors present.

  Several keys can give each size, so that one renamed key still leads to a
  precise "missing/extra key" error from :func:`check_state_dict` rather than
  a failure here.
  """
  layer_ids = {int(m.group(1)) for k in state if (m := re.match(r'layers\.(\d+)\.', k))}
  if not layer_ids:
    raise ConversionError(
      f'state_dict has no layers.N.* keys: not an official TAN state_dict. Keys: {sorted(state)}'
    )
  d = _first(
    state,
    [
      ('norm.weight', lambda s: s[0]),
      ('mlp.bias', lambda s: s[0]),
      ('pooler.dense.bias', lambda s: s[0]),
      ('mlp.weight', lambda s: s[-1]),
    ],
  )
  if d is None:
    raise ConversionError(
      'cannot infer d_model: missing keys norm.weight, mlp.bias, pooler.dense.bias, mlp.weight'
    )
  freqs = sorted(k for k in state if re.fullmatch(r'layers\.\d+\.rope\.inv_freq', k))
  if not freqs:
    raise ConversionError('cannot infer the head count: missing key layers.0.rope.inv_freq')
  head_dim = 2 * state[freqs[0]].shape[0]
  if head_dim == 0 or d % head_dim:
    raise ConversionError(
      f'{freqs[0]} has {head_dim // 2} entries: head_dim {head_dim} does not divide d_model {d}'
    )
  ffn = (
    _first(
      state, [(f'layers.{i}.positional_ff.w2.weight', lambda s: s[-1]) for i in sorted(layer_ids)]
    )
    or 4 * d
  )
  return Sizes(max(layer_ids) + 1, d, d // head_dim, ffn)


def _dense(torch_name: str, flax_path: tuple[str, ...], n_in: int, n_out: int):
  """(torch key, flax path, torch shape, transform) rows of one Linear layer.

  torch's Linear stores weight as (out, in) and computes x W^T + b; flax's
  Dense stores kernel as (in, out) and computes x K + b, so K = W^T.
  """
  return [
    (f'{torch_name}.weight', flax_path + ('kernel',), (n_out, n_in), np.transpose),
    (f'{torch_name}.bias', flax_path + ('bias',), (n_out,), None),
  ]


def _norm(torch_name: str, flax_path: tuple[str, ...], d: int):
  """The row of an RMSNorm: torch's ``weight`` is flax's ``scale``."""
  return [(f'{torch_name}.weight', flax_path + ('scale',), (d,), None)]


def key_map(
  sizes: Sizes,
) -> list[tuple[str, tuple[str, ...] | None, tuple[int, ...], Callable | None]]:
  """Every official key with its flax parameter path, torch shape and transform.

  The fused projection maps to ``qkv`` unchanged: torch splits its output as
  q | k | v with head j at features j*hd..(j+1)*hd of each, which is exactly the
  [3, H, hd] reshape of MultiHeadAttention. The RoPE buffer has no flax path
  (the frequencies are recomputed; :func:`check_rope` compares them).
  """
  d, m = sizes.d_model, sizes.ffn_hidden
  rows = _dense('mlp', ('embed', 'mlp'), d, d) + _norm('norm', ('embed', 'norm'), d)
  for i in range(sizes.num_layers):
    t, f = f'layers.{i}', (f'blocks_{i}',)
    rows += _dense(f'{t}.projection', f + ('attention', 'qkv'), d, 3 * d)
    rows += _dense(f'{t}.attn_out', f + ('attention', 'out'), d, d)
    rows += _norm(f'{t}.norm1', f + ('norm1',), d)
    rows += _dense(f'{t}.positional_ff.w1', f + ('ffn', 'wi'), d, 2 * m)
    rows += _dense(f'{t}.positional_ff.w2', f + ('ffn', 'wo'), m, d)
    rows += _norm(f'{t}.norm2', f + ('norm2',), d)
    rows.append((f'{t}.rope.inv_freq', None, (sizes.head_dim // 2,), None))
  return rows + _dense('pooler.dense', ('pooler',), d, d)


def check_state_dict(state: Mapping[str, np.ndarray], sizes: Sizes) -> None:
  """Raises a ValueError naming every missing, unexpected and mis-shaped key."""
  expected = {key: shape for key, _, shape, _ in key_map(sizes)}
  problems = [f'missing key {k} (expected shape {expected[k]})' for k in expected if k not in state]
  problems += [
    f'unexpected key {k} (shape {tuple(state[k].shape)})' for k in state if k not in expected
  ]
  problems += [
    f'key {k} has shape {tuple(state[k].shape)}, expected {expected[k]}'
    for k in expected
    if k in state and tuple(state[k].shape) != expected[k]
  ]
  if problems:
    raise ConversionError(
      f'Not an official TAN state_dict for {sizes}:\n  ' + '\n  '.join(problems)
    )


def check_rope(state: Mapping[str, np.ndarray], sizes: Sizes) -> None:
  """The stored RoPE frequencies must equal the ones the flax model computes."""
  hd = sizes.head_dim
  computed = np.asarray(rope_angles(jnp.ones((1,)), hd)[0, : hd // 2])
  for i in range(sizes.num_layers):
    stored = state[f'layers.{i}.rope.inv_freq']
    err = float(np.max(np.abs(stored - computed) / computed))
    if err > 1e-6:
      raise ConversionError(
        f'layers.{i}.rope.inv_freq differs from 1/10000^(2j/{hd}) '
        f'(max relative error {err:.3g}): RoPE base or head_dim not as expected'
      )


def _set(tree: dict, path: tuple[str, ...], value: np.ndarray) -> None:
  for name in path[:-1]:
    tree = tree.setdefault(name, {})
  tree[path[-1]] = value


def official_config(sizes: Sizes, eval_source: str = '') -> ml_collections.ConfigDict:
  """The default config in official mode, with the sizes of the converted weights."""
  config = default_config.get_config()
  config.official = True
  config = published_weights.apply_official(config)
  config.model.d_model = sizes.d_model
  config.model.num_layers = sizes.num_layers
  config.model.num_heads = sizes.num_heads
  config.model.ffn_hidden = sizes.ffn_hidden
  if eval_source:  # else the default config's: GLUE STS-B validation through TFDS
    config.data.eval_source = eval_source
  return config


def to_flax(state: Mapping[str, np.ndarray]) -> tuple[Sizes, Params]:
  """Checks a state_dict and returns its sizes and the SentenceEncoder parameter tree."""
  sizes = infer_sizes(state)
  check_state_dict(state, sizes)
  check_rope(state, sizes)
  params: Params = {}
  for key, path, _, transform in key_map(sizes):
    if path is not None:
      value = np.asarray(state[key], np.float32)
      _set(params, path, np.ascontiguousarray(transform(value) if transform else value))
  _check_tree(params, official_config(sizes))
  return sizes, params


def _model(config: ml_collections.ConfigDict):
  return encoder_from_config(config.model, config.model.vocab_size, config.data.max_len)


def _check_tree(params: Params, config: ml_collections.ConfigDict) -> None:
  """The converted tree must have exactly the structure and shapes of the flax model's."""
  model = _model(config)
  ids = jnp.zeros((1, 4), jnp.int32)
  want = jax.eval_shape(model.init, jax.random.key(0), ids, jnp.ones_like(ids))['params']
  got_shapes = jax.tree.map(lambda x: tuple(x.shape), params)
  want_shapes = jax.tree.map(lambda x: tuple(x.shape), want)
  if got_shapes != want_shapes:
    raise AssertionError(f'converted tree {got_shapes} != SentenceEncoder tree {want_shapes}')


def write_workdir(workdir: str, config: ml_collections.ConfigDict, encoder_params: Params) -> None:
  """Writes a normal workdir (config + step-0 checkpoint) around converted encoder parameters.

  Every command that reads a workdir (evaluation, encoding, export, fine-tuning)
  then accepts the converted weights like a trained model.
  """
  from pete_jax import checkpoint, configuration, train  # pylint: disable=import-outside-toplevel

  config = configuration.resolve(config)
  checkpoint.write_config(workdir, config)
  params = train.init_params(_model(config), config, jax.random.key(config.seed))
  params['encoder'] = jax.tree.map(jnp.asarray, encoder_params)
  state = train.create_train_state(params, train.make_optimizer(config.train))
  mgr = checkpoint.manager(os.path.join(workdir, 'checkpoints'), use_async=False)
  checkpoint.save(mgr, 0, state, {'step': 0, 'converted': True})
  checkpoint.finish(mgr)


def convert(
  weights: str, workdir: str, eval_source: str = ''
) -> tuple[ml_collections.ConfigDict, Params]:
  """Converts ``weights`` and writes the workdir; returns (config, encoder params).

  The workdir must be new (or empty): writing over a trained run would replace its
  config and leave its checkpoints unreadable.
  """
  if os.path.exists(workdir) and (not os.path.isdir(workdir) or os.listdir(workdir)):
    raise ConversionError(
      f'--workdir {workdir} exists and is not an empty folder; converted weights go into a '
      'new workdir.'
    )
  sizes, params = to_flax(load_state_dict(weights))
  config = official_config(sizes, eval_source)
  with workdir_lock.hold(workdir):
    write_workdir(workdir, config, params)
  return config, params


def main(argv: Sequence[str]) -> None:
  logs.start_command(argv)
  f = flags.FLAGS
  try:
    config, _ = convert(f.weights, f.workdir, f.eval_source)
  except UserError as e:
    raise exit_with(e) from None
  m = config.model
  print(
    f'Converted {f.weights} -> {f.workdir}: {m.num_layers} layer(s), '
    f'd_model {m.d_model}, {m.num_heads} head(s), FFN {m.ffn_hidden} (unused).'
  )


if __name__ == '__main__':
  # Flags are defined only when run as a command, so importing never clashes.
  flags.DEFINE_string('weights', None, 'Official state_dict (.pt) to convert.')
  flags.DEFINE_string('workdir', None, 'pete_jax workdir to write.')
  flags.DEFINE_string(
    'eval_source',
    '',
    "data.eval_source of the workdir's config; default the default config's "
    '(tfds:glue/stsb:validation); e.g. stsb_tsv:/path/to/stsb/dev.tsv for a local copy.',
  )
  flags.mark_flags_as_required(['weights', 'workdir'])
  app.run(main)
