"""Table 1: learned 1 layer(s) / 1 head(s), d=512 (paper STS-B Spearman / Pearson: 77.50 / 76.78)."""

from configs.table1_common import table1


def get_config():
  return table1('learned', 1, 512)
