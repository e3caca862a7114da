"""Table 1: fourier 2 layer(s) / 2 head(s), d=256 (paper STS-B Spearman / Pearson: 76.38 / 76.02)."""

from configs.table1_common import table1


def get_config():
  return table1('fourier', 2, 256)
