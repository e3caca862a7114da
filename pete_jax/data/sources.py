"""Data sources: parse 'format:location[:split]' specs and read sentence pairs.

Training reads NLI pairs from `config.data.train_sources` (several sources are
concatenated in the order given; shuffling happens in batching). Evaluation
and fine-tuning read STS pairs from one spec. Every row goes through
`records.to_pair`, and what happened to each row is counted in a `ReadReport`.

Spec formats:
  tfds:NAME[:SPLIT]   snli, multi_nli (NLI) or glue/stsb (STS), via TFDS.
  nli_jsonl:PATH      SNLI 1.0 / MultiNLI 1.0 jsonl.
  pairs_csv:PATH      CSV with a header; columns from data.csv_columns.
  pairs_tsv:PATH      Same, tab-separated, quoting off.
  stsb_tsv:PATH       GLUE STS-B tsv (header: sentence1, sentence2, score).
  stsb_csv:PATH       Original stsbenchmark sts-*.csv (no header).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Iterable, Iterator

from absl import logging
import ml_collections

from pete_jax import progress
from pete_jax.data import file_readers
from pete_jax.data import tfds_reader
from pete_jax.data.records import NO_GOLD
from pete_jax.data.records import BadRowError
from pete_jax.data.records import RawRow
from pete_jax.data.records import ReadReport
from pete_jax.data.records import SentencePair
from pete_jax.data.records import SourceError
from pete_jax.data.records import to_pair

# Which kinds of pairs ('nli' labels, 'sts' scores) each local format holds.
_LOCAL_KINDS = {
  'nli_jsonl': ('nli',),
  'pairs_csv': ('nli', 'sts'),
  'pairs_tsv': ('nli', 'sts'),
  'stsb_tsv': ('sts',),
  'stsb_csv': ('sts',),
}
LOCAL_FORMATS = tuple(_LOCAL_KINDS)
FORMATS = ('tfds',) + LOCAL_FORMATS
LABEL_FILTERS = ('entailment', 'all')
ON_BAD_ROW = ('skip', 'error')


@dataclasses.dataclass(frozen=True)
class SourceSpec:
  """A parsed source spec.

  Attributes:
    format: One of FORMATS.
    location: TFDS name (with optional ':version') or file path.
    split: TFDS split, or None (local files have no split).
  """

  format: str
  location: str
  split: str | None = None


def parse_spec(spec: str) -> SourceSpec:
  """Parses 'format:location[:split]'.

  For TFDS the split is everything after the name (and an optional version
  'x.y.z'), so slicing splits like 'train[:10%]' work. For files everything
  after the format is the path.
  """
  fmt, sep, rest = spec.partition(':')
  if not sep or fmt not in FORMATS or not rest:
    raise SourceError(
      f'bad source spec {spec!r}: expected format:location with format one of {FORMATS}'
    )
  if fmt != 'tfds':
    return SourceSpec(fmt, rest)
  m = re.fullmatch(r'([^:\[]+(?::\d+\.\d+\.\d+)?)(?::(.+))?', rest)
  if not m:
    raise SourceError(f'bad TFDS spec {spec!r}: expected tfds:NAME[:SPLIT]')
  return SourceSpec(fmt, m.group(1), m.group(2))


def check_source_kind(spec: SourceSpec, wanted: str) -> None:
  """Raises SourceError unless `spec` can give `wanted` ('nli' | 'sts') pairs."""
  kinds = (
    (tfds_reader.tfds_kind(spec.location),) if spec.format == 'tfds' else _LOCAL_KINDS[spec.format]
  )
  if wanted not in kinds:
    need = 'NLI labels' if wanted == 'nli' else 'STS scores 0..5'
    raise SourceError(
      f'{spec.format}:{spec.location} holds {"/".join(kinds)} '
      f'pairs, but {wanted} pairs ({need}) are needed here'
    )


def _rows(
  spec: SourceSpec, config: ml_collections.ConfigDict, default_split: str
) -> Iterator[RawRow]:
  data = config.data
  if spec.format == 'tfds':
    return tfds_reader.read_tfds(
      spec.location,
      spec.split or default_split,
      data.tfds_data_dir or None,
      bool(data.tfds_download),
    )
  if spec.format == 'nli_jsonl':
    return file_readers.read_nli_jsonl(spec.location)
  if spec.format == 'stsb_tsv':
    return file_readers.read_stsb_tsv(spec.location)
  if spec.format == 'stsb_csv':
    return file_readers.read_stsb_csv(spec.location)
  columns = [c.strip() for c in str(data.csv_columns).split(',')]
  if len(columns) != 3 or not all(columns):
    raise SourceError(
      f'data.csv_columns must name 3 columns (a, b, label or score), got {data.csv_columns!r}'
    )
  delimiter = ',' if spec.format == 'pairs_csv' else '\t'
  return file_readers.read_pairs(spec.location, columns, delimiter)


def _collect(
  rows: Iterable[RawRow], kind: str, label_filter: str, on_bad_row: str, report: ReadReport
) -> list[SentencePair]:
  """Validates rows, applies the NLI label filter and counts everything."""
  pairs = []
  for row in rows:
    report.read += 1
    pair = to_pair(row, kind)
    if isinstance(pair, str):
      if on_bad_row == 'error':
        raise BadRowError(f'{row.where}: bad row: {pair}')
      report.drop(pair, row.where)
      continue
    if kind == 'nli':
      report.labels[pair.label or NO_GOLD] += 1
      if label_filter == 'entailment' and pair.label != 'entailment':
        reason = f'label_filter:{pair.label}' if pair.label else 'no_gold_label'
        report.drop(reason, row.where)
        continue
    report.kept += 1
    pairs.append(pair)
  return pairs


def read_source(
  spec: str, kind: str, config: ml_collections.ConfigDict, default_split: str = 'train'
) -> tuple[list[SentencePair], ReadReport]:
  """Reads one source.

  Args:
    spec: 'format:location[:split]'.
    kind: 'nli' (labels; data.label_filter applies) or 'sts' (scores 0..5).
    config: The experiment config (section `data`).
    default_split: TFDS split when the spec names none.

  Returns:
    The pairs in file order and a report of what was read and dropped.
  """
  data = config.data  # data.label_filter and data.on_bad_row: checked by configuration.validate
  parsed = parse_spec(spec)
  check_source_kind(parsed, kind)
  report = ReadReport(source=spec)
  rows = progress.iterate(_rows(parsed, config, default_split), f'reading {spec}', unit=' rows')
  pairs = _collect(rows, kind, data.label_filter, data.on_bad_row, report)
  logging.info('%s', report.summary())
  if report.bad_rows:
    logging.warning(
      "%s: skipped %d malformed rows (set data.on_bad_row='error' to stop at the first)",
      spec,
      report.bad_rows,
    )
  if not report.read:
    logging.warning('%s: no rows at all', spec)
  return pairs, report


def _non_empty(pairs: list[SentencePair], report: ReadReport, what: str) -> None:
  if not pairs:
    raise SourceError(f'no {what} pairs left after reading and filtering:\n{report.summary()}')


def load_nli_pairs(config: ml_collections.ConfigDict) -> tuple[list[SentencePair], ReadReport]:
  """All training pairs of `config.data.train_sources`, concatenated.

  Returns:
    The pairs (sources in the order given, each in file order) and the merged
    report (`report.parts` has one report per source).

  Raises:
    SourceError: a source is missing or malformed, or leaves no pair.
  """
  specs = config.data.train_sources
  if isinstance(specs, str):
    specs = (specs,)
  if not specs:
    raise SourceError('data.train_sources is empty')
  pairs, reports = [], []
  for spec in specs:
    source_pairs, report = read_source(spec, 'nli', config)
    # Each source, not only their sum: one reduced to nothing is a wrong file or
    # format (its report says which), not a smaller dataset.
    _non_empty(source_pairs, report, 'NLI training')
    pairs.extend(source_pairs)
    reports.append(report)
  return pairs, ReadReport.merge(reports)


def load_sts_pairs(
  spec: str, config: ml_collections.ConfigDict, default_split: str = 'validation'
) -> tuple[list[SentencePair], ReadReport]:
  """STS pairs (text_a, text_b, score) of one eval or fine-tuning spec.

  Args:
    spec: e.g. config.data.eval_source or config.data.finetune_source.
    config: The experiment config.
    default_split: TFDS split when the spec names none. 'validation' so that
      a bare 'tfds:glue/stsb' can never silently evaluate on train.
  """
  pairs, report = read_source(spec, 'sts', config, default_split)
  _non_empty(pairs, report, 'STS')
  return pairs, report
