"""Metric writing: TensorBoard event files (tensorboardX, no TensorFlow needed) plus the log.

clu's metric writers import TensorFlow, which recent Colab TPU runtimes no
longer ship; tensorboardX writes the same event files without it.
"""

from typing import Any, Mapping

from absl import app, logging
import tensorboardX


class MetricWriter:
  """Scalars and hyperparameters to ``<logdir>`` event files; only logs when ``just_logging``."""

  def __init__(self, logdir: str, just_logging: bool = False):
    self._tb = None if just_logging else tensorboardX.SummaryWriter(logdir)

  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
    if self._tb is not None:
      for name, value in scalars.items():
        self._tb.add_scalar(name, value, step)

  def write_hparams(self, hparams: Mapping[str, Any]) -> None:
    clean = {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in hparams.items()}
    logging.info('Hyperparameters: %s', clean)
    if self._tb is not None:
      self._tb.add_text('hparams', '\n'.join(f'    {k} = {v}' for k, v in sorted(clean.items())), 0)

  def flush(self) -> None:
    if self._tb is not None:
      self._tb.flush()

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()


# Library warnings that say nothing to act on (TFDS, on checking a not-yet-prepared dataset).
_NOISE = ('has no dataset_info.json',)


class _DropLibraryInfo:
  """Drops INFO records of chatty libraries (Orbax logs every file it writes) and known noise."""

  def __init__(self, prefixes: tuple[str, ...]):
    self._prefixes = prefixes

  def filter(self, record) -> bool:
    if any(n in record.getMessage() for n in _NOISE):
      return False
    if record.levelno > logging.converter.ABSL_TO_STANDARD[logging.INFO]:
      return True
    return not any(p in record.pathname for p in self._prefixes)


def quiet_library_logs(prefixes: tuple[str, ...] = ('orbax', 'xla_bridge')) -> None:
  """Keeps the run's own progress lines readable; warnings and errors still show."""
  logging.get_absl_handler().addFilter(_DropLibraryInfo(prefixes))


def start_command(argv) -> None:
  """What every ``python -m pete_jax.<command>`` does first: no stray arguments, quiet libraries."""
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  quiet_library_logs()
