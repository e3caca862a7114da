"""Table 1: learned 2 layer(s) / 2 head(s), d=256 (paper STS-B Spearman / Pearson: 77.34 / 76.89)."""

from configs.table1_common import table1


def get_config():
  return table1('learned', 2, 256)
