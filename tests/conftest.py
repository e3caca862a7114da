"""Test setup: 8 fake CPU devices (set before jax is imported) and the shared data path."""

import os

os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=8')
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
# XLA CPU compiles a training step in ~10 s; a persistent cache shared by the
# test process and the subprocesses it starts compiles each shape once.
os.environ.setdefault('JAX_COMPILATION_CACHE_DIR', '/tmp/pete_jax_test_compilation_cache')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES', '0')

import pathlib  # noqa: E402

import pytest  # noqa: E402

DATA_DIR = pathlib.Path(os.environ.get('PETE_DATA_DIR', '../shared/data'))


@pytest.fixture
def shared_data() -> pathlib.Path:
  """The real data folder; tests that need it skip with the reason where it is absent."""
  if not DATA_DIR.is_dir():
    pytest.skip(f'real data folder {DATA_DIR} not found (set PETE_DATA_DIR)')
  return DATA_DIR
