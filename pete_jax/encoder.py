"""The sentence encoder: token embedding -> post-norm blocks -> mean pooling -> tanh pooler."""

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from pete_jax.embeddings import FourierEmbed, LearnedEmbed
from pete_jax.errors import ConfigError
from pete_jax.table_embeddings import FactorisedEmbed, HashedEmbed, QuotientRemainderEmbed
from pete_jax.layers import ROPE_KINDS, EncoderBlock

Dtype = Any
# 'fourier' (PETE, any fixed code of pete_jax.basis), 'learned' (the paper's baseline) and
# the smaller tables of pete_jax/table_embeddings.py.
EMBEDDINGS = ('fourier', 'learned', 'factorised', 'hashed', 'quotient_remainder')
POOLINGS = ('masked_mean', 'mean_all')
DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16, 'float16': jnp.float16}


def mean_pool(hidden: jax.Array, mask: jax.Array, pooling: str = 'masked_mean') -> jax.Array:
  """Mean of ``hidden`` [B, L, d] over positions.

  'masked_mean' averages the real tokens only, so a sentence's vector does not
  depend on how much padding its batch has. 'mean_all' (official code) averages
  every position, padding included.
  """
  if pooling == 'mean_all':
    return hidden.mean(axis=1)
  if pooling == 'masked_mean':
    m = mask.astype(hidden.dtype)[..., None]
    return (hidden * m).sum(axis=1) / jnp.maximum(m.sum(axis=1), 1)
  raise ValueError(f'Unknown pooling {pooling!r}; expected one of {POOLINGS}.')


@dataclasses.dataclass(frozen=True)
class EncoderConfig:
  """Everything that defines a SentenceEncoder, fixed once (as the Flax lm1b example's config).

  Built from a run's ``config.model`` by :meth:`from_config` and handed whole to
  the encoder and its blocks, so no module copies fields one by one. Field
  meanings are documented in ``pete_jax/default_config.py`` (section ``model``);
  invalid combinations raise ConfigError here (see :meth:`problems`), before any module is
  built.
  """

  vocab_size: int
  d_model: int = 256
  num_layers: int = 1
  num_heads: int = 1
  ffn_hidden: int = 1024
  embedding: str = 'fourier'
  basis: str = 'fourier'
  normalisation: str = 'vocab'
  basis_vocab_size: int | None = None
  max_seq_len: int = 128
  embed_mlp: str = 'linear'
  embed_mlp_expansion: int = 4
  embed_rank: int = 128
  hash_buckets: int = 4096
  hash_functions: int = 1
  qr_modulus: int = 0
  table_init_std: float = 0.0
  dropout_rate: float = 0.0
  rope: str = 'standard'
  pooling: str = 'masked_mean'
  drop_ffn_output: bool = False
  use_bias: bool = True
  rms_eps: float = 1e-6
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  def __post_init__(self):
    if problems := self.problems():
      raise ConfigError(problems)

  def problems(self) -> list[str]:
    """What makes this encoder impossible to build, one line per field (the one list of these
    rules: ``configuration.validate`` reports them for a run's config before any compute)."""
    found = [
      f'{field} must be one of {choices}, got {value!r}'
      for field, value, choices in (
        ('model.embedding', self.embedding, EMBEDDINGS),
        ('model.pooling', self.pooling, POOLINGS),
        ('model.rope', self.rope, ROPE_KINDS),
      )
      if value not in choices
    ]
    if self.d_model < 2 or self.num_heads < 1 or self.d_model % self.num_heads:
      found.append(
        f'model.d_model ({self.d_model}) must be divisible by model.num_heads ({self.num_heads})'
      )
    elif (self.d_model // self.num_heads) % 2:
      found.append(
        f'model.d_model / model.num_heads = {self.d_model // self.num_heads} must be even '
        '(RoPE works on pairs)'
      )
    at_least = (
      ('model.num_layers', self.num_layers, 1),
      ('model.ffn_hidden (or model.ffn_multiplier x d_model)', self.ffn_hidden, 1),
      ('model.embed_rank', self.embed_rank, 1),
      ('model.hash_buckets', self.hash_buckets, 1),
      ('model.hash_functions', self.hash_functions, 1),
      ('model.qr_modulus (0 = ceil(sqrt V))', self.qr_modulus, 0),
    )
    found += [
      f'{field} must be >= {low}, got {value}' for field, value, low in at_least if value < low
    ]
    if not 0.0 <= self.dropout_rate < 1.0:
      found.append(f'model.dropout_rate must be in [0, 1), got {self.dropout_rate}')
    return found

  @classmethod
  def from_config(
    cls,
    model: ml_collections.ConfigDict,
    vocab_size: int,
    max_len: int,
    compute_dtype: str = 'float32',
  ) -> 'EncoderConfig':
    """The encoder of a config's ``model`` section.

    Args:
      model: the ``config.model`` section.
      vocab_size: the vocabulary size (``model.vocab_size`` wins when non-zero).
      max_len: ``config.data.max_len`` (N of the 'max_seq_len' normalisation).
      compute_dtype: 'float32', 'bfloat16' or 'float16'; parameters stay float32.
    """
    return cls(
      vocab_size=model.vocab_size or vocab_size,
      d_model=model.d_model,
      num_layers=model.num_layers,
      num_heads=model.num_heads,
      ffn_hidden=model.ffn_hidden or int(round(model.ffn_multiplier * model.d_model)),
      embedding=model.embedding,
      basis=model.basis,
      normalisation=model.normalisation,
      basis_vocab_size=model.basis_vocab_size or None,
      max_seq_len=max_len,
      embed_mlp=model.embed_mlp,
      embed_mlp_expansion=model.embed_mlp_expansion,
      embed_rank=model.embed_rank,
      hash_buckets=model.hash_buckets,
      hash_functions=model.hash_functions,
      qr_modulus=model.qr_modulus,
      table_init_std=model.table_init_std,
      dropout_rate=model.dropout_rate,
      rope=model.rope,
      pooling=model.pooling,
      drop_ffn_output=model.drop_ffn_output,
      use_bias=model.use_bias,
      rms_eps=model.rms_eps,
      dtype=DTYPES[compute_dtype],
    )


class SentenceEncoder(nn.Module):
  """``(token_ids [B, L], mask [B, L]) -> sentence vector [B, d]``.

  The paper's two models differ only in ``config.embedding``: 'fourier' (PETE)
  or 'learned' (the baseline table); the other choices are the smaller tables
  PETE is compared with (issue 17).
  """

  config: EncoderConfig

  def setup(self):
    c = self.config
    if c.embedding == 'fourier':
      self.embed = FourierEmbed(
        num_embeddings=c.vocab_size,
        features=c.d_model,
        basis=c.basis,
        normalisation=c.normalisation,
        basis_vocab_size=c.basis_vocab_size,
        max_seq_len=c.max_seq_len,
        mlp=c.embed_mlp,
        mlp_expansion=c.embed_mlp_expansion,
        use_bias=c.use_bias,
        rms_eps=c.rms_eps,
        dtype=c.dtype,
        param_dtype=c.param_dtype,
      )
    else:
      tables = {
        'learned': (LearnedEmbed, {}),
        'factorised': (FactorisedEmbed, {'rank': c.embed_rank}),
        'hashed': (HashedEmbed, {'buckets': c.hash_buckets, 'num_hashes': c.hash_functions}),
        'quotient_remainder': (QuotientRemainderEmbed, {'modulus': c.qr_modulus}),
      }
      module, extra = tables[c.embedding]
      self.embed = module(
        num_embeddings=c.vocab_size,
        features=c.d_model,
        dropout_rate=c.dropout_rate,
        rms_eps=c.rms_eps,
        init_std=c.table_init_std,
        dtype=c.dtype,
        param_dtype=c.param_dtype,
        **extra,
      )
    self.blocks = [EncoderBlock(config=c) for _ in range(c.num_layers)]
    self.pooler = nn.Dense(c.d_model, use_bias=c.use_bias, dtype=c.dtype, param_dtype=c.param_dtype)

  def __call__(
    self,
    ids: jax.Array,
    mask: jax.Array,
    deterministic: bool = True,
    embedding_table: jax.Array | None = None,
  ) -> jax.Array:
    """Pooled sentence vectors.

    Args:
      ids: int token ids [B, L].
      mask: 1 for real tokens, 0 for padding [B, L].
      deterministic: disables dropout (evaluation).
      embedding_table: optional materialised ``[V, d]`` table (from
        :meth:`embedding_table`); when given, embeddings are a plain lookup.
    """
    if embedding_table is None:
      h = self.embed(ids, deterministic=deterministic)
    else:
      h = jnp.take(embedding_table, ids, axis=0).astype(self.config.dtype)
    self.sow('intermediates', 'embedding', h)
    for block in self.blocks:
      h = block(h, mask, deterministic)
      self.sow('intermediates', 'layers', h)
    pooled = mean_pool(h, mask, self.config.pooling)
    self.sow('intermediates', 'mean', pooled)
    return jnp.tanh(self.pooler(pooled)).astype(jnp.float32)

  def embedding_table(self) -> jax.Array:
    """The ``[V, d]`` embedding table (for serving with a lookup)."""
    return self.embed.embedding_table()


def encoder_from_config(
  model: ml_collections.ConfigDict, vocab_size: int, max_len: int, compute_dtype: str = 'float32'
) -> SentenceEncoder:
  """The SentenceEncoder of a config's ``model`` section (see ``EncoderConfig.from_config``)."""
  return SentenceEncoder(EncoderConfig.from_config(model, vocab_size, max_len, compute_dtype))
