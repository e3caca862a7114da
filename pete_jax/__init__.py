"""pete_jax: Parameter-Efficient Transformer Embeddings (PETE) in JAX/Flax.

Token embeddings computed from the token id by a fixed Fourier basis plus a
small learned MLP, in place of a V x d learned table.
"""

from pete_jax.basis import basis_features, fourier_features, normalise_ids
from pete_jax.embeddings import FourierEmbed, LearnedEmbed
from pete_jax.encoder import EncoderConfig, SentenceEncoder, encoder_from_config, mean_pool
from pete_jax.layers import EncoderBlock, GeGLU, MultiHeadAttention, apply_rope
from pete_jax.losses import ContrastiveLoss, contrastive_loss, pearson_loss

__all__ = [
  'basis_features',
  'fourier_features',
  'normalise_ids',
  'FourierEmbed',
  'LearnedEmbed',
  'EncoderConfig',
  'SentenceEncoder',
  'encoder_from_config',
  'mean_pool',
  'EncoderBlock',
  'GeGLU',
  'MultiHeadAttention',
  'apply_rope',
  'ContrastiveLoss',
  'contrastive_loss',
  'pearson_loss',
]
