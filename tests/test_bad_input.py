"""Bad input found by trying it: one clear line, no traceback, nothing written half-way."""

import json
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import smoke
from pete_jax import checkpoint, configuration, workdir_lock
from pete_jax.data import sources
from pete_jax.data.records import SourceError
from pete_jax.errors import UserError

REPO = pathlib.Path(__file__).resolve().parents[1]
ENV_ONE_DEVICE = {'XLA_FLAGS': '--xla_force_host_platform_device_count=1'}


def run_module(module, *args, env=None):
  env = dict(os.environ, **ENV_ONE_DEVICE, **(env or {}))
  return subprocess.run(
    [sys.executable, '-m', module, *args],
    cwd=REPO,
    env=env,
    capture_output=True,
    text=True,
    timeout=300,
  )


def run_main(workdir, *overrides, env=None):
  return run_module(
    'pete_jax.main', '--config=configs/smoke.py', f'--workdir={workdir}', *overrides, env=env
  )


def last_line(result) -> str:
  assert 'Traceback' not in result.stderr, result.stderr[-3000:]
  return result.stderr.strip().splitlines()[-1]


def test_fewer_pairs_than_one_batch(tmp_path, tiny_data):
  result = run_main(tmp_path / 'run', '--config.train.batch_size=256')
  assert result.returncode == 1
  assert last_line(result).startswith(
    'error: 160 train pairs are fewer than one global batch (train.batch_size=256)'
  )
  assert not (tmp_path / 'run' / 'config.json').exists()
  assert not (tmp_path / 'run' / 'checkpoints').exists()


def test_directory_where_a_file_is_expected(tmp_path):
  config = smoke.get_config()
  config.data.train_sources = (f'pairs_csv:{tmp_path}',)
  config.tokenizer.vocab_path = str(tmp_path)
  with pytest.raises(configuration.ConfigError) as info:
    configuration.validate(config)
  assert f"data.train_sources: '{tmp_path}' is a directory; a file is expected" in str(info.value)
  assert f"tokenizer.vocab_path: '{tmp_path}' is a directory" in str(info.value)
  with pytest.raises(SourceError, match='is a directory; give the path of a file'):
    sources.read_source(f'pairs_csv:{tmp_path}', 'nli', config)


@pytest.mark.parametrize(
  'content,problem',
  [
    (b'\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR' + bytes(range(256)) * 4, 'binary data (NUL bytes)'),
    (
      'prémisse,hypothèse,label\nUn café.,Du thé.,entailment\n'.encode('latin-1'),
      'first line is not valid UTF-8',
    ),
  ],
)
def test_binary_or_non_utf8_csv(tmp_path, content, problem):
  path = tmp_path / 'data.csv'
  path.write_bytes(content)
  with pytest.raises(SourceError) as info:
    sources.read_source(f'pairs_csv:{path}', 'nli', smoke.get_config())
  message = str(info.value)
  assert 'is not a UTF-8 text file' in message and problem in message
  assert message.isprintable() and 'PNG' not in message and 'pr' not in message.split(':')[-1]


def test_second_run_on_a_workdir_is_refused_until_the_first_ends(tmp_path, tiny_data):
  workdir = tmp_path / 'run'
  with workdir_lock.hold(str(workdir)):
    result = run_main(workdir)
    assert result.returncode == 1
    line = last_line(result)
    assert line.startswith(f'error: workdir {workdir} is in use by pid {os.getpid()} on ')
    assert 'pass another --workdir' in line
    assert not (workdir / 'checkpoints').exists()
  assert run_main(workdir).returncode == 0  # released on exit of the first


def test_a_workdir_that_is_a_file_is_refused(tmp_path):
  path = tmp_path / 'notes.txt'
  path.write_text('mine')
  with pytest.raises(UserError, match='is a file; give the path of a folder'):
    with workdir_lock.hold(str(path)):
      pass
  with pytest.raises(UserError, match='cannot create --workdir .*notes.txt/run'):
    workdir_lock.make_workdir(str(path / 'run'))  # a folder inside a file
  assert path.read_text() == 'mine'


def test_lock_of_a_killed_process_is_released(tmp_path):
  workdir = tmp_path / 'run'
  script = (
    'import os, signal\nfrom pete_jax import workdir_lock\n'
    f'held = workdir_lock.hold({str(workdir)!r})\nheld.__enter__()\n'
    'os.kill(os.getpid(), signal.SIGKILL)\n'
  )
  assert subprocess.run([sys.executable, '-c', script], cwd=REPO, timeout=120).returncode != 0
  assert (workdir / workdir_lock.OWNER_FILE).exists()  # it died holding the lock
  assert not workdir_lock.in_use(str(workdir))
  with workdir_lock.hold(str(workdir)):
    pass


def test_in_use_while_another_process_holds_the_workdir(tmp_path):
  workdir = tmp_path / 'run'
  assert not workdir_lock.in_use(str(workdir))  # no run ever
  script = (
    'import sys\nfrom pete_jax import workdir_lock\n'
    f'with workdir_lock.hold({str(workdir)!r}):\n  print("held", flush=True)\n  sys.stdin.read()\n'
  )
  holder = subprocess.Popen([sys.executable, '-c', script], cwd=REPO, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # fmt: skip
  try:
    assert holder.stdout.readline().strip() == 'held'
    assert workdir_lock.in_use(str(workdir))
  finally:
    holder.communicate('', timeout=120)
  assert not workdir_lock.in_use(str(workdir))


def _flip_array_byte(step_dir: pathlib.Path) -> None:
  chunk = max(
    (p for p in step_dir.glob('state/**/d/*') if p.is_file()), key=lambda p: p.stat().st_size
  )
  data = bytearray(chunk.read_bytes())
  data[len(data) // 2] ^= 0xFF
  chunk.write_bytes(bytes(data))


def _final_params(workdir):
  _, params, _ = checkpoint.load_step(str(workdir))
  return jax.tree.leaves(params)


def test_damaged_latest_checkpoint(tmp_path, tiny_data):
  """A corrupted file in the newest checkpoint: evaluation names it, training resumes before it."""
  common = ['--config.train.num_steps=14', '--config.train.eval_every_steps=100']
  straight, damaged = tmp_path / 'straight', tmp_path / 'damaged'
  assert run_main(straight, *common).returncode == 0
  assert run_main(damaged, *common, '--config.train.stop_at_step=12').returncode == 0
  _flip_array_byte(damaged / 'checkpoints' / '12')  # same size: Orbax alone would not notice

  result = run_module('pete_jax.evaluate', f'--workdir={damaged}')
  assert result.returncode == 1
  line = last_line(result)
  assert f'checkpoint {damaged}/checkpoints/12 is damaged: file state/' in line
  assert 'does not match the SHA-256' in line and '--step=N (steps here: [6])' in line

  result = run_main(damaged, *common)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'Skipping a damaged checkpoint' in result.stderr and 'resumed from step 6' in result.stderr
  assert (damaged / checkpoint.DAMAGED_DIR / '12').is_dir()  # moved aside, not deleted
  straight_params, damaged_params = _final_params(straight), _final_params(damaged)
  assert len(straight_params) == len(damaged_params) > 0
  for x, y in zip(straight_params, damaged_params):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))  # exactly the uninterrupted run


def test_damage_orbax_reports_without_a_manifest_is_skipped_too(tmp_path):
  mgr = checkpoint.manager(str(tmp_path / 'checkpoints'), use_async=False)
  for step in (1, 2):
    checkpoint.save(mgr, step, {'w': jnp.full(4, float(step))}, {'step': step})
  checkpoint.finish(mgr)
  step_dir = tmp_path / 'checkpoints' / '2'
  (step_dir / checkpoint.MANIFEST).unlink()  # e.g. killed between the save and its manifest
  metadata = step_dir / 'state' / '_METADATA'
  metadata.write_bytes(metadata.read_bytes()[:20])  # truncated by a bad copy
  mgr = checkpoint.manager(str(tmp_path / 'checkpoints'), use_async=False)
  state, position = checkpoint.restore(mgr, {'w': jax.ShapeDtypeStruct((4,), jnp.float32)})
  assert position == {'step': 1} and mgr.all_steps() == [1]
  np.testing.assert_array_equal(state['w'], np.ones(4))
  assert (tmp_path / checkpoint.DAMAGED_DIR / '2').is_dir()
  mgr.close()


def test_evaluation_prints_no_orbax_warnings_and_live_progress_bar(tmp_path, tiny_data):
  result = run_main(
    tmp_path,
    '--config.train.num_steps=4',
    '--config.train.eval_every_steps=4',
    env={'PETE_PROGRESS': 'bar'},
  )
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'pretrain: 100%' in result.stderr and '4/4' in result.stderr  # the tqdm bar
  assert '[pretrain] step 4  STS spearman' in result.stderr
  result = run_module('pete_jax.evaluate', f'--workdir={tmp_path}')
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'read_only' not in result.stderr and 'read only' not in result.stderr
  assert 'spearman' in result.stdout
  # Scored on a set this machine does not have (TFDS STS-B offline): the error says how to
  # score a local copy instead.
  saved = (tmp_path / 'config.json').read_text()
  offline = json.loads(saved)
  offline['data'].update(eval_source='tfds:glue/stsb:validation', tfds_download=False,
                         tfds_data_dir=str(tmp_path / 'no_tfds'))  # fmt: skip
  (tmp_path / 'config.json').write_text(json.dumps(offline))
  result = run_module('pete_jax.evaluate', f'--workdir={tmp_path}')
  assert result.returncode == 1 and 'is not prepared' in result.stderr
  assert last_line(result).startswith("This scored the workdir config's data.eval_source")
  local_copy = '--source=' + json.loads(saved)['data']['eval_source']
  assert run_module('pete_jax.evaluate', f'--workdir={tmp_path}', local_copy).returncode == 0
  (tmp_path / 'config.json').write_text(saved)
  # A restart that would train another run is refused, naming the field; where to stop is free.
  result = run_main(tmp_path, '--config.train.num_steps=6', '--config.train.eval_every_steps=6')
  assert result.returncode == 1
  assert 'train.num_steps: 4 there, 6 now' in last_line(result)
  assert 'eval_every_steps' not in last_line(result)


def test_config_errors_of_the_fine_tuning_stage_and_the_vocabulary(tiny_data):
  config = smoke.get_config()
  config.finetune.enabled = True
  config.finetune.num_steps = 0  # would report the pre-trained scores as fine-tuned
  with pytest.raises(configuration.ConfigError) as info:
    configuration.validate(config)
  assert 'finetune.num_steps must be >= 1, got 0' in str(info.value)
  assert 'finetune.warmup_steps (1) must be <= finetune.num_steps (0)' in str(info.value)
  config.model.vocab_size = 1000  # a table that ends before the tokenizer's last id
  with pytest.raises(configuration.ConfigError, match=r'model.vocab_size \(1000\) is smaller'):
    configuration.check_vocab_size(config, 30522)
  configuration.check_vocab_size(config, 1000)


def test_selection_set_may_not_be_the_reported_set(tiny_data):
  config = smoke.get_config()
  configuration.validate(config)  # STS-B train selects, STS-B validation is reported
  config.data.select_source = config.data.eval_source
  with pytest.raises(configuration.ConfigError, match='data.select_source is the reported set'):
    configuration.validate(config)


def test_best_checkpoint_needs_a_selection_set(tmp_path):
  config = smoke.get_config()
  checkpoint.write_config(str(tmp_path), config)
  with pytest.raises(checkpoint.CheckpointError, match='scored only the reported set'):
    checkpoint.load_step(str(tmp_path), best=True, stage='finetune')
  config.data.select_source = ''
  checkpoint.write_config(str(tmp_path), config)
  with pytest.raises(checkpoint.CheckpointError, match='pretrain stage'):
    checkpoint.load_step(str(tmp_path), best=True)
  with pytest.raises(checkpoint.CheckpointError, match='give one of them'):
    checkpoint.load_step(str(tmp_path), step=6, best=True)


def test_commands_name_a_missing_workdir_without_a_traceback(tmp_path):
  missing = tmp_path / 'nope'
  for module, *args in (
    ('pete_jax.evaluate', f'--workdir={missing}'),
    ('pete_jax.glue.main', '--config=configs/glue.py:rte,local', f'--pretrained={missing}',
     f'--workdir={tmp_path / "glue"}'),
  ):  # fmt: skip
    result = run_module(module, *args)
    assert result.returncode == 1 and 'is not a pete_jax workdir' in last_line(result), module


def test_config_overrides_that_do_not_apply_are_one_error_line(tmp_path):
  """ml_collections applies them while absl parses the flags, before main runs."""
  result = run_main(tmp_path / 'run', '--config.train.nonexistent=1')
  assert result.returncode == 1 and "'nonexistent'" in last_line(result)
  assert last_line(result).startswith('error: the --config flags do not apply')
  result = run_module('pete_jax.glue.main', '--config=configs/glue.py:squad', '--pretrained=x')
  assert result.returncode == 1 and 'Traceback' not in result.stderr
  assert "error: ValueError: unknown task 'squad'" in result.stderr
  assert not (tmp_path / 'run').exists()


def test_params_names_an_invalid_model_field_without_a_traceback():
  """``params`` checks the model's fields only: the config's data need not be here."""
  result = run_module(
    'pete_jax.params', '--config=configs/snli_pete.py', '--config.model.embedding=bogus'
  )
  assert result.returncode == 1
  assert 'model.embedding must be one of' in result.stderr and 'Traceback' not in result.stderr
  result = run_module(
    'pete_jax.params', '--config=configs/local_data.py', env={'PETE_DATA_DIR': '/nonexistent'}
  )
  assert result.returncode == 0 and 'total' in result.stdout, result.stderr[-2000:]


def test_a_damaged_workdir_config_is_named(tmp_path):
  (tmp_path / 'config.json').write_text('{"model": ')  # a copy cut short
  with pytest.raises(checkpoint.CheckpointError, match='config.json is damaged'):
    checkpoint.read_config(str(tmp_path))
