"""TFDS sources (snli, multi_nli, glue/stsb) through `tfds.data_source`.

`builder.as_data_source` reads prepared array_record files without TensorFlow
(`tfds.load` would need it), so this works on TF-free runtimes. A dataset that
is not prepared yet is downloaded and prepared on first use (unless
data.tfds_download is False); later runs read the prepared files offline. TFDS
is imported lazily: local-file runs never pay for it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import socket
import types
from typing import Iterator
import urllib.parse

from absl import logging
from pete_jax.data.records import RawRow, SourceError

# Dataset name (without config/version) -> (text_a, text_b, target, kind).
_SCHEMAS = {
  'snli': ('premise', 'hypothesis', 'label', 'nli'),
  'multi_nli': ('premise', 'hypothesis', 'label', 'nli'),
  'glue/stsb': ('sentence1', 'sentence2', 'label', 'sts'),
}
# Builders that live in TFDS's lazily imported `text` package must be
# imported explicitly, or TFDS reports "Dataset multi_nli not found".
_BUILDER_MODULES = {
  'multi_nli': 'tensorflow_datasets.text.multi_nli',
  'glue/stsb': 'tensorflow_datasets.text.glue',
}
# Where each builder downloads from (its _split_generators), for the network probe.
_DOWNLOAD_URLS = {
  'snli': 'https://nlp.stanford.edu/projects/snli/snli_1.0.zip',
  'multi_nli': 'https://cims.nyu.edu/~sbowman/multinli/multinli_1.0.zip',
  'glue/stsb': 'https://dl.fbaipublicfiles.com/glue/data/STS-B.zip',
}
NETWORK_TIMEOUT_S = 5.0


def _base_name(name: str) -> str:
  """'glue/stsb:2.0.0' -> 'glue/stsb'."""
  return re.sub(r':[0-9.]+$', '', name)


def tfds_kind(name: str) -> str:
  """'nli' or 'sts' for a supported TFDS name; raises SourceError otherwise."""
  base = _base_name(name)
  if base not in _SCHEMAS:
    raise SourceError(f'unsupported TFDS dataset {name!r}; supported: {sorted(_SCHEMAS)}')
  return _SCHEMAS[base][3]


def text_of(value: object) -> str | None:
  """TFDS text features come as bytes (str under tfds.testing.mock_data)."""
  if isinstance(value, bytes):
    # Invalid bytes become lone surrogates, counted as 'undecodable' later.
    return value.decode('utf-8', errors='surrogateescape')
  return value if isinstance(value, str) else None


def scalar_of(value: object) -> int | float | None:
  if value is None:
    return None
  item = getattr(value, 'item', None)  # numpy scalars and 0-d arrays.
  return item() if item else value  # pytype: disable=bad-return-type


def _prepared_elsewhere_help() -> str:
  from pete_jax.data.sources import LOCAL_FORMATS  # pylint: disable=import-outside-toplevel  (a cycle)

  formats = ', '.join(f'{f}:' for f in LOCAL_FORMATS[:-1]) + f' or {LOCAL_FORMATS[-1]}:PATH'
  return (
    'Either prepare it on a machine with internet access (python -m pete_jax.data.prepare '
    "--config=<the same config>) and copy that machine's TFDS data_dir here "
    '(data.tfds_data_dir; default ~/tensorflow_datasets), or train on local files: '
    'python -m pete_jax.main --config=configs/local_data.py, with PETE_DATA_DIR pointing at '
    'SNLI/MNLI CSVs and STS-B TSVs (data.train_sources / data.eval_source / '
    f'data.finetune_source take {formats}).'
  )


def _not_available(name: str, split: str, where: str) -> SourceError:
  return SourceError(
    f'TFDS dataset {name!r} (split {split!r}) is not prepared. TFDS expects it under {where} '
    '(set data.tfds_data_dir to change the root), and data.tfds_download=False forbids '
    f'downloading it. {_prepared_elsewhere_help()}'
  )


def _unreadable(name: str, split: str, where: str, error: Exception) -> SourceError:
  return SourceError(
    f'TFDS dataset {name!r} (split {split!r}) is prepared under {where} but cannot be read '
    'as a data source: it must be in the array_record format (re-prepare it with '
    f"file_format='array_record'). TFDS said: {type(error).__name__}: {error}"
  )


def _builder_module(base: str) -> str | None:
  """The TFDS module that defines a builder (every GLUE task is in the ``glue`` one)."""
  return _BUILDER_MODULES['glue/stsb'] if base.startswith('glue/') else _BUILDER_MODULES.get(base)


def _download_host(name: str) -> tuple[str, int]:
  """(host, port) a download of ``name`` first connects to: its server, or the HTTPS proxy."""
  proxy = os.environ.get('HTTPS_PROXY') or os.environ.get('https_proxy')
  if proxy and '://' not in proxy:  # 'proxy.corp:3128' is valid for requests, and means http
    proxy = f'http://{proxy}'
  base = _base_name(name)
  # Every GLUE task (MRPC's MSR files too) downloads from the same host as STS-B.
  default = _DOWNLOAD_URLS['glue/stsb' if base.startswith('glue/') else base]
  url = urllib.parse.urlsplit(proxy or default)
  return url.hostname or '', url.port or (443 if url.scheme == 'https' else 80)


def network_reachable(host: str, port: int, timeout_s: float = NETWORK_TIMEOUT_S) -> bool:
  """Whether a TCP connection to ``host:port`` opens within ``timeout_s`` (DNS included)."""
  try:
    with socket.create_connection((host, port), timeout=timeout_s):
      return True
  except OSError:
    return False


def _offline(name: str, split: str, where: str, host: str, port: int) -> SourceError:
  return SourceError(
    f'TFDS dataset {name!r} (split {split!r}) is not prepared under {where} and cannot be '
    f'downloaded: no network connection to {host}:{port} within {NETWORK_TIMEOUT_S:.0f} s. '
    f'{_prepared_elsewhere_help()}'
  )


def _without_tensorflow(base: str) -> None:
  """Lets the multi_nli builder prepare its data without TensorFlow installed.

  Of the three builders, only multi_nli reads its raw files through TensorFlow
  (``tf.io.gfile.GFile`` and ``tf.compat.as_text``; TFDS itself prepares
  array_record files without TF). Where TensorFlow is absent, its module gets a
  stand-in for exactly those two calls (etils.epath, which TFDS uses elsewhere).
  """
  if base != 'multi_nli' or importlib.util.find_spec('tensorflow') is not None:
    return
  from etils import epath  # pylint: disable=g-import-not-at-top

  module = importlib.import_module(_BUILDER_MODULES[base])
  module.tf = types.SimpleNamespace(
    io=types.SimpleNamespace(
      gfile=types.SimpleNamespace(GFile=lambda path, mode='r': epath.Path(path).open(mode))
    ),
    compat=types.SimpleNamespace(
      as_text=lambda b: b.decode('utf-8') if isinstance(b, bytes) else b
    ),
  )


def open_source(name: str, split: str, data_dir: str | None, download: bool):
  """The random-access TFDS source of one split, downloading and preparing it if allowed.

  TFDS picks array_record (the format ``data_source`` reads) by itself only when
  data_dir is None; it is asked for explicitly, or a download into a given
  data_dir would be prepared as unreadable tfrecords. Before a download the
  server is probed, so a machine without network stops in seconds with a clear
  message instead of inside TFDS's retry loop.
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  base = _base_name(name)
  if _builder_module(base):
    importlib.import_module(_builder_module(base))
  builder = tfds.builder(name, data_dir=data_dir, file_format='array_record')
  where = os.fspath(builder.data_dir)
  if not builder.is_prepared():
    if not download:
      raise _not_available(name, split, where)
    host, port = _download_host(name)
    if not network_reachable(host, port):
      raise _offline(name, split, where, host, port)
    _without_tensorflow(base)
    logging.info(
      'TFDS: downloading and preparing %s into %s (once; later runs reuse it)', name, where
    )
    try:
      builder.download_and_prepare()
    except Exception as e:  # pylint: disable=broad-except
      raise SourceError(
        f'TFDS could not download and prepare {name!r} into {where}: '
        f'{type(e).__name__}: {e}. {_prepared_elsewhere_help()}'
      ) from e
  known = sorted(builder.info.splits)
  # 'train', 'train[:10%]', 'train+validation': each named split must exist. Checked here
  # so that a typo is not reported as an unreadable (wrongly prepared) dataset. (No split
  # known, as under tfds.testing.mock_data: TFDS decides.)
  unknown = known and [
    s for s in (re.sub(r'\[.*\]$', '', p.strip()) for p in split.split('+')) if s not in known
  ]
  if unknown:
    raise SourceError(f'TFDS dataset {name!r} has no split {unknown[0]!r}; its splits: {known}.')
  try:
    return builder.as_data_source(split=split)
  except Exception as e:  # pylint: disable=broad-except
    raise _unreadable(name, split, where, e) from e


def read_tfds(name: str, split: str, data_dir: str | None, download: bool) -> Iterator[RawRow]:
  """Yields the rows of one TFDS split in the dataset's own order.

  Args:
    name: TFDS name, e.g. 'snli', 'multi_nli', 'glue/stsb' (optionally with
      ':version').
    split: TFDS split, e.g. 'train', 'validation_matched', 'train[:10%]'.
    data_dir: TFDS data_dir or None for TFDS's default.
    download: Whether TFDS may download and prepare the data.
  """
  text_a, text_b, target, _ = _SCHEMAS[_base_name(name)]
  source = open_source(name, split, data_dir, download)
  for i, ex in enumerate(source):
    yield RawRow(
      f'tfds:{name}:{split}[{i}]',
      text_of(ex.get(text_a)),
      text_of(ex.get(text_b)),
      scalar_of(ex.get(target)),
    )
