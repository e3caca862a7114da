"""The main command as users run it: ``python -m pete_jax.main --config=configs/snli_pete.py``.

The default config's TFDS branch (download=True) runs the real TFDS builders of
snli, multi_nli and glue/stsb; only the network fetch is replaced, by files in
the official download formats written here (tiny_data.write_tfds_downloads).
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest

import tiny_data as tiny_data_files
from configs import snli_pete
from pete_jax import main as main_module
from pete_jax import train
from pete_jax.data import prepare, tfds_reader
from pete_jax.data.records import SourceError

tfds = pytest.importorskip('tensorflow_datasets')
REPO = pathlib.Path(__file__).resolve().parents[1]


def _tiny(config, tfds_dir):
  """The default config at test size; every data setting stays the default's."""
  config.model.d_model, config.model.num_heads = 32, 2
  config.data.max_len, config.data.buckets = 32, ()
  config.train.batch_size, config.train.num_steps, config.train.warmup_steps = 16, 4, 1
  config.train.log_every_steps = config.train.eval_every_steps = 2
  config.train.checkpoint_every_steps = 2
  config.data.tfds_data_dir = str(tfds_dir)
  return config


@pytest.fixture
def downloads(tmp_path, monkeypatch):
  """TFDS 'downloads' the official-format files; the network probe says the server is up."""
  urls = tiny_data_files.write_tfds_downloads(str(tmp_path / 'downloads'))
  fetched = []

  def download_and_extract(self, url):
    fetched.append(url)
    return urls[url]

  monkeypatch.setattr(tfds.download.DownloadManager, 'download_and_extract', download_and_extract)
  monkeypatch.setattr(tfds_reader, 'network_reachable', lambda host, port, timeout_s=5.0: True)
  return fetched


def test_default_config_downloads_prepares_trains_then_reuses_offline(
  tmp_path, downloads, monkeypatch
):
  config = snli_pete.get_config()
  assert config.data.tfds_download and config.tokenizer.vocab_path == 'bert-base-uncased'
  tfds_dir = tmp_path / 'tfds'
  results = train.train_and_evaluate(_tiny(config, tfds_dir), str(tmp_path / 'run1'))
  assert sorted(downloads) == sorted(set(downloads)) and len(downloads) == 3  # each once
  for name in ('snli', 'multi_nli', 'glue/stsb'):  # prepared as array_record
    assert list((tfds_dir / name).glob('*/*.array_record*')), name
  assert results['pretrain']['num_pairs'] == 64  # STS-B dev as written
  evals = json.loads((tmp_path / 'run1' / 'eval_results.json').read_text())
  assert [e['step'] for e in evals] == [2, 4]

  # Second run, no network at all: the prepared data is reused, nothing is fetched.
  def offline(*args, **kwargs):
    raise AssertionError('a prepared dataset was downloaded again')

  monkeypatch.setattr(tfds.download.DownloadManager, 'download_and_extract', offline)
  monkeypatch.setattr(tfds_reader, 'network_reachable', offline)
  again = train.train_and_evaluate(_tiny(snli_pete.get_config(), tfds_dir), str(tmp_path / 'run2'))
  assert again['pretrain']['num_pairs'] == 64
  assert [(n, s) for n, s, _ in prepare.prepare(_tiny(snli_pete.get_config(), tfds_dir))] == [
    ('snli', 'train'),
    ('multi_nli', 'train'),
    ('glue/stsb', 'validation'),
  ]


def test_mnli_prepares_without_tensorflow(tmp_path, downloads):
  """multi_nli's builder reads its files with tf.io.gfile; it must not need TensorFlow."""
  assert 'tensorflow' not in sys.modules
  source = tfds_reader.open_source('multi_nli', 'validation_matched', str(tmp_path / 'tfds'), True)
  assert len(source) == 90  # every row of the file has a gold label
  assert 'tensorflow' not in sys.modules
  with pytest.raises(
    SourceError, match=r"no split 'validation'; its splits: .*'validation_matched'"
  ):
    tfds_reader.open_source('multi_nli', 'validation', str(tmp_path / 'tfds'), True)
  assert (
    len(
      tfds_reader.open_source('multi_nli', 'validation_matched[:10]', str(tmp_path / 'tfds'), True)
    )
    == 10
  )


def test_offline_stops_fast_with_one_paragraph(tmp_path, monkeypatch):
  monkeypatch.setattr(tfds_reader, '_download_host', lambda name: ('no-network.invalid', 443))
  probes, downloads = [], []
  probe = tfds_reader.network_reachable

  def spy(host, port, timeout_s=tfds_reader.NETWORK_TIMEOUT_S):
    probes.append((host, port, timeout_s))
    return probe(host, port, timeout_s)

  monkeypatch.setattr(tfds_reader, 'network_reachable', spy)
  monkeypatch.setattr(
    tfds.core.DatasetBuilder, 'download_and_prepare', lambda *a, **k: downloads.append(a)
  )
  with pytest.raises(SourceError) as info:
    train.train_and_evaluate(
      _tiny(snli_pete.get_config(), tmp_path / 'tfds'), str(tmp_path / 'run')
    )
  # One short probe, and TFDS's download (with its retry loop) is never entered.
  assert probes == [('no-network.invalid', 443, tfds_reader.NETWORK_TIMEOUT_S)]
  assert tfds_reader.NETWORK_TIMEOUT_S <= 5 and not downloads
  message = str(info.value)
  assert "'snli'" in message and 'no network connection to no-network.invalid:443' in message
  assert 'pairs_csv' in message
  assert 'python -m pete_jax.data.prepare' in message and 'configs/local_data.py' in message
  assert '\n' not in message
  assert not (tmp_path / 'run' / 'config.json').exists()  # nothing written


@pytest.mark.parametrize(
  'proxy,host',
  [
    ('http://proxy.corp:3128', ('proxy.corp', 3128)),
    ('proxy.corp:3128', ('proxy.corp', 3128)),  # no scheme: requests reads it as http
    ('', ('nlp.stanford.edu', 443)),
  ],
)
def test_network_probe_goes_where_the_download_goes(monkeypatch, proxy, host):
  monkeypatch.delenv('https_proxy', raising=False)
  monkeypatch.setenv('HTTPS_PROXY', proxy)
  assert tfds_reader._download_host('snli') == host


def test_main_command_verbatim_offline_has_no_traceback(tmp_path):
  """The command exactly as documented (plus a workdir and an empty TFDS dir), with no network."""
  env = dict(
    os.environ,
    XLA_FLAGS='--xla_force_host_platform_device_count=1',
    HTTPS_PROXY='http://no-network.invalid:3128',
  )  # the probe goes to the proxy
  cmd = [
    sys.executable,
    '-m',
    'pete_jax.main',
    '--config=configs/snli_pete.py',
    f'--workdir={tmp_path / "run"}',
    f'--config.data.tfds_data_dir={tmp_path / "tfds"}',
  ]
  result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
  assert result.returncode == 1
  assert 'Traceback' not in result.stderr
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith("error: TFDS dataset 'snli'") and 'no network connection' in last


def test_default_workdir_is_runs_config_name(tmp_path, tiny_data):
  assert main_module.default_workdir('configs/snli_pete.py') == os.path.join('runs', 'snli_pete')
  assert main_module.default_workdir('configs/reduced.py:smoke,steps=2') == os.path.join(
    'runs', 'reduced_smoke_steps=2'
  )
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=1')
  cmd = [
    sys.executable,
    '-m',
    'pete_jax.main',
    f'--config={REPO / "configs" / "smoke.py"}',
    '--config.train.num_steps=2',
    '--config.train.eval_every_steps=2',
  ]
  result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert (tmp_path / 'runs' / 'smoke' / 'final_metrics.json').exists()
  first = next(line for line in result.stderr.splitlines() if 'main.py' in line)
  assert first.endswith(f'Workdir: {tmp_path / "runs" / "smoke"}')
