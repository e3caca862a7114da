"""Smaller learned tables: the well-known ways to cut a V x d table's parameters (issue 17).

Each has ``FourierEmbed``'s signature (ids ``[...]`` -> ``[..., d]``, ``embedding_table()``,
``attend()``) and the learned baseline's output stage (``TableEmbed``: RMSNorm, then
dropout), so that only the way a token's vector is stored differs from ``LearnedEmbed``.
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from pete_jax.embeddings import TableEmbed
from pete_jax.id_codes import mix32


class FactorisedEmbed(TableEmbed):
  """A ``V x e`` table and a shared ``e -> d`` projection (Lan et al. 2020, ALBERT):
  ``V e + e d`` parameters instead of ``V d``.

  Attributes:
    rank: the inner width e.
  """

  rank: int = 128

  def vectors(self, ids: jax.Array) -> jax.Array:
    small = self.table(self.num_embeddings, self.rank, 'table')(ids)
    return nn.Dense(
      self.features, use_bias=False, dtype=self.dtype, param_dtype=self.param_dtype, name='proj'
    )(small)


def hash_bucket(ids: jax.Array, buckets: int, salt: int = 0) -> jax.Array:
  """The bucket in [0, buckets) of each id under the ``salt``-th fixed hash function."""
  salted = ids.astype(jnp.uint32) ^ jnp.uint32((0x9E3779B9 * (salt + 1)) & 0xFFFFFFFF)
  return (mix32(salted) % jnp.uint32(buckets)).astype(jnp.int32)


class HashedEmbed(TableEmbed):
  """``buckets`` shared rows of d, ids mapped to them by fixed hashes.

  With ``num_hashes = 1`` this is the hashing trick (Weinberger et al. 2009): ids that
  collide share a vector. With k > 1 it is the hash embedding of Svenstrup et al.
  (2017): the sum of k hashed rows weighted by learned per-id importance weights
  (``V x k`` parameters), which tells most colliding ids apart.

  Attributes:
    buckets: the number of shared rows B.
    num_hashes: k.
  """

  buckets: int = 4096
  num_hashes: int = 1

  def vectors(self, ids: jax.Array) -> jax.Array:
    rows = self.table(self.buckets, self.features, 'table')
    if self.num_hashes == 1:
      return rows(hash_bucket(ids, self.buckets))
    weights = self.table(self.num_embeddings, self.num_hashes, 'importance')(ids)
    hashed = jnp.stack([rows(hash_bucket(ids, self.buckets, j)) for j in range(self.num_hashes)])
    return jnp.einsum('...k,k...d->...d', weights, hashed)


class QuotientRemainderEmbed(TableEmbed):
  """Two small tables indexed by ``p // m`` and ``p % m``, combined by elementwise
  product (Shi et al. 2020, the quotient-remainder trick): every id gets a distinct
  pair of rows with ``(ceil(V / m) + m) d`` parameters.

  Attributes:
    modulus: m; 0 = ceil(sqrt(V)), which minimises the parameters.
  """

  modulus: int = 0

  def resolved_modulus(self) -> int:
    return self.modulus or math.isqrt(self.num_embeddings - 1) + 1

  def vectors(self, ids: jax.Array) -> jax.Array:
    m = self.resolved_modulus()
    quotients = -(-self.num_embeddings // m)
    q = self.table(quotients, self.features, 'quotient')(ids // m)
    return q * self.table(m, self.features, 'remainder')(ids % m)
