"""Table 1: Fourier 1x256 (the same experiment as snli_pete.py)."""

from configs import snli_pete


def get_config():
  return snli_pete.get_config()
