"""Basis values against independent float64 numpy/scipy computations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

from pete_jax import basis

V = 30522
IDS = np.array([0, 1, 2, 101, 1037, 15000, 30000, V - 1])


def x64(ids, n):
  return 2.0 * ids.astype(np.float64) / (n - 1) - 1.0


def fourier64(x, dim):
  i = np.arange(dim)
  k = i // 2 + 1
  ang = np.pi * x[:, None] * k[None, :]
  return np.where(i % 2 == 0, np.sin(ang), np.cos(ang))


def hermite64(x, dim):
  n = np.arange(dim)
  norm = 1.0 / np.sqrt(2.0**n * special.factorial(n) * np.sqrt(np.pi))
  return special.eval_hermite(n[None, :], x[:, None]) * norm * np.exp(-(x[:, None] ** 2) / 2)


REFERENCE = {
  'fourier': fourier64,
  'chebyshev': lambda x, d: special.eval_chebyt(np.arange(d)[None], x[:, None]),
  'legendre': lambda x, d: special.eval_legendre(np.arange(d)[None], x[:, None]),
  'hermite': hermite64,
  'laguerre': lambda x, d: (
    special.eval_laguerre(np.arange(d)[None], x[:, None] + 1) * np.exp(-(x[:, None] + 1) / 2)
  ),
}
BOUNDS = {
  'fourier': 1.0,
  'chebyshev': 1.0,
  'legendre': 1.0,
  'hermite': np.pi**-0.25,
  'laguerre': 1.0,
}


@pytest.mark.parametrize('name', list(REFERENCE))
def test_paper_normalisation_matches_float64(name):
  dim = 64
  got = np.asarray(basis.basis_features(jnp.asarray(IDS), V, dim, basis=name))
  want = REFERENCE[name](x64(IDS, V), dim)
  assert got.shape == (len(IDS), dim) and got.dtype == np.float32
  np.testing.assert_allclose(got, want, atol=2e-4 if name == 'fourier' else 1e-4)
  assert np.abs(got).max() <= BOUNDS[name] + 1e-5


@pytest.mark.parametrize('name', ['hermite_stretched', 'laguerre_stretched'])
def test_stretched_bases_match_float64(name):
  """The stretched bases against scipy at the same float32 x (the stretch amplifies its rounding)."""
  dim = 64
  ids = np.arange(0, V, 37)
  x = np.asarray(basis.normalise_ids(jnp.asarray(ids), V)).astype(np.float64)
  if name == 'hermite_stretched':
    want = hermite64(np.float32(x * np.float32(np.sqrt(2 * dim - 1))).astype(np.float64), dim)
  else:
    t = np.float32((x + 1) * np.float32(2 * dim - 1)).astype(np.float64)
    want = special.eval_laguerre(np.arange(dim)[None], t[:, None]) * np.exp(-t[:, None] / 2)
  got = np.asarray(basis.basis_features(jnp.asarray(ids), V, dim, basis=name))
  np.testing.assert_allclose(got, want, atol=5e-5)


@pytest.mark.parametrize('name', ['hermite', 'laguerre', 'hermite_stretched', 'laguerre_stretched'])
def test_weighted_bases_stay_finite_and_bounded_at_full_width(name):
  """At dim 512 the weights (exp(-x^2/2) to e^-511) and the unweighted values overflow float32;
  the rescaled recurrence keeps every feature finite and within its bound."""
  f = np.asarray(basis.basis_features(jnp.arange(0, V, 7), V, 512, basis=name))
  bound = np.pi**-0.25 if name.startswith('hermite') else 1.0
  assert np.isfinite(f).all()
  assert np.abs(f).max() <= bound + 5e-4
  assert np.abs(f[:, -1]).max() > 0.01  # the highest degree is not lost to underflow


def test_fourier_official_normalisation_matches_float64():
  got = np.asarray(
    basis.fourier_features(jnp.asarray(IDS), V, 32, normalisation='max_seq_len', max_seq_len=128)
  )
  x = x64(IDS, 128)
  assert x.max() > 400  # the official constant stretches x far past 1
  # float32 x and the float32 product k x (as the official kernel) lose phase at
  # x ~ 480; the reference takes the same float32 product, then float64 sin/cos.
  x32 = np.asarray(basis.normalise_ids(jnp.asarray(IDS), V, normalisation='max_seq_len'))
  np.testing.assert_allclose(x32, x, rtol=1e-6)
  k = (np.arange(32) // 2 + 1).astype(np.float32)
  y = (x32[:, None] * k[None]).astype(np.float64)
  want = np.where(np.arange(32) % 2 == 0, np.sin(np.pi * y), np.cos(np.pi * y))
  np.testing.assert_allclose(got, want, atol=1e-6)


@pytest.mark.parametrize('max_seq_len', [48, 128])
def test_official_normalisation_sees_only_the_id_modulo_max_seq_len_minus_one(max_seq_len):
  """With x = 2p/(N-1) - 1 the integer-frequency basis has period N - 1 in the id: all V ids
  share N - 1 codes, apart from float32 rounding that grows with x (1% of the nearest
  neighbours' distance at most)."""
  ids = np.arange(V)
  f = np.asarray(
    basis.fourier_features(
      jnp.asarray(ids), V, 256, normalisation='max_seq_len', max_seq_len=max_seq_len
    )
  )
  to_class = np.linalg.norm(f - f[ids % (max_seq_len - 1)], axis=1)
  neighbours = np.linalg.norm(f[1:] - f[:-1], axis=1)
  assert to_class.max() < 0.02 * neighbours.min(), (to_class.max(), neighbours.min())


@pytest.mark.parametrize('normalisation,n', [('vocab', V), ('max_seq_len', 128)])
def test_endpoints(normalisation, n):
  x = np.asarray(
    basis.normalise_ids(jnp.array([0, n - 1]), V, normalisation=normalisation, max_seq_len=128)
  )
  np.testing.assert_array_equal(x, [-1.0, 1.0])


def test_fourier_layout_and_golden_ids():
  f = np.asarray(basis.fourier_features(jnp.array([0, V - 1]), V, 6))
  # x = -1 and 1: sin(k pi x) = 0, cos(k pi x) = (-1)^k.
  np.testing.assert_allclose(f[:, 0::2], 0.0, atol=1e-6)
  np.testing.assert_allclose(f[:, 1::2], [[-1, 1, -1], [-1, 1, -1]], atol=1e-6)


def test_fourier_high_frequency_accuracy():
  """The exact argument reduction keeps the largest frequencies accurate in float32."""
  ids = np.arange(0, V, 997)
  got = np.asarray(basis.fourier_features(jnp.asarray(ids), V, 512))
  x32 = np.asarray(basis.normalise_ids(jnp.asarray(ids), V)).astype(np.float64)
  k = (np.arange(512) // 2 + 1).astype(np.float32)
  y = (x32[:, None].astype(np.float32) * k[None]).astype(
    np.float64
  )  # float32 product, as the kernel
  want = np.where(np.arange(512) % 2 == 0, np.sin(np.pi * y), np.cos(np.pi * y))
  np.testing.assert_allclose(got, want, atol=1e-6)


def test_jit_and_shapes():
  ids = jnp.arange(12).reshape(3, 4)
  f = jax.jit(lambda i: basis.fourier_features(i, 100, 8))(ids)
  assert f.shape == (3, 4, 8)


@pytest.mark.parametrize(
  'kwargs,match',
  [
    (dict(basis='fourier', vocab_size=100, dim=7), 'even dim'),
    (dict(basis='wavelet', vocab_size=100, dim=8), 'Unknown basis'),
    (dict(basis='fourier', vocab_size=1, dim=8), 'vocab_size must be >= 2'),
  ],
)
def test_bad_arguments(kwargs, match):
  with pytest.raises(ValueError, match=match):
    basis.basis_features(jnp.arange(3), kwargs['vocab_size'], kwargs['dim'], basis=kwargs['basis'])


def test_bad_normalisation():
  with pytest.raises(ValueError, match='Unknown normalisation'):
    basis.fourier_features(jnp.arange(3), 100, 8, normalisation='seq')


@pytest.mark.parametrize('n', [128, 30522, 30552, 256000])
def test_normalisation_is_ieee_exact(n):
  """x equals numpy's IEEE float32 2 (p / (N-1)) - 1 for every id (as the official kernel)."""
  ids = np.arange(max(n, 30522))
  got = np.asarray(jax.jit(lambda i: basis.normalise_ids(i, n))(jnp.asarray(ids)))
  want = np.float32(2) * (ids.astype(np.float32) / np.float32(n - 1)) - np.float32(1)
  np.testing.assert_array_equal(got, want)


def test_resolution_of_the_highest_feature_on_the_id_range():
  """How finely each basis can tell ids apart: sign changes of its last feature on [-1, 1].

  Fourier, Chebyshev and Legendre oscillate ~dim times across the id range; the Hermite and
  Laguerre functions of the same degrees oscillate mostly outside it (|x| up to ~sqrt(2 dim)
  and t up to ~4 dim), so on [-1, 1] they change sign only ~15 times (the basis ablation).
  Their stretched forms map the id range onto that oscillatory range and get all 255.
  """
  x = jnp.linspace(-1.0, 1.0, 100_001)
  changes = {}
  for name, fn in basis.BASES.items():
    last = np.asarray(fn(x, 256))[:, -2 if name == 'fourier' else -1]  # sin(128 pi x) for Fourier
    changes[name] = basis.sign_changes(last)  # ignores rounding noise at the zeros
  assert changes['fourier'] == changes['chebyshev'] == changes['legendre'] == 255
  assert changes['hermite_stretched'] == changes['laguerre_stretched'] == 255
  assert 10 <= changes['hermite'] <= 20 and 10 <= changes['laguerre'] <= 20, changes
