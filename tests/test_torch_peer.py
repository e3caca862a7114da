"""The benchmark's PyTorch peer computes what pete_jax computes.

With the same parameters, its pooled vectors, loss and gradients equal the JAX
model's, and a few AdamW steps land on the same parameters; with the official
weights loaded, its pooled vectors equal the official code's golden vectors (the
tolerance of the JAX port). Needs torch (``pip install -e .[convert]``).
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip('torch', reason='the PyTorch peer needs torch (.[convert])')

from experiments.bench import torch_peer  # noqa: E402
from experiments.bench.batches import table1_config  # noqa: E402
from pete_jax import convert_official as co  # noqa: E402
from pete_jax import losses, train  # noqa: E402
from pete_jax.encoder import EncoderConfig, encoder_from_config  # noqa: E402

VOCAB = 500


def _config(embedding: str, layers: int = 2):
  config = table1_config(f'{embedding}_1x256', vocab_size=VOCAB)
  config.model.d_model, config.model.num_layers, config.model.num_heads = 32, layers, 2
  config.model.dropout_rate = 0.0  # dropout masks cannot be shared across frameworks
  config.train.learning_rate, config.train.warmup_steps, config.train.num_steps = 1e-3, 2, 10
  return config


def _batch(seed: int = 0, b: int = 6, la: int = 9, lb: int = 7) -> dict:
  rng = np.random.default_rng(seed)
  out = {}
  for side, length in (('a', la), ('b', lb)):
    lengths = rng.integers(2, length + 1, b)
    mask = (np.arange(length)[None, :] < lengths[:, None]).astype(np.int32)
    out[f'{side}_ids'] = (rng.integers(1, VOCAB, (b, length)) * mask).astype(np.int32)
    out[f'{side}_mask'] = mask
  return out


def _jax_and_peer(embedding: str):
  config = _config(embedding)
  encoder = encoder_from_config(config.model, VOCAB, config.data.max_len)
  params = train.init_params(encoder, config, jax.random.key(0))
  peer = torch_peer.PeerTrainer(
    encoder.config,
    config.train.learning_rate,
    config.train.warmup_steps,
    config.train.num_steps,
    config.train.weight_decay,
  )
  torch_peer.load_jax_params(peer.model.encoder, params['encoder'])
  return config, encoder, params, peer


@pytest.mark.parametrize('embedding', ['fourier', 'learned'])
def test_same_pooled_vectors_loss_and_gradients(embedding):
  _, encoder, params, peer = _jax_and_peer(embedding)
  batch = _batch()
  want = encoder.apply({'params': params['encoder']}, batch['a_ids'], batch['a_mask'])
  got = peer.model.encoder(*(torch.from_numpy(batch[k]).long() for k in ('a_ids', 'a_mask')))
  np.testing.assert_allclose(got.detach().numpy(), np.asarray(want), atol=1e-5)

  def loss_fn(p):
    encode = lambda s: encoder.apply(
      {'params': p['encoder']}, batch[f'{s}_ids'], batch[f'{s}_mask']
    )
    return losses.contrastive_objective(p['loss'], encode('a'), encode('b'), batch)[0]

  loss, grads = jax.value_and_grad(loss_fn)(params)
  torch_loss = peer.model(torch_peer.to_torch(batch))
  torch_loss.backward()
  np.testing.assert_allclose(float(torch_loss.detach()), float(loss), rtol=1e-5)
  g = dict(peer.model.encoder.named_parameters())
  np.testing.assert_allclose(
    g['pooler.dense.weight'].grad.numpy(), np.asarray(grads['encoder']['pooler']['kernel']).T,
    atol=1e-5,
  )  # fmt: skip
  qkv = grads['encoder']['blocks_0']['attention']['qkv']['kernel']
  np.testing.assert_allclose(
    g['layers.0.projection.weight'].grad.numpy(), np.asarray(qkv).T, atol=1e-5
  )
  first = 'mlp.weight' if embedding == 'fourier' else 'table.weight'
  want_first = (
    np.asarray(grads['encoder']['embed']['mlp']['kernel']).T
    if embedding == 'fourier'
    else np.asarray(grads['encoder']['embed']['table']['embedding'])
  )
  np.testing.assert_allclose(g[first].grad.numpy(), want_first, atol=1e-5)
  np.testing.assert_allclose(
    float(peer.model.log_temperature.grad), float(grads['loss']['log_temperature']), rtol=1e-4
  )


@pytest.mark.parametrize('embedding', ['fourier', 'learned'])
def test_adamw_steps_land_on_the_same_parameters(embedding):
  config, encoder, params, peer = _jax_and_peer(embedding)
  optimizer = train.make_optimizer(config.train, config.train.weight_decay)
  state = train.create_train_state(params, optimizer)
  step = jax.jit(train.make_train_step(encoder, optimizer, losses.OBJECTIVES['contrastive']))
  for i in range(4):
    batch = _batch(seed=i)
    state, metrics = step(state, batch, jax.random.key(1))
    torch_loss = peer.train_step(torch_peer.to_torch(batch))
    np.testing.assert_allclose(torch_loss, float(metrics['loss']), rtol=1e-4)
  want = np.asarray(state.params['encoder']['pooler']['kernel']).T
  got = dict(peer.model.encoder.named_parameters())['pooler.dense.weight'].detach().numpy()
  assert np.abs(want - params['encoder']['pooler']['kernel'].T).max() > 1e-3  # it moved
  np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.parametrize('warmup', [0, 3])
def test_schedule_equals_the_optax_schedule(warmup):
  factor = torch_peer.warmup_linear(warmup, 10)
  schedule = train.learning_rate_schedule(1.0, warmup, 10)
  np.testing.assert_allclose([factor(s) for s in range(12)], [float(schedule(s)) for s in range(12)], atol=1e-7)  # fmt: skip


@pytest.mark.parametrize('name', ['tan_1_64', 'tan_2_128'])
def test_official_weights_give_the_golden_vectors(shared_data, name):
  folder = shared_data / 'official_weights'
  golden = json.loads((folder / f'golden_{name}.json').read_text())
  state = torch.load(folder / f'{name}.pt', map_location='cpu', weights_only=True)
  config = co.official_config(co.infer_sizes({k: v.numpy() for k, v in state.items()}))
  peer = torch_peer.PeerEncoder(EncoderConfig.from_config(config.model, 0, config.data.max_len))
  peer.load_state_dict(state)  # strict: every key and shape of the official file
  sentences = [s for pair in golden['pairs'] for s in (pair['sentence1'], pair['sentence2'])]
  ids = torch.tensor([s['input_ids'] for s in sentences])
  mask = torch.tensor([s['attention_mask'] for s in sentences])
  with torch.no_grad():
    pooled = peer.eval()(ids, mask).numpy()
  np.testing.assert_allclose(pooled, np.array([s['pooled'] for s in sentences]), atol=1e-4)
  assert jnp.asarray(pooled).shape == (len(sentences), config.model.d_model)
