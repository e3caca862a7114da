"""Atomic file writes: a reader (or a run killed mid-write) never sees half a file.

Everything is written to a temporary name beside the target and renamed over it
(``os.replace`` is atomic on POSIX and Windows), so the one place that does this
is here.
"""

import hashlib
import json
import os
import threading
from typing import Any


def write_bytes(path: str, data: bytes) -> None:
  """Writes ``data`` to ``path`` atomically (creating the parent folder)."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = f'{path}.tmp.{os.getpid()}.{threading.get_ident()}'  # unique per writer thread
  try:
    with open(tmp, 'wb') as f:
      f.write(data)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)  # A failed write leaves neither half a file nor litter.
    raise


def write_text(path: str, text: str) -> None:
  """Writes ``text`` to ``path`` atomically, UTF-8 encoded."""
  write_bytes(path, text.encode('utf-8'))


def write_json(path: str, value: Any, indent: int | None = 2, sort_keys: bool = False) -> None:
  """Writes ``value`` as JSON to ``path`` atomically."""
  write_text(path, json.dumps(value, indent=indent, sort_keys=sort_keys))


def read_json(path: str, default: Any = None) -> Any:
  """The JSON value in ``path``, or ``default`` if there is no such file."""
  if not os.path.exists(path):
    return default
  with open(path, encoding='utf-8') as f:
    return json.load(f)


def sha256(path: str) -> str:
  """The hex SHA-256 of a file's bytes (integrity manifests of checkpoints and model folders)."""
  with open(path, 'rb') as f:
    return hashlib.file_digest(f, 'sha256').hexdigest()


def append_json(path: str, record: Any) -> None:
  """Appends ``record`` to the JSON list in ``path`` (created if absent), atomically."""
  write_json(path, read_json(path, []) + [record])
