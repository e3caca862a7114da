"""Table 1: fourier 2 layer(s) / 2 head(s), d=512 (paper STS-B Spearman / Pearson: 77.40 / 77.11)."""

from configs.table1_common import table1


def get_config():
  return table1('fourier', 2, 512)
