"""Records shared by every data source: a sentence pair and a read report.

Every reader (TFDS, jsonl, tsv, csv) turns its rows into `RawRow`s and one
function, `to_pair`, validates them. Keeping validation in one place means all
formats agree on what a bad row is and count it under the same reason.
"""

from __future__ import annotations

import collections
import dataclasses
import math

from pete_jax.errors import UserError

NLI_LABELS = ('entailment', 'neutral', 'contradiction')
# Key of `ReadReport.labels` for pairs without a gold label (SNLI's "-").
NO_GOLD = 'no_gold'

# Reasons a row is malformed. Only these count as bad rows (and fail in
# on_bad_row='error' mode); label-filter drops are not errors.
BAD_ROW_REASONS = (
  'wrong_column_count',
  'malformed_json',
  'missing_field',
  'undecodable',
  'empty_sentence',
  'unknown_label',
  'non_numeric_score',
  'score_out_of_range',
)
STS_SCORE_RANGE = (0.0, 5.0)


class SourceError(UserError, ValueError):
  """A data source cannot be read: missing file, column, data or config."""


class BadRowError(SourceError):
  """A malformed row in on_bad_row='error' mode."""


@dataclasses.dataclass(frozen=True)
class SentencePair:
  """One training or evaluation example.

  Attributes:
    text_a: First sentence (NLI premise, STS sentence1).
    text_b: Second sentence (NLI hypothesis, STS sentence2).
    label: NLI label ('entailment' | 'neutral' | 'contradiction'), None for
      STS pairs and for NLI pairs without a gold label.
    score: STS gold similarity in [0, 5]; None for NLI pairs.
  """

  text_a: str
  text_b: str
  label: str | None = None
  score: float | None = None


@dataclasses.dataclass(frozen=True)
class RawRow:
  """A row as a reader found it, before validation.

  Attributes:
    where: 'file:line' (or 'tfds:name:split[i]'), for messages.
    text_a: First sentence or None if absent.
    text_b: Second sentence or None if absent.
    target: Raw label (str or TFDS int) or score (str or float).
    error: A reason from BAD_ROW_REASONS when the reader already rejected
      the row (e.g. wrong column count); None otherwise.
  """

  where: str
  text_a: str | None = None
  text_b: str | None = None
  target: str | int | float | None = None
  error: str | None = None


@dataclasses.dataclass
class ReadReport:
  """What reading one or more sources did, for logs and `python -m pete_jax.data.summary`.

  Invariant: read == kept + sum(dropped.values()).

  Attributes:
    source: The spec(s) read.
    read: Data rows read (blank lines and headers excluded).
    kept: Pairs returned.
    dropped: Count per reason: a bad-row reason (BAD_ROW_REASONS) or a
      label-filter reason ('label_filter:<label>', 'no_gold_label').
    labels: NLI label counts of the well-formed rows, before the label filter
      (NO_GOLD for pairs without a gold label).
    first_where: The first 'file:line' seen for each dropped reason.
    parts: Per-source reports when this one merges several.
  """

  source: str
  read: int = 0
  kept: int = 0
  dropped: collections.Counter = dataclasses.field(default_factory=collections.Counter)
  labels: collections.Counter = dataclasses.field(default_factory=collections.Counter)
  first_where: dict = dataclasses.field(default_factory=dict)
  parts: list = dataclasses.field(default_factory=list)

  @property
  def bad_rows(self) -> int:
    """Number of malformed rows (label-filter drops excluded)."""
    return sum(n for r, n in self.dropped.items() if r in BAD_ROW_REASONS)

  def drop(self, reason: str, where: str) -> None:
    self.dropped[reason] += 1
    self.first_where.setdefault(reason, where)

  @classmethod
  def merge(cls, reports: list[ReadReport]) -> ReadReport:
    """Sums several per-source reports, keeping them in `parts`."""
    total = cls(source=', '.join(r.source for r in reports), parts=reports)
    for r in reports:
      total.read += r.read
      total.kept += r.kept
      total.dropped.update(r.dropped)
      total.labels.update(r.labels)
      for reason, where in r.first_where.items():
        total.first_where.setdefault(reason, where)
    return total

  def __str__(self) -> str:
    return self.summary()

  def summary(self) -> str:
    """One human-readable line per fact, for logging."""
    lines = [f'{self.source}: read {self.read}, kept {self.kept}, dropped {self.read - self.kept}']
    for reason, n in sorted(self.dropped.items()):
      kind = 'bad row' if reason in BAD_ROW_REASONS else 'filtered'
      lines.append(
        f'  dropped {n:>8} {reason} ({kind}; first at {self.first_where.get(reason, "?")})'
      )
    if self.labels:
      labels = ', '.join(f'{k} {v}' for k, v in sorted(self.labels.items()))
      lines.append(f'  labels: {labels}')
    return '\n'.join(lines)


def decodable(text: str) -> bool:
  """False if `text` holds bytes that were not valid UTF-8.

  Files are opened with errors='surrogateescape', which maps each invalid
  byte to a lone surrogate; those cannot be encoded back to UTF-8.
  """
  try:
    text.encode('utf-8')
  except UnicodeEncodeError:
    return False
  return True


def _nli_label(target: str | int | float | None) -> str | None:
  """Normalised NLI label, NO_GOLD, or raises KeyError if unknown.

  Names ('entailment', SNLI's '-' for no gold label) or the TFDS/Hugging Face integers
  (0 entailment, 1 neutral, 2 contradiction, -1 no gold), also as text, as CSV exports
  of those datasets write them.
  """
  if isinstance(target, str):
    value = target.strip().lower()
    if value in NLI_LABELS:
      return value
    if value == '-':  # SNLI/MNLI: annotators did not agree.
      return NO_GOLD
    if value in ('0', '1', '2', '-1'):  # a CSV export of the TFDS/HF integers
      return _nli_label(int(value))
    raise KeyError(value)
  if target is not None and not isinstance(target, bool):
    if target == -1:  # TFDS: -1 means no gold label.
      return NO_GOLD
    if target in (0, 1, 2):  # TFDS ClassLabel order.
      return NLI_LABELS[int(target)]
  raise KeyError(target)


def to_pair(row: RawRow, kind: str) -> SentencePair | str:
  """Validates a raw row.

  Args:
    row: As a reader produced it.
    kind: 'nli' (target is a label) or 'sts' (target is a 0..5 score).

  Returns:
    The pair, or a reason from BAD_ROW_REASONS. NLI pairs without a gold label
    are returned with label None (the label filter decides on them).
  """
  if row.error:
    return row.error
  if row.text_a is None or row.text_b is None:
    return 'missing_field'
  if not (decodable(row.text_a) and decodable(row.text_b)):
    return 'undecodable'
  text_a, text_b = row.text_a.strip(), row.text_b.strip()
  if not text_a or not text_b:
    return 'empty_sentence'
  if kind == 'nli':
    try:
      label = _nli_label(row.target)
    except KeyError:
      return 'unknown_label'
    return SentencePair(text_a, text_b, None if label == NO_GOLD else label)
  if isinstance(row.target, str) and not decodable(row.target):
    return 'undecodable'
  try:
    score = float(row.target)  # pytype: disable=wrong-arg-types
  except (TypeError, ValueError):
    return 'non_numeric_score'
  if not math.isfinite(score):
    return 'non_numeric_score'
  if not STS_SCORE_RANGE[0] <= score <= STS_SCORE_RANGE[1]:
    return 'score_out_of_range'
  return SentencePair(text_a, text_b, None, score)
