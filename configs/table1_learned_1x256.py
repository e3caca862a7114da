"""Table 1: learned 1 layer(s) / 1 head(s), d=256 (paper STS-B Spearman / Pearson: 77.01 / 76.80)."""

from configs import default


def get_config():
  config = default.get_config()
  config.model.embedding = 'learned'
  config.model.dropout_rate = 0.1
  return config
