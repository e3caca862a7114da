"""Encoder: pooling, RoPE, FFN quirk, parameter counts, sharding, validation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P

from pete_jax import EncoderConfig, SentenceEncoder
from pete_jax.layers import apply_rope
from pete_jax.params import count_by_component

IDS = jnp.array([[101, 2023, 2003, 1037, 102], [101, 7592, 102, 0, 0]])
MASK = (IDS > 0).astype(jnp.int32)


def small(**kw):
  kw = dict(vocab_size=30522, d_model=32, num_layers=2, num_heads=2, ffn_hidden=16) | kw
  return SentenceEncoder(EncoderConfig(**kw))


@pytest.mark.parametrize('embedding', ['fourier', 'learned'])
def test_masked_pooling_ignores_padding(embedding):
  model = small(embedding=embedding)
  params = model.init(jax.random.key(0), IDS, MASK)
  out = model.apply(params, IDS, MASK)
  padded = jnp.pad(IDS, ((0, 0), (0, 7)))
  out_padded = model.apply(params, padded, (padded > 0).astype(jnp.int32))
  assert out.shape == (2, 32)
  np.testing.assert_allclose(out, out_padded, atol=1e-5)


def test_unmasked_pooling_depends_on_padding():
  model = small(pooling='mean_all')
  params = model.init(jax.random.key(0), IDS, MASK)
  padded = jnp.pad(IDS, ((0, 0), (0, 7)))
  diff = model.apply(params, IDS, MASK) - model.apply(
    params, padded, (padded > 0).astype(jnp.int32)
  )
  assert float(jnp.abs(diff).max()) > 1e-3


def test_standard_rope_scores_depend_only_on_relative_position():
  q = jax.random.normal(jax.random.key(0), (1, 1, 1, 16))
  k = jax.random.normal(jax.random.key(1), (1, 1, 1, 16))

  def score(pq, pk, kind):
    rq = apply_rope(jnp.broadcast_to(q, (1, 64, 1, 16)), jnp.arange(64), kind)[0, pq, 0]
    rk = apply_rope(jnp.broadcast_to(k, (1, 64, 1, 16)), jnp.arange(64), kind)[0, pk, 0]
    return float(rq @ rk)

  for shift in (1, 7, 30):
    assert score(3 + shift, 10 + shift, 'standard') == pytest.approx(
      score(3, 10, 'standard'), abs=1e-4
    )
  # The official arithmetic is not a rotation: the same shift changes the score.
  assert abs(score(10, 17, 'official') - score(3, 10, 'official')) > 1e-3
  # Standard RoPE preserves norms; at position 0 it is the identity.
  out = apply_rope(jnp.broadcast_to(q, (1, 8, 1, 16)), jnp.arange(8), 'standard')
  np.testing.assert_allclose(jnp.linalg.norm(out, axis=-1), jnp.linalg.norm(q), rtol=1e-5)
  np.testing.assert_allclose(out[0, 0], q[0, 0], atol=1e-6)


def test_official_rope_matches_its_written_formula():
  u = np.random.default_rng(0).normal(size=(3, 1, 8)).astype(np.float32)
  got = np.asarray(apply_rope(jnp.asarray(u)[None], jnp.arange(3), 'official'))[0]
  inv = 1.0 / 10000 ** (np.arange(0, 8, 2) / 8)
  for p in range(3):
    theta = p * np.concatenate([inv, inv])
    y = np.empty(8)
    y[0::2], y[1::2] = -u[p, 0, 1::2], u[p, 0, 0::2]
    want = y * np.cos(theta) + np.roll(y, 1) * np.sin(theta)
    np.testing.assert_allclose(got[p, 0], want, atol=1e-5)


def test_drop_ffn_output_ignores_ffn_weights():
  model = small(drop_ffn_output=True)
  params = model.init(jax.random.key(0), IDS, MASK)
  scrambled = jax.tree_util.tree_map_with_path(
    lambda path, x: x * 3.0 if 'ffn' in jax.tree_util.keystr(path) else x, params
  )
  np.testing.assert_allclose(model.apply(params, IDS, MASK), model.apply(scrambled, IDS, MASK))
  default = small()
  assert not np.allclose(default.apply(params, IDS, MASK), default.apply(scrambled, IDS, MASK))


# The official code's counts (vocab 30,552, linear embedding MLP, FFN 4d, biases).
TABLE1_COUNTS = {
  ('fourier', 1, 256): 1_184_256,
  ('learned', 1, 256): 8_939_776,
  ('fourier', 1, 512): 4_727_808,
  ('learned', 1, 512): 20_107_776,
  ('fourier', 2, 256): 2_236_672,
  ('learned', 2, 256): 9_992_192,
  ('fourier', 2, 512): 8_929_792,
  ('learned', 2, 512): 24_309_760,
}


@pytest.mark.parametrize('key', list(TABLE1_COUNTS))
def test_table1_parameter_counts(key):
  embedding, layers, d = key
  model = SentenceEncoder(
    EncoderConfig(
      vocab_size=30552,
      d_model=d,
      num_layers=layers,
      num_heads=layers,
      ffn_hidden=4 * d,
      embedding=embedding,
    )
  )
  assert sum(count_by_component(model).values()) == TABLE1_COUNTS[key]


def test_dropout_is_active_only_when_not_deterministic():
  model = small(embedding='learned', dropout_rate=0.3)
  params = model.init(jax.random.key(0), IDS, MASK)
  a = model.apply(params, IDS, MASK)
  np.testing.assert_array_equal(a, model.apply(params, IDS, MASK))
  b = model.apply(params, IDS, MASK, deterministic=False, rngs={'dropout': jax.random.key(1)})
  assert float(jnp.abs(a - b).max()) > 1e-3


def test_serving_from_materialised_table():
  model = small(embed_mlp='geglu')
  params = model.init(jax.random.key(0), IDS, MASK)
  table = model.apply(params, method='embedding_table')
  np.testing.assert_allclose(
    model.apply(params, IDS, MASK, embedding_table=table), model.apply(params, IDS, MASK), atol=1e-5
  )


def test_sharded_jit_matches_single_device():
  assert jax.device_count() == 8, 'tests expect 8 fake CPU devices (conftest sets XLA_FLAGS)'
  mesh = jax.make_mesh((8,), ('data',), axis_types=(AxisType.Auto,))
  ids = jax.random.randint(jax.random.key(0), (16, 12), 1, 30522)
  mask = jnp.ones_like(ids)
  model = small()
  params = model.init(jax.random.key(0), ids, mask)
  single = jax.jit(model.apply)(params, ids, mask)
  sharded_ids = jax.device_put(ids, NamedSharding(mesh, P('data')))
  sharded_mask = jax.device_put(mask, NamedSharding(mesh, P('data')))
  out = jax.jit(model.apply)(params, sharded_ids, sharded_mask)
  np.testing.assert_allclose(out, single, atol=1e-5)


@pytest.mark.parametrize(
  'kwargs,match',
  [
    (dict(d_model=30, num_heads=4), 'divisible by model.num_heads'),
    (dict(d_model=12, num_heads=4), r'must be even \(RoPE works on pairs\)'),
    (dict(embed_rank=0), 'model.embed_rank must be >= 1, got 0'),
    (dict(ffn_hidden=0), r'model.ffn_hidden \(or model.ffn_multiplier x d_model\) must be >= 1'),
    (dict(qr_modulus=-1), 'model.qr_modulus'),
    (dict(embedding='table'), 'model.embedding'),
    (dict(pooling='cls'), 'model.pooling'),
    (dict(rope='alibi'), 'model.rope'),
    (dict(d_model=31, num_heads=1), 'even'),
    (dict(vocab_size=1), 'vocab_size must be >= 2'),
    (dict(basis_vocab_size=8000), 'basis_vocab_size .8000. is smaller than the vocabulary'),
  ],
)
def test_bad_configuration_fails_before_compute(kwargs, match):
  with pytest.raises(ValueError, match=match):
    model = small(**kwargs)
    model.init(jax.random.key(0), IDS, MASK)


def test_evaluation_compiles_once_per_shape_whatever_the_parameters():
  """Each evaluation of a training run has new parameters; they must not trigger a recompile."""
  import types  # pylint: disable=import-outside-toplevel

  from pete_jax import evaluate  # pylint: disable=import-outside-toplevel

  model = small()
  apply = evaluate.jit_apply(model)
  short, long = [101, 2023, 102], [101] + [2023, 2003, 1037] * 6 + [102]
  sts = types.SimpleNamespace(
    a_ids=[short, long, short, long], b_ids=[long, short, short, long],
    scores=np.array([1.0, 2.0, 4.0, 5.0]))  # fmt: skip
  results = []
  for seed in range(3):
    params = model.init(jax.random.key(seed), IDS, MASK)['params']
    results.append(evaluate.sts_eval(evaluate.encoder_fn(apply, params), sts, (8, 32), 2))
    assert apply._cache_size() == 2  # one compilation per padded shape: [2, 8] and [2, 32]
  assert results[0]['pearson'] != results[1]['pearson']  # the parameters do reach the model
