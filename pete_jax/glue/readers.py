"""Reading a task's examples: TFDS ``glue/<task>``, GLUE's TSV files, the MSR paraphrase
files of MRPC, and premise/hypothesis CSVs (the local stand-ins).

Source specs, as for pre-training data (``format:location``):

  tfds:glue/<task>:<split>      TFDS, downloaded and prepared on first use.
  glue_tsv:PATH                 GLUE's train.tsv / dev.tsv of the task (CoLA's have no header).
  msr_paraphrase:PATH[:PART]    msr_paraphrase_{train,test}.txt; PART 'train' or 'dev' splits
                                GLUE's 408-pair MRPC dev set out of the training file.
  nli_csv:PATH                  CSV with premise, hypothesis, label columns.

Every row is validated by ``to_example`` and counted in a ``ReadReport`` (the same
bad-row reasons as the NLI and STS readers), so nothing is dropped silently.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Iterator

from absl import logging
import numpy as np

from pete_jax.data import file_readers, sources, tfds_reader
from pete_jax.data.records import (
  BadRowError,
  RawRow,
  ReadReport,
  SourceError,
  STS_SCORE_RANGE,
  decodable,
)
from pete_jax.glue.tasks import Task

FORMATS = ('tfds', 'glue_tsv', 'msr_paraphrase', 'nli_csv')
# GLUE's TSV columns (first text, second text or None, label) by header name; CoLA's
# files have no header: (sentence, None, label) by position.
_TSV_COLUMNS = {
  'cola': (3, None, 1),
  'sst2': ('sentence', None, 'label'),
  'mrpc': ('#1 String', '#2 String', 'Quality'),
  'qqp': ('question1', 'question2', 'is_duplicate'),
  'stsb': ('sentence1', 'sentence2', 'score'),
  'mnli': ('sentence1', 'sentence2', 'gold_label'),
  'qnli': ('question', 'sentence', 'label'),
  'rte': ('sentence1', 'sentence2', 'label'),
  'wnli': ('sentence1', 'sentence2', 'label'),
}
MRPC_DEV_SIZE = 408  # GLUE's MRPC dev split, carved out of msr_paraphrase_train.txt
# GLUE's download script takes the dev pairs from this list (#1 ID, #2 ID per line); when
# it lies beside the MSR training file, the carve is GLUE's own.
MRPC_DEV_IDS = 'dev_ids.tsv'


@dataclasses.dataclass(frozen=True)
class Example:
  """One example: one or two texts and a label id (classification) or a score (STS-B)."""

  text_a: str
  text_b: str | None
  label: float


def to_example(row: RawRow, task: Task) -> Example | str:
  """The validated example, or why it is dropped: a ``records.BAD_ROW_REASONS`` entry, or
  'no_gold_label' (an unlabelled NLI pair, filtered rather than bad)."""
  if row.error:
    return row.error
  texts = [row.text_a, row.text_b] if task.is_pair else [row.text_a]
  if any(t is None for t in texts):
    return 'missing_field'
  if not all(decodable(t) for t in texts):
    return 'undecodable'
  texts = [t.strip() for t in texts]
  if not all(texts):
    return 'empty_sentence'
  label = _label(row.target, task)
  if isinstance(label, str):
    return label
  return Example(texts[0], texts[1] if task.is_pair else None, label)


def _label(target, task: Task) -> float | str:
  if task.is_regression:
    try:
      score = float(target)
    except (TypeError, ValueError):
      return 'non_numeric_score'
    if not math.isfinite(score):
      return 'non_numeric_score'
    lo, hi = STS_SCORE_RANGE
    return score if lo <= score <= hi else 'score_out_of_range'
  if isinstance(target, str):
    target = target.strip()
    if target in task.label_names:
      return float(task.label_names.index(target))
  if target is not None and not isinstance(target, bool):
    if target == -1:  # TFDS: a test split without public labels.
      return 'no_gold_label'
    if isinstance(target, int) and 0 <= target < task.num_labels:
      return float(target)
  return 'unknown_label'


def _glue_tsv(path: str, task: Task) -> Iterator[RawRow]:
  if task.name not in _TSV_COLUMNS:
    raise SourceError(f'glue_tsv: no GLUE TSV layout for task {task.name!r}')
  columns = _TSV_COLUMNS[task.name]
  lines = file_readers.tsv_lines(path, 'glue_tsv')
  width = None
  if isinstance(columns[0], str):
    _, header = next(lines, (0, None))
    if header is None:
      raise SourceError(f'{path}: empty file (expected a header row)')
    names = [h.strip() for h in header]
    missing = [c for c in columns if c is not None and c not in names]
    if missing:
      raise SourceError(
        f'{path}: not a GLUE {task.name} TSV: columns {missing} missing; found {names}'
      )
    columns = tuple(None if c is None else names.index(c) for c in columns)
    width = len(header)
  for lineno, fields in lines:
    where = f'{path}:{lineno}'
    if (width is not None and len(fields) != width) or len(fields) <= max(
      c for c in columns if c is not None
    ):
      yield RawRow(where, error='wrong_column_count')
      continue
    a, b, label = (None if c is None else fields[c] for c in columns)
    yield RawRow(where, a, b, label)


def _dev_ids(path: str) -> set | None:
  ids_path = os.path.join(os.path.dirname(path), MRPC_DEV_IDS)
  if not os.path.exists(ids_path):
    return None
  with open(ids_path, encoding='utf-8') as f:
    return {tuple(line.split('\t')[:2]) for line in f.read().split('\n') if line.strip()}


def _msr_paraphrase(path: str, part: str, task: Task) -> Iterator[RawRow]:
  """The MSR file; with ``part`` only GLUE's dev pairs ('dev') or the others ('train').

  Without GLUE's ``dev_ids.tsv`` beside the file, the dev set is 408 pairs drawn with a
  fixed seed (the same on every machine, but not GLUE's own list).
  """
  if part not in ('', 'train', 'dev'):
    raise SourceError(f"msr_paraphrase:{path}:{part}: the part must be 'train' or 'dev'")
  # The MSR files have GLUE MRPC's TSV header (Quality, #1 ID, #2 ID, #1 String, #2 String).
  rows = list(_glue_tsv(path, task))
  if not part:
    yield from rows
    return
  ids = _dev_ids(path)
  if ids is None:
    logging.warning(
      "%s: no %s beside it; MRPC dev is %d pairs drawn with a fixed seed, not GLUE's list",
      path,
      MRPC_DEV_IDS,
      MRPC_DEV_SIZE,
    )
    dev = set(np.random.default_rng(0).permutation(len(rows))[:MRPC_DEV_SIZE].tolist())
    in_dev = [i in dev for i in range(len(rows))]
  else:
    fields = list(file_readers.tsv_lines(path, 'msr_paraphrase'))[1:]
    in_dev = [tuple(f[1:3]) in ids for _, f in fields]
  yield from (row for row, d in zip(rows, in_dev) if d == (part == 'dev'))


def _nli_csv(path: str) -> Iterator[RawRow]:
  return file_readers.read_pairs(path, ('premise', 'hypothesis', 'label'), ',')


def _tfds(name: str, split: str, task: Task, data_dir: str | None, download: bool):
  source = tfds_reader.open_source(name, split, data_dir, download)
  key_b = task.text_keys[1] if task.is_pair else None
  for i, ex in enumerate(source):
    yield RawRow(
      f'tfds:{name}:{split}[{i}]',
      tfds_reader.text_of(ex.get(task.text_keys[0])),
      tfds_reader.text_of(ex.get(key_b)) if key_b else None,
      tfds_reader.scalar_of(ex.get('label')),
    )


def rows(spec: str, task: Task, tfds_data_dir: str = '', download: bool = True):
  """The raw rows of a source spec (see the module docstring)."""
  fmt, sep, rest = spec.partition(':')
  if not sep or fmt not in FORMATS or not rest:
    raise SourceError(f'bad source spec {spec!r}: expected format:location, format in {FORMATS}')
  if fmt == 'tfds':  # the pre-training data's TFDS grammar: NAME[:VERSION][:SPLIT]
    tfds_spec = sources.parse_spec(spec)
    return _tfds(
      tfds_spec.location, tfds_spec.split or 'train', task, tfds_data_dir or None, download
    )
  if fmt == 'glue_tsv':
    return _glue_tsv(rest, task)
  if fmt == 'msr_paraphrase':
    path, _, part = rest.rpartition(':') if rest.endswith((':train', ':dev')) else (rest, '', '')
    return _msr_paraphrase(path, part, task)
  return _nli_csv(rest)


def read_examples(
  spec: str, task: Task, on_bad_row: str = 'skip', tfds_data_dir: str = '', download: bool = True
) -> tuple[list[Example], ReadReport]:
  """The task's examples of one source, and what was read and dropped (by reason)."""
  report = ReadReport(source=spec)
  examples = []
  for row in rows(spec, task, tfds_data_dir, download):
    report.read += 1
    example = to_example(row, task)
    if isinstance(example, str):
      if on_bad_row == 'error' and example != 'no_gold_label':
        raise BadRowError(f'{row.where}: bad row: {example}')
      report.drop(example, row.where)
      continue
    if not task.is_regression:
      report.labels[task.label_names[int(example.label)]] += 1
    report.kept += 1
    examples.append(example)
  logging.info('%s', report.summary())
  if not examples:
    raise SourceError(f'no {task.name} examples in {spec}:\n{report.summary()}')
  return examples, report
