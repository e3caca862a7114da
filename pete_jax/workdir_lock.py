"""One run per workdir: a lock held for the run's lifetime.

Two processes training into the same workdir would overwrite each other's
checkpoints. ``hold(workdir)`` takes an OS file lock (``filelock``: flock on
POSIX), which the OS releases when the process exits, crashes or is killed, so
a stale lock never blocks the next run. Who holds it (host, pid, start time) is
written beside it, for the message the second process prints.
"""

import contextlib
import datetime
import json
import os
import socket
from typing import Iterator

import filelock

from pete_jax import files
from pete_jax.errors import UserError

LOCK_FILE = '.run.lock'
OWNER_FILE = '.run.lock.json'


class WorkdirInUse(UserError):
  """Another live process holds the workdir."""


def _owner(workdir: str) -> str:
  try:
    with open(os.path.join(workdir, OWNER_FILE), encoding='utf-8') as f:
      owner = json.load(f)
    return f'pid {owner["pid"]} on {owner["host"]}, started {owner["started"]}'
  except (OSError, ValueError, KeyError):
    return 'another process'


def make_workdir(workdir: str) -> None:
  """Creates ``workdir`` (and its parents), or raises UserError saying why it cannot be:
  checked before any compute, so that no result is lost at the end for want of a folder."""
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise UserError(f'--workdir {workdir} is a file; give the path of a folder.')
  try:
    os.makedirs(workdir, exist_ok=True)
  except OSError as e:
    raise UserError(f'cannot create --workdir {workdir}: {e.strerror or e}.') from None


def in_use(workdir: str) -> bool:
  """Whether a live process holds ``workdir`` now (a run is training in it)."""
  path = os.path.join(workdir, LOCK_FILE)
  if not os.path.exists(path):
    return False
  lock = filelock.FileLock(path, timeout=0)
  try:
    lock.acquire()
  except filelock.Timeout:
    return True
  lock.release()
  return False


@contextlib.contextmanager
def hold(workdir: str) -> Iterator[None]:
  """Holds ``workdir`` exclusively until the block ends; raises WorkdirInUse if it is taken.

  The lock file itself stays (removing it would let a third process lock a new
  file while a second still holds the old one).
  """
  make_workdir(workdir)
  lock = filelock.FileLock(os.path.join(workdir, LOCK_FILE), timeout=0)
  try:
    lock.acquire()
  except filelock.Timeout:
    raise WorkdirInUse(
      f'workdir {workdir} is in use by {_owner(workdir)}: two runs in one workdir would '
      "overwrite each other's checkpoints. Wait for that run to end (or stop it), or pass "
      'another --workdir.'
    ) from None
  owner_path = os.path.join(workdir, OWNER_FILE)
  files.write_json(
    owner_path,
    {
      'pid': os.getpid(),
      'host': socket.gethostname(),
      'started': datetime.datetime.now().isoformat(timespec='seconds'),
    },
  )
  try:
    yield
  finally:
    with contextlib.suppress(OSError):
      os.remove(owner_path)
    lock.release()
