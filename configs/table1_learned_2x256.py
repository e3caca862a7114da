"""Table 1: learned 2 layer(s) / 2 head(s), d=256 (paper STS-B Spearman / Pearson: 77.34 / 76.89)."""

from configs import default


def get_config():
  config = default.get_config()
  config.model.embedding = 'learned'
  config.model.dropout_rate = 0.1
  config.model.num_layers = 2
  config.model.num_heads = 2
  return config
