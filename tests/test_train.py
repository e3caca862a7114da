"""Training loop: end to end through main, exact resume, sharding, checkpoints, failures."""

import json
import os
import pathlib
import subprocess
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import stats

import tiny_data as tiny_data_files
from configs import smoke
from pete_jax import checkpoint, configuration, evaluate, losses, train
from pete_jax.data import pipeline
from pete_jax.devices import data_mesh
from pete_jax.encoder import encoder_from_config

REPO = pathlib.Path(__file__).resolve().parents[1]


def run_main(workdir, *overrides):
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=1')
  cmd = [
    sys.executable,
    '-m',
    'pete_jax.main',
    '--config=configs/smoke.py',
    f'--workdir={workdir}',
    *overrides,
  ]
  return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_smoke_trains_end_to_end_through_main(tmp_path, tiny_data):
  result = run_main(tmp_path, '--config.finetune.enabled=True')
  assert result.returncode == 0, result.stderr[-3000:]
  assert json.loads((tmp_path / 'config.json').read_text())['model']['d_model'] == 32
  steps = sorted(int(p.name) for p in (tmp_path / 'checkpoints').iterdir() if p.name.isdigit())
  assert steps[-1] == 12
  evals = json.loads((tmp_path / 'eval_results.json').read_text())
  assert all(e['select_num_pairs'] == tiny_data_files.STS_ROWS for e in evals)  # STS-B train
  assert [e['step'] for e in evals] == [6, 12] and all(
    e['num_pairs'] == tiny_data_files.STS_ROWS for e in evals
  )
  final = json.loads((tmp_path / 'final_metrics.json').read_text())
  assert set(final) == {'padding_efficiency', 'pretrain', 'finetune'}
  assert np.isfinite(final['finetune']['spearman']) and 0 < final['padding_efficiency'] <= 1
  assert list(tmp_path.glob('events.out.tfevents.*'))
  assert (tmp_path / 'finetune' / 'checkpoints').is_dir()
  assert 'loss' in result.stderr and 'pairs/s' in result.stderr  # progress lines
  # Scoring the workdir scores the model export would write: the fine-tuned one.
  assert checkpoint.last_stage(str(tmp_path)) == 'finetune'
  scored = evaluate.evaluate_workdir(str(tmp_path))
  assert scored['spearman'] == pytest.approx(final['finetune']['spearman'], abs=1e-4)
  # The pre-trained model's cosine of every validation pair, kept for analyses by pair.
  cosines = json.loads((tmp_path / 'pair_cosines.json').read_text())
  assert len(cosines) == tiny_data_files.STS_ROWS
  pretrained = evaluate.evaluate_workdir(str(tmp_path), stage='pretrain')
  assert pretrained['spearman'] == pytest.approx(final['pretrain']['spearman'], abs=1e-4)
  gold = [score for _, _, score in tiny_data_files.sts_rows(tiny_data_files.STS_DEV_SEED)]
  assert 100 * stats.spearmanr(cosines, gold).statistic == pytest.approx(
    pretrained['spearman'], abs=1e-3
  )


def test_last_stage_is_finetune_only_once_it_saved_a_checkpoint(tmp_path):
  (tmp_path / 'finetune' / 'checkpoints').mkdir(parents=True)  # made when the stage starts
  assert checkpoint.last_stage(str(tmp_path)) == 'pretrain'
  (tmp_path / 'finetune' / 'checkpoints' / '40').mkdir()
  assert checkpoint.last_stage(str(tmp_path)) == 'finetune'


def _state_leaves(workdir):
  mgr = checkpoint.manager(os.path.join(workdir, 'checkpoints'))
  step = mgr.latest_step()
  restored = mgr.restore(
    step, args=checkpoint.ocp.args.Composite(state=checkpoint.ocp.args.StandardRestore())
  )
  mgr.close()
  return step, jax.tree.leaves(restored['state'])


def test_exact_resume_after_process_exit(tmp_path, tiny_data):
  straight, split = tmp_path / 'straight', tmp_path / 'split'
  common = ['--config.train.eval_every_steps=100', '--config.train.checkpoint_every_steps=100']
  assert run_main(straight, *common).returncode == 0
  first = run_main(split, *common, '--config.train.stop_at_step=5')
  assert first.returncode == 0, first.stderr[-3000:]
  assert not (split / 'final_metrics.json').exists()
  assert run_main(split, *common).returncode == 0
  (s1, a), (s2, b) = _state_leaves(straight), _state_leaves(split)
  assert s1 == s2 == 12
  assert len(a) == len(b)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def _one_step(config, devices, batch):
  encoder = encoder_from_config(config.model, 30522, config.data.max_len)
  params = train.init_params(encoder, config, jax.random.key(0))
  optimizer = train.make_optimizer(config.train)
  mesh = data_mesh(devices)
  sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec('data'))
  replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  step = jax.jit(
    train.make_train_step(encoder, optimizer, losses.OBJECTIVES['contrastive']),
    in_shardings=(replicated, sharding, replicated),
  )
  state = jax.device_put(train.create_train_state(params, optimizer), replicated)
  batch = {k: jax.device_put(v, sharding) for k, v in batch.items()}
  return step(state, batch, jax.random.key(1))


def test_sharded_step_matches_single_device(tiny_data):
  assert jax.device_count() == 8
  config = configuration.resolve(smoke.get_config())
  data = pipeline.prepare_training_data(config, '/tmp/unused_workdir')
  batch = data.batcher.batch_at(0)
  s1, m1 = _one_step(config, jax.devices()[:1], batch)
  s8, m8 = _one_step(config, jax.devices(), batch)
  assert float(m1['loss']) == pytest.approx(float(m8['loss']), abs=1e-5)
  assert jax.tree.structure(s1.params) == jax.tree.structure(s8.params)
  for x, y in zip(jax.tree.leaves(s1.params), jax.tree.leaves(s8.params)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=1e-5)  # float32 reduction order


def test_keeps_latest_plus_best_checkpoint(tmp_path):
  mgr = checkpoint.manager(str(tmp_path), keep=2, use_async=False)
  state = {'w': jnp.ones(3)}
  for step, spearman in zip(range(1, 6), [50.0, 90.0, 60.0, 55.0, 52.0]):
    checkpoint.save(mgr, step, state, {'step': step}, spearman)
  mgr.wait_until_finished()
  assert sorted(mgr.all_steps()) == [2, 4, 5]
  assert mgr.best_step() == 2
  mgr.close()


def test_load_step_reads_the_latest_the_best_or_the_asked_checkpoint(tmp_path):
  workdir = str(tmp_path)
  checkpoint.write_config(workdir, smoke.get_config())  # has a selection set: --best allowed
  mgr = checkpoint.manager(os.path.join(workdir, 'checkpoints'), keep=3, use_async=False)
  for step, spearman in ((1, 50.0), (2, 90.0), (3, 60.0)):
    state = {'params': {'w': jnp.full(2, float(step))}}
    checkpoint.save(mgr, step, state, {'step': step}, spearman)
  checkpoint.finish(mgr)
  for kwargs, expected in (({}, 3), ({'best': True}, 2), ({'step': 1}, 1)):
    _, params, step = checkpoint.load_step(workdir, **kwargs)
    assert step == expected
    np.testing.assert_array_equal(params['w'], [expected, expected])
  with pytest.raises(checkpoint.CheckpointError, match=r'has no step 9; it has \[1, 2, 3\]'):
    checkpoint.load_step(workdir, step=9)


def test_resuming_on_other_data_is_refused(tmp_path):
  """The data position is the step only for the same examples, seed and batch size."""
  optimizer = optax.sgd(1.0)
  state = train.create_train_state({'w': jnp.ones(2)}, optimizer).replace(step=jnp.asarray(5))
  batcher = types.SimpleNamespace(num_examples=100, batch_size=8, epoch_of=lambda step: 0)
  mgr = checkpoint.manager(str(tmp_path), use_async=False)
  checkpoint.save(mgr, 5, state, train._data_position(batcher, 5, seed=0))
  checkpoint.finish(mgr)
  replicated = jax.sharding.NamedSharding(
    data_mesh(jax.devices()[:1]), jax.sharding.PartitionSpec()
  )
  for changed, field in (
    ({'num_examples': 101}, 'num_examples=100'),
    ({'batch_size': 16}, 'global_batch_size=8'),
  ):
    stage = types.SimpleNamespace(
      workdir=str(tmp_path),
      name='pretrain',
      batcher=types.SimpleNamespace(**{**vars(batcher), **changed}),
    )
    mgr = checkpoint.manager(str(tmp_path), use_async=False)
    with pytest.raises(checkpoint.CheckpointError, match=f'written with {field}'):
      train.restore_or_create(mgr, stage, {'w': jnp.ones(2)}, optimizer, replicated, seed=0)
    mgr.close()
  stage = types.SimpleNamespace(workdir=str(tmp_path), name='pretrain', batcher=batcher)
  mgr = checkpoint.manager(str(tmp_path), use_async=False)
  restored = train.restore_or_create(mgr, stage, {'w': jnp.zeros(2)}, optimizer, replicated, 0)
  assert int(restored.step) == 5  # the same data: resumed
  np.testing.assert_array_equal(restored.params['w'], [1.0, 1.0])
  mgr.close()


def test_half_written_checkpoint_is_ignored(tmp_path):
  mgr = checkpoint.manager(str(tmp_path), use_async=False)
  checkpoint.save(mgr, 3, {'w': jnp.ones(2)}, {'step': 3})
  mgr.close()
  (tmp_path / '6.orbax-checkpoint-tmp').mkdir()  # a save killed mid-write
  mgr = checkpoint.manager(str(tmp_path), use_async=False)
  state, position = checkpoint.restore(mgr, {'w': jnp.zeros(2)})
  assert mgr.latest_step() == 3 and position == {'step': 3}
  np.testing.assert_array_equal(state['w'], [1.0, 1.0])
  mgr.close()


def test_resume_refuses_a_config_that_changes_the_run(tmp_path):
  config = smoke.get_config()
  checkpoint.write_config(str(tmp_path), config)
  (tmp_path / 'checkpoints').mkdir()  # as Orbax leaves it before its first save
  other = smoke.get_config()
  other.data.sort_window_batches = 0  # other batches
  checkpoint.check_resumes_same_run(str(tmp_path), other)  # nothing saved: nothing to continue
  (tmp_path / 'checkpoints' / '6').mkdir()
  with pytest.raises(checkpoint.CheckpointError, match='data.sort_window_batches: 64 there, 0 now'):
    checkpoint.check_resumes_same_run(str(tmp_path), other)
  later = smoke.get_config()
  later.train.eval_every_steps = 3  # when it evaluates, not what it trains
  checkpoint.check_resumes_same_run(str(tmp_path), later)


@pytest.mark.parametrize(
  'warmup,rates', [(0, [2.0, 1.5, 1.0, 0.5, 0.0]), (2, [0.0, 1.0, 2.0, 1.0, 0.0])]
)
def test_learning_rate_warms_up_then_decays_to_zero(warmup, rates):
  schedule = train.learning_rate_schedule(2.0, warmup, 4)
  assert [float(schedule(s)) for s in range(5)] == pytest.approx(rates)


def test_non_finite_loss_stops_with_clear_error(tmp_path, tiny_data):
  config = smoke.get_config()
  config.model.init_temperature = 0.0  # logits / 0 -> non-finite at the first step
  with pytest.raises(
    train.NonFiniteLoss, match='non-finite loss at step 1; no checkpoint was saved'
  ):
    train.train_and_evaluate(config, str(tmp_path))
  # Nothing was saved, so the same workdir takes the mended config (not "another config").
  config.model.init_temperature = 0.07
  config.train.num_steps = 2
  train.train_and_evaluate(config, str(tmp_path))
  assert checkpoint.has_saved_step(str(tmp_path / 'checkpoints'))


@pytest.mark.parametrize(
  'field,value,match',
  [
    ('model.embedding', 'table', 'model.embedding must be one of'),
    ('model.num_heads', 3, r'model.d_model \(32\) must be divisible by model.num_heads \(3\)'),
    (
      'train.batch_size',
      12,
      r'train.batch_size \(12\) must be divisible by the number of devices \(8\)',
    ),
    (
      'data.train_sources',
      ('pairs_csv:/nonexistent/nli.csv',),
      "data.train_sources: file '/nonexistent/nli.csv' not found",
    ),
    ('data.eval_source', 'jsonl:/x', "data.eval_source: bad source spec 'jsonl:/x'"),
    ('data.train_sources', ('tfds:',), "data.train_sources: bad source spec 'tfds:'"),
    ('tokenizer.id_order', 'alphabetical', 'tokenizer.id_order must be one of'),
    ('model.hash_buckets', 0, 'model.hash_buckets must be >= 1, got 0'),
    ('model.dropout_rate', 1.0, r'model.dropout_rate must be in \[0, 1\), got 1.0'),
    ('model.num_layers', 0, 'model.num_layers must be >= 1, got 0'),
    ('train.learning_rate', 0.0, 'train.learning_rate must be > 0, got 0.0'),
    ('train.eval_every_steps', 0, 'train.eval_every_steps must be >= 1, got 0'),
    ('data.max_len', 2, 'data.max_len must be >= 3, got 2'),
    ('train.batch_size', 1, 'train.batch_size must be >= 2'),
  ],
)
def test_invalid_config_names_the_field(field, value, match, tiny_data):
  config = smoke.get_config()
  section, key = field.split('.')
  config[section][key] = value
  with pytest.raises(configuration.ConfigError, match=match):
    configuration.resolve(config, num_devices=8)


def test_encode_api_serves_from_table(tmp_path, tiny_data):
  from pete_jax.inference import SentenceEmbedder  # pylint: disable=import-outside-toplevel

  config = smoke.get_config()
  config.train.num_steps = 2
  config.train.eval_every_steps = config.train.checkpoint_every_steps = 2
  train.train_and_evaluate(config, str(tmp_path))
  embedder = SentenceEmbedder.from_workdir(str(tmp_path))
  assert embedder.table.shape == (30522, 32)
  sentences = ['A man is playing a guitar.', 'Someone plays music.', 'A dog runs.']
  vectors = embedder.encode(sentences, batch_size=2)
  assert vectors.shape == (3, 32)
  # Same vectors as the encoder computing the basis on the fly, one sentence at a time.
  _, params, _ = checkpoint.load_step(str(tmp_path))
  for sentence, vector in zip(sentences, vectors):
    ids = np.asarray(embedder.tokenizer.encode([sentence], 32))
    direct = embedder.encoder.apply({'params': params['encoder']}, ids, np.ones_like(ids))
    np.testing.assert_allclose(vector, np.asarray(direct)[0], atol=1e-5)
  with pytest.raises(TypeError):
    embedder.encode('one string')
  # A workdir written before the embedding peers' fields existed still loads, with
  # each missing field at its default (which is the behaviour before it existed).
  config_path = tmp_path / 'config.json'
  saved = json.loads(config_path.read_text())
  for field in ('embed_rank', 'hash_buckets', 'hash_functions', 'qr_modulus'):
    del saved['model'][field]
  config_path.write_text(json.dumps(saved))
  older = SentenceEmbedder.from_workdir(str(tmp_path))
  np.testing.assert_allclose(older.encode(sentences, batch_size=2), vectors, atol=1e-6)


def test_sts_eval_scores_each_pair_by_the_cosine_of_its_own_two_vectors():
  """Sorting by length, padding to buckets and filling the last batch must not mix up pairs."""

  def encode_fn(ids, mask):  # a vector that only a sentence's own real tokens decide
    ids, mask = np.asarray(ids, np.float64), np.asarray(mask, np.float64)
    return np.stack([(ids * mask).sum(1), mask.sum(1), (ids**2 * mask).sum(1) / 10], axis=1)

  def vector(seq):
    seq = np.asarray(seq, np.float64)
    return np.array([seq.sum(), len(seq), (seq**2).sum() / 10])

  rng = np.random.default_rng(0)
  a_ids = [list(rng.integers(1, 50, rng.integers(2, 12))) for _ in range(7)]
  b_ids = [list(rng.integers(1, 50, rng.integers(2, 12))) for _ in range(7)]
  scores = rng.uniform(0, 5, 7)
  sts = types.SimpleNamespace(a_ids=a_ids, b_ids=b_ids, scores=scores)
  result = evaluate.sts_eval(encode_fn, sts, lengths=(4, 8, 12), batch_size=3)
  cosine = [
    vector(a) @ vector(b) / np.linalg.norm(vector(a)) / np.linalg.norm(vector(b))
    for a, b in zip(a_ids, b_ids)
  ]
  assert result['num_pairs'] == 7
  assert result['spearman'] == pytest.approx(100 * stats.spearmanr(cosine, scores).statistic)
  assert result['pearson'] == pytest.approx(100 * stats.pearsonr(cosine, scores).statistic)
