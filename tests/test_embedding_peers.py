"""The smaller tables and fixed id codes PETE is compared with (issue 17)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pete_jax import EncoderConfig, SentenceEncoder
from pete_jax.embeddings import FourierEmbed
from pete_jax.id_codes import CODE_RMS, binary_code, num_bits, random_codes
from pete_jax.table_embeddings import (
  FactorisedEmbed,
  HashedEmbed,
  QuotientRemainderEmbed,
  hash_bucket,
)

V, D = 30522, 256
IDS = jnp.array([[101, 2023, 2003, 1037, 102], [101, 7592, 102, 0, 0]])


def n_params(module, ids=IDS):
  params = module.init(jax.random.key(0), ids)
  return sum(x.size for x in jax.tree.leaves(params))


@pytest.mark.parametrize(
  'module, expected',
  [
    (FactorisedEmbed(V, D, rank=8), V * 8 + 8 * D + D),
    (FactorisedEmbed(V, D, rank=128), V * 128 + 128 * D + D),
    (HashedEmbed(V, D, buckets=1024), 1024 * D + D),
    (HashedEmbed(V, D, buckets=1024, num_hashes=2), 1024 * D + V * 2 + D),
    (QuotientRemainderEmbed(V, D), (175 + 175) * D + D),  # ceil(30522 / 175) = 175
    (QuotientRemainderEmbed(V, D, modulus=1000), (31 + 1000) * D + D),
    (FourierEmbed(V, D, basis='random'), D * D + D + D),
    (FourierEmbed(V, D, basis='binary'), D * D + D + D),
  ],
)
def test_parameter_counts(module, expected):
  """Tables: their rows plus the RMSNorm scale; codes: the linear MLP plus the scale."""
  assert n_params(module) == expected


def test_random_codes_are_fixed_distinct_and_at_the_fourier_scale():
  ids = jnp.arange(V)
  codes = np.asarray(random_codes(ids, V, 64))
  np.testing.assert_array_equal(codes, np.asarray(random_codes(ids, V, 64)))
  assert len(np.unique(codes.round(5), axis=0)) == V
  assert abs(float(np.sqrt((codes**2).mean())) - CODE_RMS) < 0.01
  # Neighbouring ids are no closer than random pairs (no structure over the ids).
  near = np.linalg.norm(codes[1:] - codes[:-1], axis=1).mean()
  far = np.linalg.norm(codes[np.random.default_rng(0).permutation(V)] - codes, axis=1).mean()
  assert abs(near / far - 1) < 0.02


def test_binary_code_is_the_bits_of_the_id():
  assert num_bits(V) == 15 and num_bits(2) == 1
  code = np.asarray(binary_code(jnp.array([0, 5, V - 1]), V, 20))
  bits = (code[:, :15] > 0).astype(int)
  assert [int(''.join(map(str, b[::-1])), 2) for b in bits] == [0, 5, V - 1]
  assert set(np.unique(code[:, :15])) == {-1.0, 1.0} and not code[:, 15:].any()
  with pytest.raises(ValueError, match='needs 15 features'):
    binary_code(jnp.array([1]), V, 8)


def test_hashing_trick_shares_rows_of_colliding_ids_and_hash_embedding_separates_them():
  ids = jnp.arange(V)
  buckets = np.asarray(hash_bucket(ids, 64))
  assert buckets.min() >= 0 and buckets.max() < 64 and len(np.unique(buckets)) == 64
  a, b = (int(i) for i in np.flatnonzero(buckets == buckets[7])[:2])
  pair = jnp.array([a, b])
  plain = HashedEmbed(V, 16, buckets=64)
  out = plain.apply(plain.init(jax.random.key(0), pair), pair)
  np.testing.assert_allclose(out[0], out[1])
  mixed = HashedEmbed(V, 16, buckets=64, num_hashes=2)
  out = mixed.apply(mixed.init(jax.random.key(0), pair), pair)
  assert float(jnp.abs(out[0] - out[1]).max()) > 1e-3


def test_quotient_remainder_gives_every_id_its_own_vector():
  module = QuotientRemainderEmbed(1000, 8, dropout_rate=0.0)
  table = module.apply(module.init(jax.random.key(0), IDS), method=module.embedding_table)
  assert table.shape == (1000, 8)
  assert len(np.unique(np.asarray(table).round(5), axis=0)) == 1000


@pytest.mark.parametrize(
  'kw',
  [
    {'embedding': 'factorised', 'embed_rank': 8},
    {'embedding': 'hashed', 'hash_buckets': 256},
    {'embedding': 'hashed', 'hash_buckets': 256, 'hash_functions': 2},
    {'embedding': 'quotient_remainder'},
    {'embedding': 'fourier', 'basis': 'random'},
    {'embedding': 'fourier', 'basis': 'binary'},
  ],
)
def test_every_peer_drops_into_the_encoder(kw):
  model = SentenceEncoder(EncoderConfig(vocab_size=V, d_model=32, ffn_hidden=16, **kw))
  mask = (IDS > 0).astype(jnp.int32)
  params = model.init(jax.random.key(0), IDS, mask)
  out = model.apply(params, IDS, mask)
  table = model.apply(params, method=model.embedding_table)
  served = model.apply(params, IDS, mask, embedding_table=table)
  assert out.shape == (2, 32) and table.shape == (V, 32)
  np.testing.assert_allclose(out, served, atol=1e-5)
  query = jax.random.normal(jax.random.key(1), (3, 32))
  logits = model.apply(params, query, method=lambda m, q: m.embed.attend(q))
  assert logits.shape == (3, V)
  np.testing.assert_allclose(logits, query @ table.T, rtol=1e-4, atol=1e-4)
