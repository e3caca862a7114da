"""The official pretrained weights: converter, official mode and exactness against golden vectors.

The golden files (shared/data/official_weights) were computed with the
unchanged official PyTorch model; the converted pete_jax model must reproduce
its Fourier features, intermediates, pooled vectors and cosines within 1e-4
on CPU float32. Needs the shared data folder and torch (``pip install -e .[convert]``).
"""

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import default
from pete_jax import checkpoint, published_weights
from pete_jax.config_fields import set_field
from pete_jax import convert_official as co
from pete_jax.encoder import SentenceEncoder, encoder_from_config

GOLDEN = ('tan_1_64', 'tan_2_128')
TOL = 1e-4
FEATURE_TOL = 2e-5
_CACHE: dict[str, tuple] = {}


def _converted(data_dir: pathlib.Path, name: str, tmp_path_factory) -> tuple:
  """(golden, workdir, converted params, loaded config, loaded params), once per weight file."""
  if name not in _CACHE:
    pytest.importorskip('torch', reason='converting official weights needs torch (.[convert])')
    weights = data_dir / 'official_weights' / f'{name}.pt'
    golden = json.loads((data_dir / 'official_weights' / f'golden_{name}.json').read_text())
    workdir = str(tmp_path_factory.mktemp(name))
    stsb_dev = data_dir / 'stsb' / 'dev.tsv'
    _, params = co.convert(str(weights), workdir, eval_source=f'stsb_tsv:{stsb_dev}')
    config, loaded, _ = checkpoint.load_step(workdir)
    _CACHE[name] = golden, workdir, params, config, loaded
  return _CACHE[name]


def _model(config) -> SentenceEncoder:
  return encoder_from_config(config.model, config.model.vocab_size, config.data.max_len)


def _sentences(golden: dict) -> list[dict]:
  return [s for pair in golden['pairs'] for s in (pair['sentence1'], pair['sentence2'])]


def test_official_mode_is_off_by_default_and_switchable():
  config = default.get_config()
  assert not config.official
  assert set(published_weights.differences(config)) >= {
    'model.basis_vocab_size',
    'model.rope',
    'model.pooling',
    'model.drop_ffn_output',
    'data.pad_to_max_len',
  }
  assert published_weights.apply_official(config).to_dict() == config.to_dict()
  config.official = True
  resolved = published_weights.apply_official(config)
  assert published_weights.differences(resolved) == {}
  assert config.model.rope == 'standard'  # the input is not modified
  resolved.model.pooling = 'masked_mean'  # each behaviour stays a field of its own
  assert published_weights.differences(resolved) == {'model.pooling': ('masked_mean', 'mean_all')}


def test_official_training_code_config_has_its_baseline():
  from configs import official_training_code  # pylint: disable=import-outside-toplevel

  fourier, learned = (
    official_training_code.get_config(),
    official_training_code.get_config('learned'),
  )
  assert (fourier.model.embedding, fourier.model.drop_ffn_output) == ('fourier', True)
  assert (learned.model.embedding, learned.model.dropout_rate) == ('learned', 0.2)
  assert not learned.model.drop_ffn_output and learned.model.table_init_std == 1.0
  assert learned.train.batch_size == fourier.train.batch_size == 256
  with pytest.raises(ValueError, match='one of'):
    official_training_code.get_config('bert')


def test_converted_workdir_scores_on_the_default_source_unless_told():
  """Users have no local STS-B copy: the default is the default config's TFDS source."""
  sizes = co.Sizes(num_layers=1, d_model=64, num_heads=2, ffn_hidden=256)
  assert co.official_config(sizes).data.eval_source == default.get_config().data.eval_source
  assert co.official_config(sizes, 'stsb_tsv:/x/dev.tsv').data.eval_source == 'stsb_tsv:/x/dev.tsv'


@pytest.mark.parametrize('name', GOLDEN)
def test_round_trip_and_sizes(shared_data, tmp_path_factory, name):
  golden, _, params, config, loaded = _converted(shared_data, name, tmp_path_factory)
  want = golden['config']
  assert (config.model.num_layers, config.model.d_model, config.model.num_heads) == (
    want['num_hidden_layers'],
    want['d_model'],
    want['num_attention_heads'],
  )
  assert config.official and published_weights.differences(config) == {}
  assert config.data.eval_source.startswith('stsb_tsv:')
  jax.tree.map(np.testing.assert_array_equal, params, jax.tree.map(np.asarray, loaded['encoder']))


@pytest.mark.parametrize('name', GOLDEN)
def test_fourier_features_match_golden(shared_data, tmp_path_factory, name):
  golden, _, _, config, loaded = _converted(shared_data, name, tmp_path_factory)
  ff = golden['fourier_features_first_sentence']
  feats = _model(config).apply(
    {'params': loaded['encoder']},
    jnp.asarray(ff['token_ids']),
    method=lambda m, ids: m.embed.features_of(ids),
  )
  np.testing.assert_allclose(feats, np.asarray(ff['features']), rtol=0, atol=FEATURE_TOL)


@pytest.mark.parametrize('name', GOLDEN)
def test_model_outputs_match_golden(shared_data, tmp_path_factory, name):
  golden, _, _, config, loaded = _converted(shared_data, name, tmp_path_factory)
  sents = _sentences(golden)
  ids = jnp.asarray([s['input_ids'] for s in sents])
  mask = jnp.asarray([s['attention_mask'] for s in sents])
  pooled, state = _model(config).apply(
    {'params': loaded['encoder']}, ids, mask, mutable=['intermediates']
  )
  inter, want = state['intermediates'], golden['intermediates_first_sentence']
  close = lambda got, exp: np.testing.assert_allclose(got, np.asarray(exp), rtol=0, atol=TOL)
  close(inter['embedding'][0][0, :5], want['embedding_output'])
  assert len(inter['layers']) == len(want['layer_outputs']) == config.model.num_layers
  for got, exp in zip(inter['layers'], want['layer_outputs']):
    close(got[0, :5], exp)
  close(inter['mean'][0][0], want['mean_over_128_positions_before_pooler'])
  close(pooled, [s['pooled'] for s in sents])
  v = np.asarray(pooled, np.float64)
  a, b = v[0::2], v[1::2]
  cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
  close(cosine, [p['cosine'] for p in golden['pairs']])


@pytest.mark.parametrize('name', GOLDEN)
def test_tokenizer_reproduces_golden_ids(shared_data, tmp_path_factory, name):
  from pete_jax.data import pipeline  # pylint: disable=import-outside-toplevel

  golden, workdir, _, config, _ = _converted(shared_data, name, tmp_path_factory)
  sents = _sentences(golden)
  encoded = pipeline.build_tokenizer(config, workdir).encode(
    [s['text'] for s in sents], config.data.max_len
  )
  for seq, s in zip(encoded, sents):
    pad = config.data.max_len - len(seq)
    assert seq + [0] * pad == s['input_ids'], s['text']
    assert [1] * len(seq) + [0] * pad == s['attention_mask'], s['text']


def _save_modified(data_dir: pathlib.Path, path: pathlib.Path, edit) -> str:
  torch = pytest.importorskip(
    'torch', reason='converting official weights needs torch (.[convert])'
  )
  state = torch.load(
    data_dir / 'official_weights' / 'tan_1_64.pt', map_location='cpu', weights_only=True
  )
  edit(state, torch)
  torch.save(state, path)
  return str(path)


def test_rejects_renamed_key(shared_data, tmp_path):
  def rename(state, torch):
    del torch
    state['layers.0.attn_out.weights'] = state.pop('layers.0.attn_out.weight')

  weights = _save_modified(shared_data, tmp_path / 'renamed.pt', rename)
  with pytest.raises(ValueError) as err:
    co.convert(weights, str(tmp_path / 'workdir'))
  assert 'missing key layers.0.attn_out.weight ' in str(err.value)
  assert 'unexpected key layers.0.attn_out.weights ' in str(err.value)
  assert not (tmp_path / 'workdir').exists()


def test_rejects_misshaped_tensor_and_wrong_rope(shared_data, tmp_path):
  def damage(state, torch):
    state['layers.0.projection.weight'] = state['layers.0.projection.weight'][:191]
    state['pooler.dense.bias'] = torch.zeros(65)

  weights = _save_modified(shared_data, tmp_path / 'misshaped.pt', damage)
  with pytest.raises(ValueError) as err:
    co.convert(weights, str(tmp_path / 'workdir'))
  assert 'layers.0.projection.weight has shape (191, 64), expected (192, 64)' in str(err.value)
  assert 'pooler.dense.bias has shape (65,), expected (64,)' in str(err.value)

  def rope_base(state, torch):
    hd = 2 * len(state['layers.0.rope.inv_freq'])
    state['layers.0.rope.inv_freq'] = 1.0 / 500.0 ** (torch.arange(0, hd, 2).float() / hd)

  weights = _save_modified(shared_data, tmp_path / 'rope.pt', rope_base)
  with pytest.raises(ValueError, match='layers.0.rope.inv_freq'):
    co.convert(weights, str(tmp_path / 'workdir'))


@pytest.mark.parametrize('name', GOLDEN)
def test_exported_official_weights_match_golden(shared_data, tmp_path_factory, name):
  """Converted official weights export like any workdir; the folder reproduces the golden vectors."""
  from pete_jax import export  # pylint: disable=import-outside-toplevel
  from pete_jax.inference import SentenceEmbedder  # pylint: disable=import-outside-toplevel

  golden, workdir, _, _, _ = _converted(shared_data, name, tmp_path_factory)
  folder = export.export(workdir, str(tmp_path_factory.mktemp(f'{name}_export') / 'model'))
  embedder = SentenceEmbedder.from_pretrained(folder)
  sents = _sentences(golden)
  vectors = embedder.encode([s['text'] for s in sents], batch_size=4)
  np.testing.assert_allclose(vectors, [s['pooled'] for s in sents], rtol=0, atol=TOL)
  assert 'official PETE weights' in (pathlib.Path(folder) / 'README.md').read_text()


def test_every_official_behaviour_switch_builds_a_working_model(shared_data, tmp_path_factory):
  """Each setting ``python -m experiments.official_weights`` scores is a valid model."""
  from experiments import official_weights  # pylint: disable=import-outside-toplevel

  _, _, _, config, loaded = _converted(shared_data, 'tan_1_64', tmp_path_factory)
  ids = jnp.array([[101, 1037, 3899, 102, 0, 0]])
  official = _model(config).apply({'params': loaded['encoder']}, ids, ids != 0)
  for setting, changes in official_weights.ABLATIONS.items():
    modified = config.copy_and_resolve_references()
    for dotted, value in changes.items():
      set_field(modified, dotted, value)
    vectors = _model(modified).apply({'params': loaded['encoder']}, ids, ids != 0)
    assert vectors.shape == (1, 64) and np.isfinite(vectors).all(), setting
    # A model switch reaches the model; the others (none, padding) change only the batches.
    changes_model = any(dotted.startswith('model.') for dotted in changes)
    assert np.allclose(vectors, official, rtol=0, atol=1e-6) != changes_model, setting


def test_refuses_a_used_workdir_and_files_that_are_not_weights(shared_data, tmp_path):
  weights = str(shared_data / 'official_weights' / 'tan_1_64.pt')
  trained = tmp_path / 'trained'
  trained.mkdir()
  (trained / 'config.json').write_text('{"a trained run": true}')
  with pytest.raises(co.ConversionError, match='exists and is not an empty folder'):
    co.convert(weights, str(trained))
  assert (trained / 'config.json').read_text() == '{"a trained run": true}'
  assert sorted(p.name for p in trained.iterdir()) == ['config.json']
  text = tmp_path / 'notes.pt'
  text.write_text('not weights\n')
  with pytest.raises(co.ConversionError, match='is not a PyTorch state_dict file'):
    co.convert(str(text), str(tmp_path / 'new'))
  with pytest.raises(co.ConversionError, match='no such file'):
    co.convert(str(tmp_path / 'missing.pt'), str(tmp_path / 'new'))
  assert not (tmp_path / 'new').exists()
