"""Table 1: fourier 1 layer(s) / 1 head(s), d=512 (paper STS-B Spearman / Pearson: 75.21 / 74.65)."""

from configs.table1_common import table1


def get_config():
  return table1('fourier', 1, 512)
