"""Table 2, PETE 3.6M+ row: 2 layer(s), d=512. Paper Pearson 81.7 / Spearman 81.9 (this model: 3.02M)."""

from configs.table2_common import small_pete


def get_config():
  return small_pete(2, 512)
