"""Table 2, PETE 1.5M+ row: 1 layer(s), d=512. Paper Pearson 79.7 / Spearman 79.7 (this model: 1.77M)."""

from configs.table2_common import small_pete


def get_config():
  return small_pete(1, 512)
