"""The classification head over pooled sentence vectors.

Two feature layouts:

* ``'uv_absdiff'`` (default): ``[u, v, |u - v|]`` for a pair, as sentence-embedding
  models fine-tune on NLI (Conneau et al., 2017; Reimers and Gurevych, 2019); ``u``
  alone for a single sentence.
* ``'concat'``: ``[u, v]``, the official PETE code's benchmark head.

Then one linear layer to the label logits, trained with cross-entropy.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

FEATURES = ('uv_absdiff', 'concat')


class ClassifierHead(nn.Module):
  """Logits ``[B, num_labels]`` from pooled vectors ``u`` (and ``v`` for pair tasks)."""

  num_labels: int
  features: str = 'uv_absdiff'

  @nn.compact
  def __call__(self, u: jax.Array, v: jax.Array | None = None) -> jax.Array:
    if self.features not in FEATURES:
      raise ValueError(f'head features must be one of {FEATURES}, got {self.features!r}')
    parts = [u]
    if v is not None:
      parts += [v, jnp.abs(u - v)] if self.features == 'uv_absdiff' else [v]
    x = jnp.concatenate([p.astype(jnp.float32) for p in parts], axis=-1)
    return nn.Dense(self.num_labels, name='classifier')(x)
