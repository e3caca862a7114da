"""Token embeddings: PETE's Fourier embedding and the learned-table baseline.

Both take integer ids ``[...]`` and return ``[..., features]``, so either drops in
where ``flax.linen.Embed`` stood.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from pete_jax import basis as basis_lib
from pete_jax.layers import GeGLU, rms_norm

Dtype = Any
EMBED_MLPS = ('linear', 'geglu', 'none')


class VocabularyEmbed(nn.Module):
  """Base of every embedding here: ids in [0, V) -> ``[..., features]``, served as a table.

  Once trained, any of them is a ``[V, d]`` table: ``embedding_table`` materialises it so
  that a model serves with a plain lookup, and ``attend`` ties an output layer to it.
  """

  num_embeddings: int
  features: int

  def embedding_table(self) -> jax.Array:
    """The whole ``[V, d]`` table (dropout off)."""
    return self(jnp.arange(self.num_embeddings), deterministic=True)

  def attend(self, query: jax.Array) -> jax.Array:
    """``query @ table.T``: logits over the vocabulary, as ``nn.Embed.attend``."""
    return jnp.einsum('...d,vd->...v', query, self.embedding_table())


class FourierEmbed(VocabularyEmbed):
  """PETE embedding: ``RMSNorm(MLP(T(p)) + T(p))`` with T a fixed basis of the id p.

  The basis has no parameters; only the small MLP (shared by all tokens) and the
  RMSNorm scale are learned, so the parameter count does not grow with the
  vocabulary. There is no dropout (the paper reports that it hurts this model).

  Attributes:
    num_embeddings: vocabulary size V (ids are in [0, V)).
    features: embedding width d.
    basis: a key of ``pete_jax.basis.FIXED_CODES``: 'fourier' (paper), 'chebyshev',
      'legendre', 'hermite', 'laguerre', or 'hermite_stretched' / 'laguerre_stretched'
      (x stretched so that the id range spans their oscillatory range); or the controls
      'random' / 'binary' (``pete_jax/id_codes.py``: codes of the id, no normalisation).
    normalisation: 'vocab' (paper) or 'max_seq_len' (current official code).
    basis_vocab_size: N of the 'vocab' normalisation; None = num_embeddings. The
      official weights need 30552.
    max_seq_len: N of the 'max_seq_len' normalisation.
    mlp: 'linear' (one d->d layer, official code), 'geglu' (paper text) or 'none'.
    mlp_expansion: hidden width of the 'geglu' MLP in multiples of d.
  """

  basis: str = 'fourier'
  normalisation: str = 'vocab'
  basis_vocab_size: int | None = None
  max_seq_len: int = 128
  mlp: str = 'linear'
  mlp_expansion: int = 4
  use_bias: bool = True
  rms_eps: float = 1e-6
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  def __post_init__(self):
    basis_lib.check_basis_args(self.basis, self.num_embeddings, self.features)
    if self.mlp not in EMBED_MLPS:
      raise ValueError(f'Unknown embedding mlp {self.mlp!r}; expected one of {EMBED_MLPS}.')
    if self.normalisation not in basis_lib.NORMALISATIONS:
      raise ValueError(
        f'Unknown normalisation {self.normalisation!r}; expected one of {basis_lib.NORMALISATIONS}.'
      )
    if self.basis_vocab_size and self.basis_vocab_size < self.num_embeddings:
      raise ValueError(
        f'basis_vocab_size ({self.basis_vocab_size}) is smaller than the vocabulary '
        f'({self.num_embeddings}): ids past it would leave the basis range [-1, 1]. '
        'Use None (= V) or a value >= V.'
      )
    super().__post_init__()

  def features_of(self, ids: jax.Array) -> jax.Array:
    """The fixed basis T(ids), float32, before the MLP."""
    return basis_lib.basis_features(
      ids,
      self.basis_vocab_size or self.num_embeddings,
      self.features,
      basis=self.basis,
      normalisation=self.normalisation,
      max_seq_len=self.max_seq_len,
    )

  @nn.compact
  def __call__(self, ids: jax.Array, deterministic: bool = True) -> jax.Array:
    """``[..., features]`` for integer ``ids``; an id outside [0, V) gives NaNs (``nn.Embed``
    does so past V): a periodic basis would otherwise alias it silently onto another id."""
    del deterministic  # No dropout; the argument keeps the baseline's signature.
    ids = jnp.asarray(ids)
    if not jnp.issubdtype(ids.dtype, jnp.integer):
      raise TypeError(f'FourierEmbed takes integer token ids, got dtype {ids.dtype}.')
    t = self.features_of(ids).astype(self.dtype)
    if self.mlp == 'linear':
      t = t + nn.Dense(
        self.features,
        use_bias=self.use_bias,
        dtype=self.dtype,
        param_dtype=self.param_dtype,
        name='mlp',
      )(t)
    elif self.mlp == 'geglu':
      t = t + GeGLU(
        hidden=self.mlp_expansion * self.features,
        features=self.features,
        use_bias=self.use_bias,
        dtype=self.dtype,
        param_dtype=self.param_dtype,
        name='mlp',
      )(t)
    out = rms_norm(self.rms_eps, self.dtype, self.param_dtype, 'norm')(t)
    in_range = (ids >= 0) & (ids < self.num_embeddings)
    return jnp.where(in_range[..., None], out, jnp.nan)


class TableEmbed(VocabularyEmbed):
  """Base of the learned tables: ``vectors(ids)``, then RMSNorm and dropout.

  Subclasses define ``vectors``, which runs inside the compact ``__call__`` (so it
  may create its tables there); ``pete_jax/table_embeddings.py`` has the smaller ones.
  """

  dropout_rate: float = 0.0
  rms_eps: float = 1e-6
  # Std of the tables' normal init; 0: Flax's (1/sqrt(d), 0.0625 at d=256). Torch's
  # nn.Embedding (the official code's) draws N(0, 1): under Adam, whose steps do not scale
  # with the weights, a 16x smaller table moves 16x faster relative to its size.
  init_std: float = 0.0
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  def __post_init__(self):
    if self.num_embeddings < 2:
      raise ValueError(f'vocab_size must be >= 2, got {self.num_embeddings}.')
    super().__post_init__()

  def table(self, rows: int, width: int, name: str) -> nn.Embed:
    init = nn.initializers.normal(self.init_std) if self.init_std else nn.linear.default_embed_init
    return nn.Embed(
      rows, width, embedding_init=init, dtype=self.dtype, param_dtype=self.param_dtype, name=name
    )

  def vectors(self, ids: jax.Array) -> jax.Array:
    raise NotImplementedError

  @nn.compact
  def __call__(self, ids: jax.Array, deterministic: bool = True) -> jax.Array:
    h = rms_norm(self.rms_eps, self.dtype, self.param_dtype, 'norm')(self.vectors(ids))
    return nn.Dropout(self.dropout_rate)(h, deterministic=deterministic)


class LearnedEmbed(TableEmbed):
  """The baseline: a learned ``[V, d]`` table, then RMSNorm and dropout.

  The padding id's vector is zero, as the paper's ``Embed(V, d)`` with padding id 0
  (torch's ``padding_idx``): its row gets no gradient and padded positions enter the
  encoder as zeros. With masked attention and pooling this changes nothing; where
  padding is averaged in (``pooling='mean_all'``, the official code's) it does.
  Same call signature as :class:`FourierEmbed`; ``deterministic`` switches dropout
  off.
  """

  padding_id: int | None = 0  # None: every row learned

  def vectors(self, ids: jax.Array) -> jax.Array:
    vectors = self.table(self.num_embeddings, self.features, 'table')(ids)
    if self.padding_id is None:
      return vectors
    return jnp.where((ids == self.padding_id)[..., None], 0.0, vectors).astype(vectors.dtype)
