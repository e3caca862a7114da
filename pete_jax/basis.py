"""Fixed (parameter-free) bases that turn integer token ids into feature vectors.

Everything here is a pure, jittable function of the ids: any JAX code can call it
without Flax. Every basis first maps an id ``p`` to ``x`` in [-1, 1] (see
:func:`normalise_ids`) and then expands ``x`` to ``dim`` features.
"""

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from pete_jax.id_codes import ID_CODES

NORMALISATIONS = ('vocab', 'max_seq_len')


def normalise_ids(
  ids: jax.Array, vocab_size: int, *, normalisation: str = 'vocab', max_seq_len: int = 128
) -> jax.Array:
  """Maps integer ids to float32 ``x = 2 p / (N - 1) - 1``.

  Args:
    ids: integer token ids, any shape.
    vocab_size: N of the paper's normalisation (the vocabulary size V). With it,
      id 0 lands on x = -1 and id V-1 on x = 1.
    normalisation: 'vocab' (the paper: N = vocab_size) or 'max_seq_len' (the
      current official code: N = max_seq_len, so x spans about [-1, 2V/N]). With
      'max_seq_len' ids N - 1 apart differ by 2 in x, a whole period of every
      integer-frequency Fourier feature: the Fourier basis sees only p mod (N - 1)
      (127 codes for N = 128), up to float32 rounding.
    max_seq_len: N of the 'max_seq_len' normalisation.

  Returns:
    float32 array of the shape of ``ids``. The division is one IEEE float32
    division, as in the official CUDA kernel.
  """
  if normalisation not in NORMALISATIONS:
    raise ValueError(f'Unknown normalisation {normalisation!r}; expected one of {NORMALISATIONS}.')
  n = vocab_size if normalisation == 'vocab' else max_seq_len
  if n < 2:
    raise ValueError(f'The normalisation constant must be >= 2, got {n} ({normalisation}).')
  return 2.0 * _divide_exactly(ids.astype(jnp.float32), n - 1) - 1.0


def _split(v):
  """Veltkamp split of float32 values into 12-bit high and low halves (hi + lo == v)."""
  c = 4097.0 * v
  hi = c - (c - v)
  return hi, v - hi


def _divide_exactly(p: jax.Array, d: int) -> jax.Array:
  """Correctly rounded float32 ``p / d`` for integer-valued ``p`` and ``d`` < 2**24.

  XLA's vectorised CPU division is not IEEE-exact (30521 / 30521 gives
  0.99999994), which would move id V-1 off x = 1 and shift the phase of the
  highest frequencies by up to 1e-4. One correction step with an exact residual
  (Dekker's product, no FMA needed) restores the IEEE quotient.
  """
  inv = jnp.float32(1.0 / d)
  q = p * inv
  d_hi = float(np.float32(d) - np.float32(d) % 4096)
  d_lo = float(d) - d_hi
  q_hi, q_lo = _split(q)
  prod = q * jnp.float32(d)
  err = ((q_hi * d_hi - prod) + q_hi * d_lo + q_lo * d_hi) + q_lo * d_lo
  residual = (p - prod) - err  # p - prod is exact (Sterbenz), so residual = p - q d exactly
  return q + residual * inv


def _sin_cos_pi(y: jax.Array) -> tuple[jax.Array, jax.Array]:
  """sin(pi y) and cos(pi y) for float32 ``y``, accurate for large ``y``.

  ``y - 2 round(y / 2)`` is exact in float32, so the argument reduction loses
  nothing; multiplying the full ``y`` by pi first would round the angle to the
  float32 spacing of ``pi y`` (3e-5 near 400). This matches the official kernel,
  which multiplies the float32 product ``k x`` by pi in float64.
  """
  r = y - 2.0 * jnp.round(0.5 * y)
  angle = jnp.float32(np.pi) * r
  return jnp.sin(angle), jnp.cos(angle)


def fourier_from_x(x: jax.Array, dim: int) -> jax.Array:
  """Interleaved sin/cos features: ``[sin(pi x), cos(pi x), sin(2 pi x), cos(2 pi x), ...]``.

  Feature i (i = 0 .. dim-1) has frequency ``k = i // 2 + 1`` and is
  ``sin(k pi x)`` for even i, ``cos(k pi x)`` for odd i. Each sine and cosine is
  computed once: dim/2 sines and dim/2 cosines.
  """
  if dim % 2:
    raise ValueError(f'The Fourier basis needs an even dim (sin/cos pairs), got {dim}.')
  k = jnp.arange(1, dim // 2 + 1, dtype=jnp.float32)
  sin, cos = _sin_cos_pi(x[..., None] * k)
  return jnp.stack([sin, cos], axis=-1).reshape(*x.shape, dim)


def _recurrence(
  x: jax.Array,
  dim: int,
  first: jax.Array,
  second: jax.Array,
  step: Callable[[jax.Array, jax.Array, jax.Array], jax.Array],
  log_weight: jax.Array | None = None,
) -> jax.Array:
  """Features 0..dim-1 of a three-term recurrence ``f[n+1] = step(n, f[n], f[n-1])``.

  With ``log_weight``, the features are ``f[n] * exp(log_weight)`` for unweighted
  ``first`` and ``second``. The weighted functions (Hermite and Laguerre
  functions) are O(1), but on a wide x range their weight underflows float32
  (exp(-x^2/2) at x = 22) and the unweighted values overflow it, so the recurrence
  runs on values divided by powers of two (exact) whenever they pass 2^60, and
  the weight is applied at the end in log form: ``f * exp(log_scale + log_weight)``.
  """
  if dim < 1:
    raise ValueError(f'dim must be >= 1, got {dim}.')
  if log_weight is None:
    log_weight = jnp.zeros_like(x)
  ln2 = jnp.float32(np.log(2.0))

  def body(carry, n):
    prev, cur, log2_scale = carry  # f[n-1], f[n] are both divided by 2**log2_scale
    out = cur * jnp.exp(log2_scale * ln2 + log_weight)
    nxt = step(n.astype(jnp.float32), cur, prev)
    big = jnp.abs(nxt) > 2.0**60
    shrink = jnp.where(big, jnp.float32(2.0**-60), jnp.float32(1.0))
    return (cur * shrink, nxt * shrink, log2_scale + jnp.where(big, 60.0, 0.0)), out

  ns = jnp.arange(1, dim, dtype=jnp.int32)
  _, rest = jax.lax.scan(body, (first, second, jnp.zeros_like(x)), ns)  # rest[j] = f[j + 1]
  feats = jnp.concatenate([(first * jnp.exp(log_weight))[None], rest], axis=0)
  return jnp.moveaxis(feats, 0, -1)


def chebyshev_from_x(x: jax.Array, dim: int) -> jax.Array:
  """Chebyshev polynomials of the first kind: ``T0 = 1, T1 = x, T(n+1) = 2x Tn - T(n-1)``.

  Bounded by 1 on [-1, 1].
  """
  return _recurrence(x, dim, jnp.ones_like(x), x, lambda n, cur, prev: 2 * x * cur - prev)


def legendre_from_x(x: jax.Array, dim: int) -> jax.Array:
  """Legendre polynomials (Bonnet): ``(n+1) P(n+1) = (2n+1) x Pn - n P(n-1)``, P0 = 1, P1 = x.

  Bounded by 1 on [-1, 1].
  """
  return _recurrence(
    x, dim, jnp.ones_like(x), x, lambda n, cur, prev: ((2 * n + 1) * x * cur - n * prev) / (n + 1)
  )


def hermite_from_x(x: jax.Array, dim: int) -> jax.Array:
  """Orthonormal Hermite functions ``psi_n(x) = H_n(x) exp(-x^2/2) / sqrt(2^n n! sqrt(pi))``.

  Raw physicists' Hermite polynomials H_n overflow float32 long before degree
  256, so this basis uses their normalised form, computed by the stable
  recurrence ``psi(n+1) = sqrt(2/(n+1)) x psi_n - sqrt(n/(n+1)) psi(n-1)`` from
  ``psi_0 = pi^(-1/4) exp(-x^2/2)`` (the weight applied in log form, see
  :func:`_recurrence`). |psi_n| <= pi^(-1/4) everywhere.
  """
  c = jnp.float32(np.pi**-0.25)
  return _recurrence(
    x,
    dim,
    jnp.full_like(x, c),
    jnp.sqrt(2.0) * x * c,
    lambda n, cur, prev: jnp.sqrt(2 / (n + 1)) * x * cur - jnp.sqrt(n / (n + 1)) * prev,
    log_weight=-0.5 * x * x,
  )


def _laguerre_functions(t: jax.Array, dim: int) -> jax.Array:
  """Laguerre functions ``exp(-t/2) L_n(t)`` for t >= 0, each within [-1, 1].

  ``L0 = 1, L1 = 1 - t, (n+1) L(n+1) = (2n+1-t) Ln - n L(n-1)``.
  """
  return _recurrence(
    t,
    dim,
    jnp.ones_like(t),
    1.0 - t,
    lambda n, cur, prev: ((2 * n + 1 - t) * cur - n * prev) / (n + 1),
    log_weight=-0.5 * t,
  )


def laguerre_from_x(x: jax.Array, dim: int) -> jax.Array:
  """Laguerre functions ``exp(-t/2) L_n(t)`` at ``t = x + 1`` (t in [0, 2]).

  Raw Laguerre polynomials grow fast for negative arguments (L_256(-1) ~ 1e13),
  so the basis is evaluated on t = x + 1 >= 0 and weighted by exp(-t/2), which
  keeps every feature within [-1, 1].
  """
  return _laguerre_functions(x + 1.0, dim)


def hermite_stretched_from_x(x: jax.Array, dim: int) -> jax.Array:
  """Hermite functions on ``x sqrt(2 dim - 1)``: the id range spans the oscillatory range.

  psi_n oscillates on |x| < sqrt(2n + 1) and decays outside it, so on [-1, 1]
  the degree-255 function changes sign only ~15 times. Stretching x to the
  turning point of the highest degree (dim - 1) gives it all its dim - 1 sign
  changes across the ids, as Fourier, Chebyshev and Legendre have; low degrees
  then cover only the middle ids (psi_0 is ~0 beyond |x| ~ 4).
  """
  return hermite_from_x(x * jnp.float32(np.sqrt(2.0 * dim - 1.0)), dim)


def laguerre_stretched_from_x(x: jax.Array, dim: int) -> jax.Array:
  """Laguerre functions on ``t = (x + 1)(2 dim - 1)`` in [0, 4 dim - 2], their oscillatory range.

  exp(-t/2) L_n(t) oscillates on 0 < t < 4n + 2; stretching t to that range of
  the highest degree gives it all its dim - 1 sign changes across the ids (see
  :func:`hermite_stretched_from_x`).
  """
  return _laguerre_functions((x + 1.0) * jnp.float32(2.0 * dim - 1.0), dim)


BASES: dict[str, Callable[[jax.Array, int], jax.Array]] = {
  'fourier': fourier_from_x,
  'chebyshev': chebyshev_from_x,
  'legendre': legendre_from_x,
  'hermite': hermite_from_x,
  'laguerre': laguerre_from_x,
  'hermite_stretched': hermite_stretched_from_x,
  'laguerre_stretched': laguerre_stretched_from_x,
}


# Every fixed code ``model.basis`` can name: the bases of x above and the id codes.
FIXED_CODES = (*BASES, *ID_CODES)


def check_basis_args(basis: str, vocab_size: int, dim: int) -> None:
  """Raises a ValueError naming the bad argument, before any compute."""
  if basis not in BASES and basis not in ID_CODES:
    raise ValueError(f'Unknown basis {basis!r}; expected one of {FIXED_CODES}.')
  if vocab_size < 2:
    raise ValueError(f'vocab_size must be >= 2, got {vocab_size}.')
  if dim < 1:
    raise ValueError(f'dim must be >= 1, got {dim}.')
  if basis == 'fourier' and dim % 2:
    raise ValueError(f'The Fourier basis needs an even dim (sin/cos pairs), got {dim}.')


def basis_features(
  ids: jax.Array,
  vocab_size: int,
  dim: int,
  *,
  basis: str = 'fourier',
  normalisation: str = 'vocab',
  max_seq_len: int = 128,
) -> jax.Array:
  """Fixed features of integer token ids: ``[..., dim]`` float32.

  Args:
    ids: integer token ids of any shape.
    vocab_size: N of the paper's normalisation.
    dim: number of features (the model width d).
    basis: a key of :data:`BASES`: 'fourier' (paper), 'chebyshev', 'legendre',
      'hermite', 'laguerre', 'hermite_stretched' or 'laguerre_stretched'; or of
      ``id_codes.ID_CODES`` ('random', 'binary': codes of the id, not of x).
    normalisation: 'vocab' (paper) or 'max_seq_len' (official code).
    max_seq_len: N of the 'max_seq_len' normalisation.
  """
  check_basis_args(basis, vocab_size, dim)
  if basis in ID_CODES:  # codes of the integer id: no normalisation
    return ID_CODES[basis](ids, vocab_size, dim)
  x = normalise_ids(ids, vocab_size, normalisation=normalisation, max_seq_len=max_seq_len)
  return BASES[basis](x, dim)


def fourier_features(
  ids: jax.Array, vocab_size: int, dim: int, *, normalisation: str = 'vocab', max_seq_len: int = 128
) -> jax.Array:
  """The paper's Fourier basis of token ids: ``[..., dim]`` float32 (see :func:`fourier_from_x`)."""
  return basis_features(
    ids, vocab_size, dim, basis='fourier', normalisation=normalisation, max_seq_len=max_seq_len
  )


def sign_changes(values: np.ndarray, tol: float = 1e-4) -> int:
  """Sign changes along a 1-D array, ignoring values within ``tol`` of zero (rounding noise).

  How finely a basis feature resolves neighbouring ids: a feature that changes sign
  k times over the id range separates ids about V / k apart.
  """
  values = values[np.abs(values) > tol]
  return int(np.sum(np.diff(np.sign(values)) != 0))
