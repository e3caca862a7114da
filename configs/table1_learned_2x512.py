"""Table 1: learned 2 layer(s) / 2 head(s), d=512 (paper STS-B Spearman / Pearson: 77.54 / 76.96)."""

from configs.table1_common import table1


def get_config():
  return table1('learned', 2, 512)
