"""Table 1: fourier 1 layer(s) / 1 head(s), d=512 (paper STS-B Spearman / Pearson: 75.21 / 74.65)."""

from configs import default


def get_config():
  config = default.get_config()
  config.model.d_model = 512
  return config
