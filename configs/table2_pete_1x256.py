"""Table 2, PETE 396k+ row: 1 layer(s), d=256. Paper Pearson 78.0 / Spearman 78.0 (this model: 445k)."""

from configs.table2_common import small_pete


def get_config():
  return small_pete(1, 256)
