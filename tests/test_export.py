"""Export and load anywhere: ``python -m pete_jax.export`` and ``SentenceEmbedder.from_pretrained``."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

from configs import smoke
from pete_jax import export, train
from pete_jax.inference import SentenceEmbedder

REPO = pathlib.Path(__file__).resolve().parents[1]
SENTENCES = ['A man is playing a guitar.', 'Someone plays music.', 'A dog runs along the beach.']


@pytest.fixture(scope='module')
def trained(tmp_path_factory, tiny_data_dir):
  """A smoke workdir trained 4 steps, with an id re-ordering so the mapping file travels too."""
  workdir = tmp_path_factory.mktemp('trained')
  with pytest.MonkeyPatch.context() as mp:
    mp.setenv('PETE_DATA_DIR', str(tiny_data_dir))
    config = smoke.get_config()
  config.tokenizer.id_order = 'random'
  config.train.num_steps = config.train.eval_every_steps = config.train.checkpoint_every_steps = 4
  train.train_and_evaluate(config, str(workdir))
  return workdir


def test_round_trip_gives_the_same_vectors_without_orbax_or_workdir(trained, tmp_path):
  expected = SentenceEmbedder.from_workdir(str(trained)).encode(SENTENCES)
  folder = tmp_path / 'model'
  result = subprocess.run(
    [sys.executable, '-m', 'pete_jax.export', f'--workdir={trained}', f'--out={folder}'],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert result.returncode == 0, result.stderr[-3000:]
  assert sorted(os.listdir(folder)) == [
    'README.md',
    'id_order.json',
    'model.safetensors',
    'pete_model.json',
    'vocab.txt',
  ]
  record = json.loads((folder / 'pete_model.json').read_text())
  assert record['source']['step'] == 4 and record['config']['model']['vocab_size'] == 30522
  assert record['scores']['step'] == 4  # the run's own evaluation at that step
  card = (folder / 'README.md').read_text()
  assert 'from_pretrained' in card and f'{record["num_params"]:,} parameters' in card

  moved = tmp_path / 'elsewhere'  # the folder alone, in another place, without the workdir
  shutil.copytree(folder, moved)
  np.save(tmp_path / 'expected.npy', expected)
  script = (
    'import sys, numpy as np\n'
    'from pete_jax.inference import SentenceEmbedder\n'
    f'embedder = SentenceEmbedder.from_pretrained({str(moved)!r})\n'
    f'vectors = embedder.encode({SENTENCES!r})\n'
    f'np.testing.assert_allclose(vectors, np.load({str(tmp_path / "expected.npy")!r}), atol=1e-6)\n'
    "assert not [m for m in sys.modules if m.startswith('orbax')], 'Orbax was imported'\n"
  )
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=1')
  shutil.move(str(trained), str(tmp_path / 'workdir_gone'))
  try:
    check = subprocess.run(
      [sys.executable, '-c', script],
      cwd=tmp_path,
      env=env,
      capture_output=True,
      text=True,
      timeout=300,
    )
  finally:
    shutil.move(str(tmp_path / 'workdir_gone'), str(trained))
  assert check.returncode == 0, check.stderr[-3000:]


def test_encode_command_writes_vectors(trained, tmp_path):
  folder = export.export(str(trained), str(tmp_path / 'model'))
  # A blank line keeps its row; a stray CR stays inside its line; CRLF endings are endings.
  lines = [SENTENCES[0], '', 'A man\rplays.', *SENTENCES[1:]]
  (tmp_path / 'in.txt').write_bytes(('\r\n'.join(lines) + '\r\n').encode())
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=1')

  def encode(output):
    return subprocess.run(
      [
        sys.executable,
        '-m',
        'pete_jax.inference',
        f'--model={folder}',
        f'--input={tmp_path / "in.txt"}',
        f'--output={output}',
      ],
      cwd=REPO,
      env=env,
      capture_output=True,
      text=True,
      timeout=300,
    )

  result = encode(tmp_path / 'v')  # np.save's name: v.npy
  assert result.returncode == 0, result.stderr[-3000:]
  vectors = np.load(tmp_path / 'v.npy')
  assert vectors.shape[0] == len(lines)
  embedder = SentenceEmbedder.from_pretrained(folder)
  np.testing.assert_allclose(vectors, embedder.encode(lines), atol=1e-6)
  assert embedder.encode([]).shape == (0, vectors.shape[1])
  assert '1 blank lines' in result.stdout and f'-> {tmp_path / "v.npy"} ' in result.stdout
  missing = encode(tmp_path / 'no_such_folder' / 'v.npy')
  assert missing.returncode == 1 and 'no_such_folder does not exist' in missing.stderr
  assert 'Traceback' not in missing.stderr


def _flip_byte(path: pathlib.Path) -> None:
  data = bytearray(path.read_bytes())
  data[len(data) // 2] ^= 0xFF
  path.write_bytes(bytes(data))


def _edit_record(folder: pathlib.Path, format_version: int = 0, d_model: int = 0) -> None:
  """Rewrites pete_model.json (which no digest covers) with a newer format or another width."""
  path = folder / 'pete_model.json'
  record = json.loads(path.read_text())
  if format_version:
    record['format_version'] = format_version
  if d_model:
    record['config']['model']['d_model'] = d_model
  path.write_text(json.dumps(record))


@pytest.mark.parametrize(
  'damage,match',
  [
    (lambda f: _flip_byte(f / 'model.safetensors'), 'damaged: model.safetensors does not match'),
    (
      lambda f: (f / 'model.safetensors').write_bytes((f / 'model.safetensors').read_bytes()[:100]),
      'damaged: model.safetensors',
    ),
    (lambda f: (f / 'vocab.txt').unlink(), 'incomplete: vocab.txt is missing'),
    (lambda f: (f / 'pete_model.json').unlink(), 'not a pete_jax model folder'),
    (lambda f: (f / 'pete_model.json').write_text('{"format": '), 'pete_model.json is damaged'),
    (lambda f: _edit_record(f, format_version=99), 'this pete_jax reads'),
    (lambda f: _edit_record(f, d_model=64), 'does not hold the parameters'),
  ],
)
def test_damaged_or_incomplete_folder_is_refused(trained, tmp_path, damage, match):
  folder = pathlib.Path(export.export(str(trained), str(tmp_path / 'model')))
  damage(folder)
  with pytest.raises(export.ModelFolderError, match=match):
    SentenceEmbedder.from_pretrained(str(folder))


def test_export_refuses_a_non_empty_folder_and_leaves_nothing_half_written(trained, tmp_path):
  out = tmp_path / 'model'
  out.mkdir()
  (out / 'keep.txt').write_text('mine')
  with pytest.raises(export.ModelFolderError, match='--overwrite'):
    export.export(str(trained), str(out))
  assert os.listdir(out) == ['keep.txt']
  with pytest.raises(export.ModelFolderError, match='not a pete_jax model folder'):
    export.export(str(trained), str(out), overwrite=True)  # replaces only a model folder
  assert os.listdir(out) == ['keep.txt']
  (out / 'keep.txt').unlink()
  export.export(str(trained), str(out))
  (out / 'extra.txt').write_text('left by hand')
  export.export(str(trained), str(out), overwrite=True)
  assert 'extra.txt' not in os.listdir(out) and (out / 'pete_model.json').exists()
  assert not [p for p in os.listdir(tmp_path) if '.tmp-' in p]
  for target in (trained, trained.parent):  # the workdir itself, or a folder holding it
    with pytest.raises(export.ModelFolderError, match='holds the workdir'):
      export.export(str(trained), str(target), overwrite=True)
  assert (trained / 'checkpoints').is_dir()


def test_folder_exported_before_a_model_field_existed_still_loads(trained, tmp_path):
  folder = pathlib.Path(export.export(str(trained), str(tmp_path / 'model')))
  expected = SentenceEmbedder.from_pretrained(str(folder)).encode(SENTENCES)
  record_path = folder / 'pete_model.json'
  record = json.loads(record_path.read_text())
  for field in ('embed_rank', 'hash_buckets', 'hash_functions', 'qr_modulus'):
    del record['config']['model'][field]  # as written before the embedding peers existed
  record_path.write_text(json.dumps(record))
  vectors = SentenceEmbedder.from_pretrained(str(folder)).encode(SENTENCES)
  np.testing.assert_allclose(vectors, expected, atol=1e-6)


def test_a_failed_export_leaves_nothing_behind(trained, tmp_path, monkeypatch):
  def disk_full(record):
    raise OSError(28, 'No space left on device')

  monkeypatch.setattr(export, '_card', disk_full)  # the last file written
  with pytest.raises(export.ModelFolderError, match='No space left on device'):
    export.export(str(trained), str(tmp_path / 'model'))
  assert os.listdir(tmp_path) == []  # neither the folder nor its temporary copy
