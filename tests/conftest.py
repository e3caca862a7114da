"""Test setup: 8 fake CPU devices (set before jax is imported), the tests' own data, the shared data path.

Every test that trains, resumes, shards or tokenises uses the ``tiny_data`` fixture
(synthetic files in the real formats, written here) and the packaged BERT
vocabulary. Only the official-weights tests need ``../shared/data``
(``shared_data``): the ``.pt`` files and their golden outputs cannot be shipped.
"""

import os

os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=8')
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
# XLA CPU compiles a training step in ~10 s; a persistent cache shared by the
# test process and the subprocesses it starts compiles each shape once.
os.environ.setdefault('JAX_COMPILATION_CACHE_DIR', '/tmp/pete_jax_test_compilation_cache')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES', '0')

import pathlib  # noqa: E402

import jax  # noqa: E402
import pytest  # noqa: E402

import tiny_data as tiny_data_files  # noqa: E402  (tests/ is on sys.path)

# The backend starts now, with the 8 devices above, whatever a test later sets XLA_FLAGS to
# for the processes it starts.
jax.devices()

# The real data folder, read once here: ``tiny_data`` points PETE_DATA_DIR elsewhere.
DATA_DIR = pathlib.Path(os.environ.get('PETE_DATA_DIR', '../shared/data'))


@pytest.fixture(scope='session')
def tiny_data_dir(tmp_path_factory) -> pathlib.Path:
  """A PETE_DATA_DIR-style folder of small synthetic NLI and STS-B files (written once)."""
  return pathlib.Path(tiny_data_files.write_tiny_data(str(tmp_path_factory.mktemp('tiny_data'))))


@pytest.fixture
def tiny_data(tiny_data_dir, monkeypatch) -> pathlib.Path:
  """PETE_DATA_DIR set to the tests' own data, for this test and the processes it starts."""
  monkeypatch.setenv('PETE_DATA_DIR', str(tiny_data_dir))
  return tiny_data_dir


@pytest.fixture
def shared_data() -> pathlib.Path:
  """The real data folder with the official weights; tests that need it skip where it is absent."""
  if not (DATA_DIR / 'official_weights').is_dir():
    pytest.skip(
      f'{DATA_DIR}/official_weights not found (the official .pt files and their golden '
      'outputs cannot be shipped; set PETE_DATA_DIR to the shared data folder)'
    )
  return DATA_DIR
