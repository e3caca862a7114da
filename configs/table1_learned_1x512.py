"""Table 1: learned 1 layer(s) / 1 head(s), d=512 (paper STS-B Spearman / Pearson: 77.50 / 76.78)."""

from configs import default


def get_config():
  config = default.get_config()
  config.model.embedding = 'learned'
  config.model.dropout_rate = 0.1
  config.model.d_model = 512
  return config
