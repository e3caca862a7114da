"""Atomic writes: the target holds the old or the new content, never part of one."""

import os

import pytest

from pete_jax import files


def test_write_bytes_creates_parents_and_leaves_no_temporary_file(tmp_path):
  path = tmp_path / 'a' / 'b' / 'model.bin'
  files.write_bytes(str(path), b'\x00\xffspm')
  assert path.read_bytes() == b'\x00\xffspm'
  assert os.listdir(path.parent) == ['model.bin']


def test_a_failed_write_keeps_the_old_file(tmp_path):
  path = tmp_path / 'record.json'
  files.write_json(str(path), {'step': 1})
  with pytest.raises(TypeError):
    files.write_bytes(
      str(path), 'not bytes'
    )  # Fails inside the write, after the temporary file opened.
  assert files.read_json(str(path)) == {'step': 1}
  assert os.listdir(tmp_path) == ['record.json']


def test_text_is_utf8_whatever_the_locale(tmp_path):
  path = tmp_path / 'table.md'
  files.write_text(str(path), 'Spearman ± std — naïve')
  assert path.read_bytes() == 'Spearman ± std — naïve'.encode('utf-8')


def test_append_json_grows_a_list(tmp_path):
  path = str(tmp_path / 'log.json')
  files.append_json(path, {'a': 1})
  files.append_json(path, {'b': 2})
  assert files.read_json(path) == [{'a': 1}, {'b': 2}]
  assert files.read_json(str(tmp_path / 'absent.json'), default=[]) == []
