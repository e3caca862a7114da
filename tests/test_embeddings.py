"""FourierEmbed and LearnedEmbed: drop-in use, transformations, parameters, errors."""

import pathlib
import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from pete_jax import FourierEmbed, LearnedEmbed, fourier_features

IDS = jnp.array([[3, 17, 42, 0], [99, 5, 0, 0]])


class TinyClassifier(nn.Module):
  """A model written for nn.Embed, with FourierEmbed in its place."""

  embed: nn.Module

  @nn.compact
  def __call__(self, ids):
    return nn.Dense(3)(self.embed(ids).mean(axis=-2))


def count(params):
  return sum(x.size for x in jax.tree.leaves(params))


def test_fourier_embed_under_jit_vmap_grad():
  model = TinyClassifier(FourierEmbed(100, 16))
  params = model.init(jax.random.key(0), IDS)
  out = jax.jit(model.apply)(params, IDS)
  assert out.shape == (2, 3)
  per_row = jax.vmap(lambda row: model.apply(params, row[None])[0])(IDS)
  np.testing.assert_allclose(per_row, out, atol=1e-6)

  def loss(p):
    return optax.softmax_cross_entropy_with_integer_labels(
      model.apply(p, IDS), jnp.array([0, 2])
    ).mean()

  grads = jax.jit(jax.grad(loss))(params)
  mlp_grad = grads['params']['embed']['mlp']['kernel']
  assert mlp_grad.shape == (16, 16) and float(jnp.abs(mlp_grad).sum()) > 0


def test_ids_outside_the_vocabulary_give_nan_and_float_ids_are_refused_as_nn_embed():
  """A periodic basis would map id V - 1 + j onto id j's code: an id past the vocabulary (a
  tokenizer with added tokens) must not alias silently."""
  ids = jnp.array([0, 1, 99, 100, 198, -1])
  fourier, table = FourierEmbed(100, 16), nn.Embed(100, 16)
  out = fourier.apply(fourier.init(jax.random.key(0), ids), ids)
  assert np.isfinite(out[:3]).all() and np.isnan(out[3:]).all()
  out = table.apply(table.init(jax.random.key(0), ids), ids)  # nn.Embed: the same past V
  assert np.isfinite(out[:3]).all() and np.isnan(out[3:5]).all()
  with pytest.raises(TypeError, match='integer token ids'):
    fourier.init(jax.random.key(0), jnp.array([1.0, 2.0]))


def test_basis_has_no_parameters_and_output_is_normalised_residual():
  embed = FourierEmbed(100, 16, mlp='none')
  params = embed.init(jax.random.key(0), IDS)
  assert set(params['params']) == {'norm'}  # only the RMSNorm scale
  t = fourier_features(IDS, 100, 16)
  want = t / jnp.sqrt((t * t).mean(-1, keepdims=True) + 1e-6)
  np.testing.assert_allclose(embed.apply(params, IDS), want, atol=1e-6)


@pytest.mark.parametrize(
  'mlp,expansion,expected',
  [
    ('none', 4, 16),  # RMSNorm scale
    ('linear', 4, 16 * 16 + 16 + 16),  # Dense d->d + scale
    ('geglu', 4, 16 * 128 + 128 + 64 * 16 + 16 + 16),  # d->2*4d, 4d->d + scale
    ('geglu', 2, 16 * 64 + 64 + 32 * 16 + 16 + 16),
  ],
)
def test_mlp_parameter_counts(mlp, expansion, expected):
  params = FourierEmbed(1000, 16, mlp=mlp, mlp_expansion=expansion).init(jax.random.key(0), IDS)
  assert count(params) == expected


def test_parameter_count_does_not_grow_with_vocab():
  small = FourierEmbed(1000, 32).init(jax.random.key(0), IDS)
  large = FourierEmbed(256_000, 32).init(jax.random.key(0), IDS)
  assert count(small) == count(large)
  assert count(LearnedEmbed(256_000, 32).init(jax.random.key(0), IDS)) == 256_000 * 32 + 32


@pytest.mark.parametrize('module', [FourierEmbed(100, 16, mlp='geglu'), LearnedEmbed(100, 16)])
def test_embedding_table_equals_lookup(module):
  params = module.init(jax.random.key(1), IDS)
  table = module.apply(params, method='embedding_table')
  assert table.shape == (100, 16)
  np.testing.assert_allclose(table[IDS], module.apply(params, IDS), atol=1e-5)


@pytest.mark.parametrize('module', [FourierEmbed(100, 16), LearnedEmbed(100, 16)])
def test_attend_scores_every_vocabulary_row(module):
  params = module.init(jax.random.key(0), IDS)
  query = jax.random.normal(jax.random.key(1), (2, 16))
  logits = module.apply(params, query, method='attend')
  table = module.apply(params, method='embedding_table')
  assert logits.shape == (2, 100)
  np.testing.assert_allclose(logits, query @ table.T, rtol=1e-4, atol=1e-4)


def test_learned_padding_row_is_zero_and_gets_no_gradient():
  """The paper's baseline table has padding id 0 (torch ``padding_idx``)."""
  module = LearnedEmbed(100, 16)
  ids = jnp.array([[5, 7, 0, 0]])
  params = module.init(jax.random.key(0), ids)
  out = module.apply(params, ids)
  assert float(jnp.abs(out[0, 2:]).max()) == 0 and float(jnp.abs(out[0, :2]).min()) > 0
  grads = jax.grad(lambda p: jnp.sum(module.apply(p, ids) ** 3))(params)
  table_grad = grads['params']['table']['embedding']
  assert float(jnp.abs(table_grad[0]).max()) == 0 and float(jnp.abs(table_grad[5]).max()) > 0
  every_row = LearnedEmbed(100, 16, padding_id=None)
  assert float(jnp.abs(every_row.apply(params, ids)[0, 2:]).min()) > 0


def test_table_init_std_is_flax_by_default_and_torch_when_asked():
  default = LearnedEmbed(1000, 64).init(jax.random.key(0), IDS)['params']['table']['embedding']
  torch_like = LearnedEmbed(1000, 64, init_std=1.0).init(jax.random.key(0), IDS)
  assert float(default.std()) == pytest.approx(64**-0.5, rel=0.05)
  assert float(torch_like['params']['table']['embedding'].std()) == pytest.approx(1.0, rel=0.05)


def test_learned_dropout_only_when_not_deterministic():
  module = LearnedEmbed(100, 16, dropout_rate=0.5)
  params = module.init(jax.random.key(0), IDS)
  a = module.apply(params, IDS, deterministic=True)
  b = module.apply(params, IDS, deterministic=False, rngs={'dropout': jax.random.key(3)})
  real = IDS != 0  # padding positions are zero either way
  assert float(jnp.mean(b[real] == 0)) > 0.3 and float(jnp.mean(a[real] == 0)) == 0


def test_bfloat16_compute_float32_params():
  module = FourierEmbed(100, 16, dtype=jnp.bfloat16)
  params = module.init(jax.random.key(0), IDS)
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(params))
  assert module.apply(params, IDS).dtype == jnp.bfloat16


@pytest.mark.parametrize(
  'kwargs,match',
  [
    (dict(num_embeddings=100, features=15), 'even dim'),
    (dict(num_embeddings=1, features=16), 'vocab_size must be >= 2'),
    (dict(num_embeddings=100, features=16, basis='spline'), 'Unknown basis'),
    (dict(num_embeddings=100, features=16, mlp='relu'), 'Unknown embedding mlp'),
    (dict(num_embeddings=100, features=16, normalisation='len'), 'Unknown normalisation'),
  ],
)
def test_bad_arguments_fail_at_construction(kwargs, match):
  with pytest.raises(ValueError, match=match):
    FourierEmbed(**kwargs)


def test_nnx_bridge():
  """An NNX model uses the Linen module through flax.nnx.bridge.ToNNX."""

  class NNXModel(nnx.Module):
    def __init__(self, rngs):
      self.embed = nnx.bridge.ToNNX(FourierEmbed(100, 16), rngs=rngs)
      self.head = nnx.Linear(16, 2, rngs=rngs)

    def __call__(self, ids):
      return self.head(self.embed(ids).mean(axis=1))

  model = NNXModel(nnx.Rngs(0))
  nnx.bridge.lazy_init(model.embed, IDS)
  assert model(IDS).shape == (2, 2)
  grads = nnx.grad(lambda m: m(IDS).sum())(model)
  assert float(jnp.abs(grads['embed']['mlp']['kernel'][...]).sum()) > 0


def test_readme_flax_examples_run():
  """The Python blocks of README.md's "FourierEmbed in your own Flax model" run as printed
  (in order, in one namespace, as a reader pasting them would)."""
  readme = (pathlib.Path(__file__).parent.parent / 'README.md').read_text()
  section = readme.split('## FourierEmbed in your own Flax model', 1)[1].split('\n## ', 1)[0]
  blocks = re.findall(r'```python\n(.*?)```', section, flags=re.S)
  assert len(blocks) == 3, 'the section should show the Linen, pure-function and NNX examples'
  namespace = {}
  for block in blocks:
    exec(compile(block, 'README.md', 'exec'), namespace)  # pylint: disable=exec-used
  assert namespace['logits'].shape == (1, 2)  # the NNX model's, the last block
  assert namespace['t'].shape == (1, 4, 256) and namespace['c'].shape == (1, 4, 64)
