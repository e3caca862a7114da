"""Table 1: fourier 1 layer(s) / 1 head(s), d=256 (paper STS-B Spearman / Pearson: 74.93 / 74.54). The same experiment as snli_pete.py."""

from configs.table1_common import table1


def get_config():
  return table1('fourier', 1, 256)
