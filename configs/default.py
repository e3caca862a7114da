"""The default configuration (the paper's Fourier 1x256 model) and ``data_path``.

The defaults, with every field documented, live in ``pete_jax/default_config.py``
(inside the package, so that library code such as the weights converter can
build a config without importing ``configs/``). Every experiment config here
starts from ``get_config()`` and overrides only what differs.
"""

from pete_jax.default_config import data_path, get_config

__all__ = ['data_path', 'get_config']
