"""Encoder building blocks: RoPE, multi-head attention, GeGLU feed-forward, post-norm block."""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

Dtype = Any
ROPE_KINDS = ('standard', 'official')


def rope_angles(positions: jax.Array, head_dim: int, base: float = 10000.0) -> jax.Array:
  """``theta[p, i] = p * base^(-2 (i mod hd/2) / hd)``: hd/2 frequencies listed twice."""
  inv_freq = 1.0 / base ** (jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim)
  theta = positions.astype(jnp.float32)[:, None] * inv_freq[None, :]
  return jnp.concatenate([theta, theta], axis=-1)


def apply_rope(u: jax.Array, positions: jax.Array, kind: str = 'standard') -> jax.Array:
  """Rotary position encoding of ``u`` [..., L, H, hd] at ``positions`` [L].

  'standard' rotates the pairs (i, i + hd/2) by ``theta[p, i]`` (the half-split
  form of RoPE): a rotation, so q.k depends only on the relative position.

  'official' is the official code's arithmetic, which is not a rotation:
  ``y[2m] = -u[2m+1], y[2m+1] = u[2m]`` and
  ``out[i] = y[i] cos(theta[p, i]) + y[i-1 mod hd] sin(theta[p, i])``.
  The published weights were trained with it, so reproducing them needs it.
  """
  head_dim = u.shape[-1]
  theta = rope_angles(positions, head_dim)[:, None, :]  # [L, 1, hd]
  cos, sin = jnp.cos(theta).astype(u.dtype), jnp.sin(theta).astype(u.dtype)
  if kind == 'standard':
    half = head_dim // 2
    rotated = jnp.concatenate([-u[..., half:], u[..., :half]], axis=-1)
    return u * cos + rotated * sin
  if kind == 'official':
    even, odd = u[..., 0::2], u[..., 1::2]
    y = jnp.stack([-odd, even], axis=-1).reshape(u.shape)
    return y * cos + jnp.roll(y, 1, axis=-1) * sin
  raise ValueError(f'Unknown rope kind {kind!r}; expected one of {ROPE_KINDS}.')


class MultiHeadAttention(nn.Module):
  """Self-attention with one fused q/k/v projection, RoPE and masking of padded keys.

  Attributes:
    num_heads: number of heads; d_model must be divisible by it.
    rope: 'standard' or 'official' RoPE arithmetic (see :func:`apply_rope`).
    dropout_rate: dropout on the attention weights.
  """

  num_heads: int
  rope: str = 'standard'
  dropout_rate: float = 0.0
  use_bias: bool = True
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array, deterministic: bool = True) -> jax.Array:
    batch, length, d_model = x.shape
    head_dim = d_model // self.num_heads
    dense = lambda n, name: nn.Dense(
      n, use_bias=self.use_bias, dtype=self.dtype, param_dtype=self.param_dtype, name=name
    )
    qkv = dense(3 * d_model, 'qkv')(x).reshape(batch, length, 3, self.num_heads, head_dim)
    q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
    positions = jnp.arange(length)
    q = apply_rope(q, positions, self.rope)
    k = apply_rope(k, positions, self.rope)
    scores = jnp.einsum('bqhd,bkhd->bhqk', q, k) / jnp.sqrt(head_dim).astype(self.dtype)
    # Padded keys get the lowest finite value: the same softmax as -inf whenever a
    # row has at least one real key, and no NaN when it has none.
    key_mask = mask[:, None, None, :].astype(bool)
    scores = jnp.where(key_mask, scores, jnp.finfo(scores.dtype).min)
    weights = jax.nn.softmax(scores.astype(jnp.float32), axis=-1).astype(self.dtype)
    weights = nn.Dropout(self.dropout_rate)(weights, deterministic=deterministic)
    out = jnp.einsum('bhqk,bkhd->bqhd', weights, v).reshape(batch, length, d_model)
    return dense(d_model, 'out')(out)


class GeGLU(nn.Module):
  """Feed-forward ``Dense(features)(a * gelu(g))`` with ``[a, g] = Dense(2 hidden)(x)`` (exact erf
  GELU)."""

  hidden: int
  features: int
  use_bias: bool = True
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    dense = lambda n, name: nn.Dense(
      n, use_bias=self.use_bias, dtype=self.dtype, param_dtype=self.param_dtype, name=name
    )
    a, g = jnp.split(dense(2 * self.hidden, 'wi')(x), 2, axis=-1)
    return dense(self.features, 'wo')(a * nn.gelu(g, approximate=False))


def rms_norm(eps: float, dtype: Dtype, param_dtype: Dtype, name: str | None = None) -> nn.RMSNorm:
  """RMSNorm with a learned scale: ``scale * v / sqrt(mean(v^2) + eps)``."""
  return nn.RMSNorm(epsilon=eps, dtype=dtype, param_dtype=param_dtype, name=name)


class EncoderBlock(nn.Module):
  """Post-norm block: ``h1 = norm1(x + attn(x))``, ``out = norm2(h1 + ffn(h1))``.

  With ``config.drop_ffn_output`` (the official code's Fourier model) the FFN is
  applied but its output is discarded and ``out = norm2(h1 + attn(x))``: the
  attention output is added a second time. XLA removes the dead FFN from the
  compiled step; its parameters still exist so that official checkpoints load.

  Attributes:
    config: the encoder's ``EncoderConfig`` (num_heads, ffn_hidden, rope,
      dropout_rate, drop_ffn_output, use_bias, rms_eps, dtypes).
  """

  config: Any

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array, deterministic: bool = True) -> jax.Array:
    c = self.config
    dropout = nn.Dropout(c.dropout_rate)
    attn = MultiHeadAttention(
      num_heads=c.num_heads,
      rope=c.rope,
      dropout_rate=c.dropout_rate,
      use_bias=c.use_bias,
      dtype=c.dtype,
      param_dtype=c.param_dtype,
      name='attention',
    )(x, mask, deterministic)
    attn = dropout(attn, deterministic=deterministic)
    h1 = rms_norm(c.rms_eps, c.dtype, c.param_dtype, 'norm1')(x + attn)
    ffn = GeGLU(
      hidden=c.ffn_hidden,
      features=x.shape[-1],
      use_bias=c.use_bias,
      dtype=c.dtype,
      param_dtype=c.param_dtype,
      name='ffn',
    )(h1)
    update = attn if c.drop_ffn_output else dropout(ffn, deterministic=deterministic)
    return rms_norm(c.rms_eps, c.dtype, c.param_dtype, 'norm2')(h1 + update)
