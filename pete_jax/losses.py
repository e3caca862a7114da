"""Training objectives: the symmetric contrastive loss (pre-training) and the Pearson loss (STS fine-tuning).

``OBJECTIVES`` maps a stage's objective name to its loss function, so the train
step is built from the function it needs instead of branching on a string.
"""

from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax


def l2_normalise(x: jax.Array, eps: float = 1e-12) -> jax.Array:
  """Rows of ``x`` scaled to unit L2 norm."""
  return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), eps)


def contrastive_loss(a: jax.Array, b: jax.Array, temperature: jax.Array) -> jax.Array:
  """Symmetric InfoNCE over a batch of pairs (a_i, b_i), summed over both directions.

  ``S = normalise(A) @ normalise(B).T / t``; cross-entropy with the diagonal as
  the target over rows (a -> b) plus over columns (b -> a), each a batch mean.
  Every other pair of the batch is a negative. Under jit with a batch-sharded
  input this is the loss over the global batch.
  """
  logits = l2_normalise(a.astype(jnp.float32)) @ l2_normalise(b.astype(jnp.float32)).T / temperature
  labels = jnp.arange(a.shape[0])
  rows = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
  cols = optax.softmax_cross_entropy_with_integer_labels(logits.T, labels).mean()
  return rows + cols


class ContrastiveLoss(nn.Module):
  """The contrastive loss with a learned temperature, stored as ``log t`` (so t > 0)."""

  init_temperature: float = 0.07

  @nn.compact
  def __call__(self, a: jax.Array, b: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Returns (loss, temperature)."""
    log_t = self.param(
      'log_temperature', lambda _: jnp.log(jnp.asarray(self.init_temperature, jnp.float32))
    )
    temperature = jnp.exp(log_t)
    return contrastive_loss(a, b, temperature), temperature


def cosine_similarity(a: jax.Array, b: jax.Array) -> jax.Array:
  """Row-wise cosine similarity of two ``[B, d]`` arrays."""
  return (l2_normalise(a.astype(jnp.float32)) * l2_normalise(b.astype(jnp.float32))).sum(-1)


def pearson_loss(predictions: jax.Array, targets: jax.Array, eps: float = 1e-8) -> jax.Array:
  """``1 - Pearson(predictions, targets)`` over the batch (the official STS fine-tuning loss)."""
  p = predictions - predictions.mean()
  t = targets - targets.mean()
  r = (p * t).sum() / jnp.maximum(jnp.sqrt((p * p).sum() * (t * t).sum()), eps)
  return 1.0 - r


# (loss parameters {'log_temperature'}, pooled a [B, d], pooled b [B, d], batch)
# -> (loss, temperature). The temperature is reported by both; only the
# contrastive loss uses (and learns) it.
Objective = Callable[[dict, jax.Array, jax.Array, dict], tuple[jax.Array, jax.Array]]


def contrastive_objective(
  loss_params: dict, a: jax.Array, b: jax.Array, batch: dict
) -> tuple[jax.Array, jax.Array]:
  """Pre-training: the symmetric contrastive loss with the learned temperature."""
  del batch
  return ContrastiveLoss().apply({'params': loss_params}, a, b)


def pearson_objective(
  loss_params: dict, a: jax.Array, b: jax.Array, batch: dict
) -> tuple[jax.Array, jax.Array]:
  """STS fine-tuning: 1 - Pearson of the pairs' cosines and their gold scores."""
  return (
    pearson_loss(cosine_similarity(a, b), batch['score']),
    jnp.exp(loss_params['log_temperature']),
  )


OBJECTIVES: dict[str, Objective] = {
  'contrastive': contrastive_objective,
  'pearson': pearson_objective,
}
