"""Progress a person can read: a live tqdm bar on a terminal, plain periodic log lines elsewhere.

On a terminal (stderr is a TTY) long loops show a bar with rate and ETA; in CI,
notebooks' captured logs or ``nohup`` files a bar would be a mess of carriage
returns, so the training loop logs a line every ``log_every_steps`` instead
and the shorter loops stay quiet. ``PETE_PROGRESS=bar`` or ``=log`` overrides
the choice.
"""

import os
import sys
from typing import Iterable, Iterator, TypeVar

from absl import logging
import tqdm

T = TypeVar('T')


def interactive() -> bool:
  """Whether to draw bars: ``PETE_PROGRESS`` if set, else whether stderr is a terminal."""
  forced = os.environ.get('PETE_PROGRESS', '')
  if forced in ('bar', 'log'):
    return forced == 'bar'
  return sys.stderr.isatty()


def iterate(
  items: Iterable[T], desc: str, total: int | None = None, unit: str = 'it', min_total: int = 0
) -> Iterator[T]:
  """``items`` with a bar on a terminal (when there are at least ``min_total``); as is otherwise."""
  if total is None and hasattr(items, '__len__'):
    total = len(items)  # type: ignore[arg-type]
  if not interactive() or (total is not None and total < min_total):
    yield from items
    return
  yield from tqdm.tqdm(items, desc=desc, total=total, unit=unit, leave=False, dynamic_ncols=True)


class TrainingProgress:
  """Step, loss, pairs/s and ETA of one training stage: a bar on a terminal, log lines elsewhere."""

  def __init__(self, name: str, start: int, total: int):
    self.name, self.total = name, total
    self._bar = (
      tqdm.tqdm(desc=name, initial=start, total=total, unit='step', dynamic_ncols=True)
      if interactive()
      else None
    )

  def step(self) -> None:
    if self._bar is not None:
      self._bar.update(1)

  def report(self, done: int, loss: float, pairs_per_s: float, eta_s: float) -> None:
    """Called every ``log_every_steps``: the bar's numbers, or one log line."""
    if self._bar is not None:
      self._bar.set_postfix(loss=f'{loss:.4f}', pairs_s=f'{pairs_per_s:.0f}', refresh=False)
    else:
      logging.info(
        '[%s] step %d/%d  loss %.4f  %.0f pairs/s  ETA %s',
        self.name,
        done,
        self.total,
        loss,
        pairs_per_s,
        format_seconds(eta_s),
      )

  def note(self, message: str) -> None:
    """A line that stays (evaluation results): above the bar, or in the log."""
    if self._bar is not None:
      self._bar.write(message, file=sys.stderr)
    else:
      logging.info('%s', message)

  def close(self) -> None:
    if self._bar is not None:
      self._bar.close()


def format_seconds(seconds: float) -> str:
  """'42 s', '12 min', '3.5 h'."""
  if seconds < 120:
    return f'{seconds:.0f} s'
  if seconds < 7200:
    return f'{seconds / 60:.0f} min'
  return f'{seconds / 3600:.1f} h'
