"""Table 1: Fourier (PETE) 1 layer / 1 head, d=256, on SNLI+MNLI entailment pairs (TFDS).

The default config is exactly this experiment; this file names it.
"""

from configs import default


def get_config():
  return default.get_config()
