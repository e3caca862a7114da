"""Table 2, PETE 58k+ row: 2 layer(s), d=64. Paper Pearson 69.0 / Spearman 69.5 (this model: 48k parameters)."""

from configs.table2_common import small_pete


def get_config():
  return small_pete(2, 64)
