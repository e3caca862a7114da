"""Shared builder of the eight Table 1 configs: one embedding, depth and width each.

Every Table 1 model is the default config (paper schedule, SNLI+MNLI entailment
pairs) with heads = layers; the learned baseline adds dropout 0.1, the Fourier
model has none.
"""

from configs import default


def table1(embedding: str, layers: int, d_model: int):
  """The Table 1 config for ``embedding`` ('fourier' or 'learned') at ``layers`` x ``d_model``."""
  config = default.get_config()
  config.model.embedding = embedding
  config.model.num_layers = config.model.num_heads = layers
  config.model.d_model = d_model
  config.model.dropout_rate = 0.1 if embedding == 'learned' else 0.0
  return config
