"""Inference: sentences -> vectors from a workdir's checkpoint.

    embedder = pete_jax.encode.SentenceEmbedder.from_workdir('runs/snli_pete')
    vectors = embedder.encode(['A man is playing a guitar.', 'Someone plays music.'])

The embedding table is materialised once ([V, d], the Fourier basis and MLP
evaluated for every id), so serving a Fourier model is a plain lookup, like the
learned baseline.
"""

from typing import Sequence

import jax
import numpy as np

from pete_jax import checkpoint
from pete_jax.data import pipeline, tokenizers
from pete_jax.encoder import encoder_from_config
from pete_jax.evaluate import encode_sequences


class SentenceEmbedder:
  """A trained (or converted) encoder with its tokenizer, ready to encode text."""

  def __init__(self, workdir: str, best: bool = False):
    config, params = checkpoint.load_params(workdir, best=best)
    self.config = config
    self.tokenizer = tokenizers.build_tokenizer(config, workdir)
    self.encoder = encoder_from_config(config.model, self.tokenizer.vocab_size,
                                       config.data.max_len)
    enc_params = {'params': params['encoder']}
    self.table = jax.jit(lambda p: self.encoder.apply(p, method='embedding_table'))(enc_params)
    self._encode = jax.jit(lambda ids, mask: self.encoder.apply(
        enc_params, ids, mask, embedding_table=self.table))
    self.lengths = pipeline.padding_lengths(config)

  @classmethod
  def from_workdir(cls, workdir: str, best: bool = False) -> 'SentenceEmbedder':
    """Loads the latest (or best-scoring) checkpoint of ``workdir``."""
    return cls(workdir, best)

  def encode(self, sentences: Sequence[str], batch_size: int = 256) -> np.ndarray:
    """``[len(sentences), d]`` float32 sentence vectors (the pooled output)."""
    if isinstance(sentences, str):
      raise TypeError('encode() takes a list of sentences, not one string.')
    if not sentences:
      return np.zeros((0, self.encoder.d_model), np.float32)
    ids = self.tokenizer.encode(list(sentences), self.config.data.max_len)
    return encode_sequences(self._encode, ids, self.lengths, min(batch_size, len(ids)))
