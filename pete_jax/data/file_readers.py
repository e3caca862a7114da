"""Readers for the local file formats of SNLI/MultiNLI and STS-B.

Each reader yields `RawRow`s; validation happens in `records.to_pair`, so
readers only locate fields. Files are opened with errors='surrogateescape' so
that one line of invalid UTF-8 becomes one 'undecodable' row instead of
aborting the whole file. The first line is the exception: a file that does not
start with valid UTF-8 is taken for another encoding (or a binary file) and
refused as a whole, before any row is read.
"""

from __future__ import annotations

import csv
import json
import os
from typing import Iterator, Sequence, TextIO

from pete_jax.data.records import RawRow, SourceError

# Original stsbenchmark sts-*.csv: genre, file, year, id, score, s1, s2
# [, source1, source2] (0-based columns 4, 5, 6).
_STSB_CSV_SCORE, _STSB_CSV_A, _STSB_CSV_B = 4, 5, 6


# Bytes read to tell a text file from a binary one (a NUL byte, or no valid
# UTF-8 line at the start, means the file is not the text format asked for).
_SNIFF_BYTES = 8192


def _check_text(path: str, fmt: str) -> None:
  """Raises SourceError, without quoting the content, if ``path`` is not UTF-8 text."""
  with open(path, 'rb') as f:
    head = f.read(_SNIFF_BYTES)
  first_line = head.split(b'\n', 1)[0]
  problem = None
  if b'\x00' in head:
    problem = 'it holds binary data (NUL bytes)'
  else:
    try:
      first_line.decode('utf-8')
    except UnicodeDecodeError as e:
      if len(first_line) < _SNIFF_BYTES or e.start < len(first_line) - 4:  # not a cut character
        problem = f'its first line is not valid UTF-8 (byte {e.start})'
  if problem:
    raise SourceError(
      f'{fmt} source {path!r} is not a UTF-8 text file: {problem}. '
      f'Convert it to UTF-8 text, or check that the path names the right file.'
    )


def _open(path: str, fmt: str, newline: str = '\n') -> TextIO:
  """A text file of ``fmt``. Lines end at '\n' only (a '\r\n' ending is stripped by the
  readers), so a stray '\r' inside a field stays in its row; csv passes newline=''."""
  if os.path.isdir(path):
    raise SourceError(f'{fmt} source {path!r} is a directory; give the path of a file')
  if not os.path.isfile(path):
    raise SourceError(f'{fmt} source: no such file: {path!r} (absolute: {os.path.abspath(path)})')
  _check_text(path, fmt)
  # utf-8-sig drops a byte-order mark (some GLUE/MSR files carry one).
  return open(path, encoding='utf-8-sig', errors='surrogateescape', newline=newline)


def tsv_lines(path: str, fmt: str) -> Iterator[tuple[int, list[str]]]:
  """(1-based line number, fields) of each non-blank line, quoting off.

  STS-B sentences contain unbalanced quote characters, so a csv reader with
  quoting on would merge lines; splitting on tabs is the format's rule.
  """
  with _open(path, fmt) as f:
    for lineno, line in enumerate(f, start=1):
      line = line.rstrip('\r\n')
      if line.strip():
        yield lineno, line.split('\t')


def _column_index(header: Sequence[str], name: str, path: str) -> int:
  names = [h.strip() for h in header]
  if name not in names:
    raise SourceError(f'{path}: column {name!r} not found; columns found: {names}')
  return names.index(name)


def read_nli_jsonl(path: str) -> Iterator[RawRow]:
  """SNLI 1.0 / MultiNLI 1.0 jsonl: gold_label, sentence1, sentence2."""
  with _open(path, 'nli_jsonl') as f:
    for lineno, line in enumerate(f, start=1):
      if not line.strip():
        continue
      where = f'{path}:{lineno}'
      try:
        obj = json.loads(line)
      except json.JSONDecodeError:
        yield RawRow(where, error='malformed_json')
        continue
      if not isinstance(obj, dict):
        yield RawRow(where, error='malformed_json')
        continue
      fields = [obj.get(k) for k in ('sentence1', 'sentence2', 'gold_label')]
      if not all(isinstance(v, str) for v in fields):
        yield RawRow(where, error='missing_field')
        continue
      yield RawRow(where, fields[0], fields[1], fields[2])


def read_stsb_tsv(path: str) -> Iterator[RawRow]:
  """GLUE STS-B tsv: header row; sentence1, sentence2, score by name."""
  lines = tsv_lines(path, 'stsb_tsv')
  _, header = next(lines, (0, None))
  if header is None:
    raise SourceError(f'{path}: empty file (expected a header row)')
  cols = [_column_index(header, n, path) for n in ('sentence1', 'sentence2', 'score')]
  for lineno, fields in lines:
    where = f'{path}:{lineno}'
    if len(fields) != len(header):
      yield RawRow(where, error='wrong_column_count')
    else:
      yield RawRow(where, *(fields[c] for c in cols))


def read_stsb_csv(path: str) -> Iterator[RawRow]:
  """Original stsbenchmark sts-*.csv: tabs, no header, score in column 5."""
  for lineno, fields in tsv_lines(path, 'stsb_csv'):
    where = f'{path}:{lineno}'
    if len(fields) <= _STSB_CSV_B:
      yield RawRow(where, error='wrong_column_count')
    else:
      yield RawRow(where, fields[_STSB_CSV_A], fields[_STSB_CSV_B], fields[_STSB_CSV_SCORE])


def _csv_rows(f: TextIO, path: str) -> Iterator[tuple[int, list[str]]]:
  """(line number where the record ends, fields) of each record that is not blank."""
  reader = csv.reader(f)
  while True:
    try:
      row = next(reader)
    except StopIteration:
      return
    except csv.Error as e:  # e.g. a NUL byte: the file is not CSV.
      raise SourceError(f'{path}:{reader.line_num}: not valid CSV: {e}') from e
    if any(field.strip() for field in row):
      yield reader.line_num, row


def read_pairs(path: str, columns: Sequence[str], delimiter: str) -> Iterator[RawRow]:
  """Generic CSV (quoted) or TSV (quoting off) with a header row.

  Args:
    path: The file.
    columns: Names of the (first sentence, second sentence, label or score)
      columns, e.g. ('premise', 'hypothesis', 'label').
    delimiter: ',' (pairs_csv, standard CSV quoting) or '\\t' (pairs_tsv).
  """
  fmt = 'pairs_csv' if delimiter == ',' else 'pairs_tsv'
  if delimiter == ',':
    f = _open(path, fmt, newline='')  # the csv module finds record ends itself
    rows = _csv_rows(f, path)
  else:
    f = None
    rows = tsv_lines(path, fmt)
  try:
    _, header = next(rows, (0, None))
    if header is None:
      raise SourceError(f'{path}: empty file (expected a header row)')
    cols = [_column_index(header, name, path) for name in columns]
    for lineno, fields in rows:
      where = f'{path}:{lineno}'
      if len(fields) != len(header):
        yield RawRow(where, error='wrong_column_count')
      else:
        yield RawRow(where, *(fields[c] for c in cols))
  finally:
    if f is not None:
      f.close()
