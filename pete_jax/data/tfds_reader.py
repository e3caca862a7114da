"""TFDS sources (snli, multi_nli, glue/stsb) through `tfds.data_source`.

`tfds.data_source` reads prepared array_record files without TensorFlow
(`tfds.load` would need it), so this works on TF-free runtimes. TFDS is
imported lazily: local-file runs never pay for it.
"""

from __future__ import annotations

import importlib
import re
from typing import Iterator

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
LOCAL_FORMATS_HELP = (
    'nli_jsonl:PATH (SNLI/MultiNLI 1.0 jsonl), pairs_csv:PATH / '
    'pairs_tsv:PATH (header with data.csv_columns), stsb_tsv:PATH (GLUE '
    'STS-B tsv), stsb_csv:PATH (original stsbenchmark sts-*.csv)')


def _base_name(name: str) -> str:
  """'glue/stsb:2.0.0' -> 'glue/stsb'."""
  return re.sub(r':[0-9.]+$', '', name)


def tfds_kind(name: str) -> str:
  """'nli' or 'sts' for a supported TFDS name; raises SourceError otherwise."""
  base = _base_name(name)
  if base not in _SCHEMAS:
    raise SourceError(f'unsupported TFDS dataset {name!r}; supported: '
                      f'{sorted(_SCHEMAS)}')
  return _SCHEMAS[base][3]


def _text(value: object) -> str | None:
  """TFDS text features come as bytes (str under tfds.testing.mock_data)."""
  if isinstance(value, bytes):
    # Invalid bytes become lone surrogates, counted as 'undecodable' later.
    return value.decode('utf-8', errors='surrogateescape')
  return value if isinstance(value, str) else None


def _scalar(value: object) -> int | float | None:
  if value is None:
    return None
  item = getattr(value, 'item', None)  # numpy scalars and 0-d arrays.
  return item() if item else value  # pytype: disable=bad-return-type


def _not_available(name: str, split: str, data_dir: str | None,
                   error: Exception) -> SourceError:
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  try:
    builder = tfds.builder(name, data_dir=data_dir)
    where, prepared = builder.data_dir, builder.is_prepared()
  except Exception:  # pylint: disable=broad-except
    where, prepared = data_dir or '~/tensorflow_datasets', False
  state = ('is prepared there but not in the array_record format that '
           'tfds.data_source needs (re-prepare it with file_format='
           "'array_record')" if prepared else 'is not prepared')
  return SourceError(
      f'TFDS dataset {name!r} (split {split!r}) {state}. TFDS expects it '
      f'under {where} (set data.tfds_data_dir to change the root). Either '
      'run once with --config.data.tfds_download=True on a machine with '
      'internet access (then copy the data_dir here), or point '
      'data.train_sources / data.eval_source / data.finetune_source at local '
      f'files, with formats: {LOCAL_FORMATS_HELP}. TFDS said: '
      f'{type(error).__name__}: {error}')


def read_tfds(name: str, split: str, data_dir: str | None,
              download: bool) -> Iterator[RawRow]:
  """Yields the rows of one TFDS split in the dataset's own order.

  Args:
    name: TFDS name, e.g. 'snli', 'multi_nli', 'glue/stsb' (optionally with
      ':version').
    split: TFDS split, e.g. 'train', 'validation_matched', 'train[:10%]'.
    data_dir: TFDS data_dir or None for TFDS's default.
    download: Whether TFDS may download and prepare the data.
  """
  text_a, text_b, target, _ = _SCHEMAS[_base_name(name)]
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  module = _BUILDER_MODULES.get(_base_name(name))
  if module:
    importlib.import_module(module)
  try:
    # TFDS picks array_record (the random-access format data_source needs)
    # by itself only when data_dir is None; say it, or a download into a
    # given data_dir would be prepared as unreadable tfrecords.
    source = tfds.data_source(
        name, split=split, data_dir=data_dir, download=download,
        builder_kwargs={'file_format': 'array_record'})
  except Exception as e:  # pylint: disable=broad-except
    if download:
      raise
    raise _not_available(name, split, data_dir, e) from e
  for i, ex in enumerate(source):
    yield RawRow(f'tfds:{name}:{split}[{i}]', _text(ex.get(text_a)),
                 _text(ex.get(text_b)), _scalar(ex.get(target)))
