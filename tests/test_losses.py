"""Losses against direct numpy computations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pete_jax.losses import ContrastiveLoss, contrastive_loss, cosine_similarity, pearson_loss


def numpy_contrastive(a, b, t):
  a = a / np.linalg.norm(a, axis=1, keepdims=True)
  b = b / np.linalg.norm(b, axis=1, keepdims=True)
  s = a @ b.T / t

  def ce(logits):
    logits = logits - logits.max(axis=1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return -np.mean(np.diag(logp))

  return ce(s) + ce(s.T)


def test_contrastive_loss_matches_numpy():
  rng = np.random.default_rng(0)
  a, b = rng.normal(size=(6, 5)), rng.normal(size=(6, 5))
  got = contrastive_loss(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32), 0.07)
  assert float(got) == pytest.approx(numpy_contrastive(a, b, 0.07), rel=1e-5)


def test_contrastive_loss_is_symmetric_and_low_for_matched_pairs():
  a = jax.random.normal(jax.random.key(0), (8, 16))
  b = jax.random.normal(jax.random.key(1), (8, 16))
  assert float(contrastive_loss(a, b, 0.1)) == pytest.approx(
    float(contrastive_loss(b, a, 0.1)), rel=1e-5
  )
  assert float(contrastive_loss(a, a, 0.05)) < float(contrastive_loss(a, b, 0.05))


def test_learned_temperature_starts_at_init_and_gets_gradient():
  loss = ContrastiveLoss(0.07)
  a = jax.random.normal(jax.random.key(0), (4, 8))
  b = a + 2.0 * jax.random.normal(jax.random.key(1), (4, 8))
  params = loss.init(jax.random.key(0), a, b)
  value, t = loss.apply(params, a, b)
  assert float(t) == pytest.approx(0.07, rel=1e-6)
  assert float(value) == pytest.approx(
    numpy_contrastive(np.asarray(a), np.asarray(b), 0.07), rel=1e-4
  )
  g = jax.grad(lambda p: loss.apply(p, a, b)[0])(params)
  assert float(jnp.abs(g['params']['log_temperature'])) > 0


def test_pearson_loss_matches_numpy():
  rng = np.random.default_rng(1)
  x, y = rng.normal(size=20), rng.normal(size=20)
  got = pearson_loss(jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32))
  assert float(got) == pytest.approx(1 - np.corrcoef(x, y)[0, 1], abs=1e-5)


def test_cosine_similarity():
  a = jnp.array([[1.0, 0.0], [1.0, 1.0]])
  b = jnp.array([[0.0, 2.0], [2.0, 2.0]])
  np.testing.assert_allclose(cosine_similarity(a, b), [0.0, 1.0], atol=1e-6)
