"""Fixed codes computed from the integer id itself: the controls of issue 17.

They replace the Fourier basis inside ``FourierEmbed`` (``model.basis='random'`` or
``'binary'``), with the same residual MLP and RMSNorm after them, so a comparison with
the Fourier basis isolates the structure of the code:

* ``random``: a deterministic pseudo-random vector per id, computed on the fly from a
  32-bit integer hash (no stored table). Distinct ids get unrelated codes; nothing
  about neighbouring ids is shared. The control for the paper's claim that the
  smooth structure of T(p) over the ids carries information.
* ``binary``: the bits of the id as +-1 features (the first ceil(log2 V) features;
  the rest are zero): the smallest code that tells every id apart.
"""

import jax
import jax.numpy as jnp
import numpy as np

# Root mean square of the codes: that of the Fourier features (sin and cos have
# RMS 1/sqrt(2)), so the residual MLP starts at the same scale as PETE's.
CODE_RMS = float(np.sqrt(0.5))


def mix32(x: jax.Array) -> jax.Array:
  """A 32-bit integer hash (Wellons' lowbias32 finaliser): uint32 in, uint32 out, bijective."""
  x = x.astype(jnp.uint32)
  x = x ^ (x >> 16)
  x = x * jnp.uint32(0x7FEB352D)
  x = x ^ (x >> 15)
  x = x * jnp.uint32(0x846CA68B)
  return x ^ (x >> 16)


def random_codes(ids: jax.Array, vocab_size: int, dim: int) -> jax.Array:
  """``[..., dim]`` uniform codes with RMS ``CODE_RMS``: hash of (id, feature index)."""
  del vocab_size  # each id's code depends on the id alone
  index = ids.astype(jnp.uint32)[..., None] * jnp.uint32(dim) + jnp.arange(dim, dtype=jnp.uint32)
  uniform = (mix32(index) >> 8).astype(jnp.float32) / float(1 << 24)  # [0, 1), 24 bits
  return (2.0 * uniform - 1.0) * float(np.sqrt(3.0) * CODE_RMS)


def num_bits(vocab_size: int) -> int:
  """Bits that tell every id in [0, V) apart."""
  return max(1, int(vocab_size - 1).bit_length())


def binary_code(ids: jax.Array, vocab_size: int, dim: int) -> jax.Array:
  """``[..., dim]``: bit j of the id as -1/+1 in feature j < ceil(log2 V), zeros after."""
  bits = num_bits(vocab_size)
  if bits > dim:
    raise ValueError(f'the binary code of V = {vocab_size} needs {bits} features, dim is {dim}.')
  shifts = jnp.arange(bits, dtype=jnp.int32)
  code = ((ids.astype(jnp.int32)[..., None] >> shifts) & 1).astype(jnp.float32) * 2.0 - 1.0
  return jnp.pad(code, [(0, 0)] * ids.ndim + [(0, dim - bits)])


ID_CODES = {'random': random_codes, 'binary': binary_code}
