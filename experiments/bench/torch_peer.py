"""The PyTorch peer: the paper's two models and their training step in plain PyTorch.

Written the way a PyTorch user would write them (eager mode, fp32, ``nn.Module``s,
``F.scaled_dot_product_attention``, ``torch.optim.AdamW`` with a ``LambdaLR``
schedule), so that the benchmark can time pete_jax against it in the same run, on
the same batches. It computes the same function as ``pete_jax.encoder.SentenceEncoder``:
``tests/test_torch_peer.py`` checks the outputs and gradients against the JAX model
with the same parameters, and the pooled vectors of the official weights against
the golden vectors of the official code.

Module and parameter names follow the official ``TAN`` state_dict (``mlp``, ``norm``,
``layers.N.projection`` ...), so the official files load with ``load_state_dict``.
Needs torch (``pip install -e .[convert]``).
"""

import dataclasses
import math
import time

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from pete_jax.encoder import EncoderConfig


def rope_angles(length: int, inv_freq: torch.Tensor) -> torch.Tensor:
  """``theta[p, i] = p * inv_freq[i mod hd/2]``: the hd/2 frequencies listed twice."""
  theta = torch.arange(length, dtype=torch.float32)[:, None] * inv_freq[None, :]
  return torch.cat([theta, theta], dim=-1)


class Rope(nn.Module):
  """RoPE on ``[B, H, L, hd]``: 'standard' (half-split rotation) or the official arithmetic."""

  def __init__(self, head_dim: int, kind: str):
    super().__init__()
    self.kind = kind
    inv_freq = 1.0 / 10000.0 ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    self.register_buffer('inv_freq', inv_freq)

  def forward(self, u: torch.Tensor) -> torch.Tensor:
    theta = rope_angles(u.shape[-2], self.inv_freq)
    cos, sin = theta.cos(), theta.sin()
    if self.kind == 'standard':
      half = u.shape[-1] // 2
      return u * cos + torch.cat([-u[..., half:], u[..., :half]], dim=-1) * sin
    y = torch.stack([-u[..., 1::2], u[..., 0::2]], dim=-1).flatten(-2)
    return y * cos + torch.roll(y, 1, dims=-1) * sin


class GeGLU(nn.Module):
  """``w2(a * gelu(g))`` with ``[a, g] = w1(x)`` (exact erf GELU)."""

  def __init__(self, d: int, hidden: int):
    super().__init__()
    self.w1, self.w2 = nn.Linear(d, 2 * hidden), nn.Linear(hidden, d)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    a, g = self.w1(x).chunk(2, dim=-1)
    return self.w2(a * F.gelu(g))


class Block(nn.Module):
  """Post-norm block: ``h1 = norm1(x + attn)``, ``norm2(h1 + ffn(h1))`` (or ``+ attn``, official)."""

  def __init__(self, c: EncoderConfig):
    super().__init__()
    self.c, self.heads = c, c.num_heads
    d = c.d_model
    self.projection, self.attn_out = nn.Linear(d, 3 * d), nn.Linear(d, d)
    self.rope = Rope(d // c.num_heads, c.rope)
    self.norm1 = nn.RMSNorm(d, eps=c.rms_eps)
    self.positional_ff = GeGLU(d, c.ffn_hidden)
    self.norm2 = nn.RMSNorm(d, eps=c.rms_eps)
    self.dropout = nn.Dropout(c.dropout_rate)

  def forward(self, x: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
    b, length, d = x.shape
    qkv = self.projection(x).view(b, length, 3, self.heads, d // self.heads)
    q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each [B, H, L, hd]
    attn = F.scaled_dot_product_attention(
      self.rope(q),
      self.rope(k),
      v,
      attn_mask=key_mask,
      dropout_p=self.c.dropout_rate if self.training else 0.0,
    )
    attn = self.dropout(self.attn_out(attn.transpose(1, 2).reshape(b, length, d)))
    h1 = self.norm1(x + attn)
    # The official model computes its FFN and drops the result; the peer skips it (same
    # work as the compiled JAX step, where XLA removes the dead FFN).
    update = attn if self.c.drop_ffn_output else self.dropout(self.positional_ff(h1))
    return self.norm2(h1 + update)


class PeerEncoder(nn.Module):
  """``(ids [B, L] int64, mask [B, L]) -> pooled [B, d]``, as ``SentenceEncoder``."""

  def __init__(self, c: EncoderConfig):
    super().__init__()
    if c.basis != 'fourier' or c.embed_mlp != 'linear' or c.normalisation != 'vocab':
      raise ValueError('the PyTorch peer has the paper models only (Fourier basis, linear MLP)')
    self.c = c
    d = c.d_model
    if c.embedding == 'fourier':
      self.mlp = nn.Linear(d, d)
      self.register_buffer('k', torch.arange(1, d // 2 + 1, dtype=torch.float32), persistent=False)
    else:
      self.table = nn.Embedding(c.vocab_size, d)
    self.norm = nn.RMSNorm(d, eps=c.rms_eps)
    self.embed_dropout = nn.Dropout(c.dropout_rate)
    self.layers = nn.ModuleList(Block(c) for _ in range(c.num_layers))
    self.pooler = nn.ModuleDict({'dense': nn.Linear(d, d)})

  def fourier_features(self, ids: torch.Tensor) -> torch.Tensor:
    """``[sin(pi x), cos(pi x), sin(2 pi x), ...]`` with ``x = 2 id / (N - 1) - 1``."""
    n = self.c.basis_vocab_size or self.c.vocab_size
    x = 2.0 * ids.float() / (n - 1) - 1.0
    angle = math.pi * (x[..., None] * self.k)
    return torch.stack([angle.sin(), angle.cos()], dim=-1).flatten(-2)

  def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    if self.c.embedding == 'fourier':
      t = self.fourier_features(ids)
      h = self.norm(t + self.mlp(t))
    else:
      h = self.embed_dropout(self.norm(self.table(ids)))
    key_mask = mask.bool()[:, None, None, :]
    for layer in self.layers:
      h = layer(h, key_mask)
    if self.c.pooling == 'mean_all':
      pooled = h.mean(dim=1)
    else:
      m = mask.to(h.dtype)[..., None]
      pooled = (h * m).sum(dim=1) / m.sum(dim=1).clamp(min=1)
    return torch.tanh(self.pooler['dense'](pooled))


class PeerModel(nn.Module):
  """The encoder plus the contrastive loss's learned temperature (stored as log t)."""

  def __init__(self, c: EncoderConfig, init_temperature: float = 0.07):
    super().__init__()
    self.encoder = PeerEncoder(c)
    self.log_temperature = nn.Parameter(torch.tensor(math.log(init_temperature)))

  def forward(self, batch: dict) -> torch.Tensor:
    """The symmetric InfoNCE loss of a batch of pairs (rows + columns, each a mean)."""
    a = F.normalize(self.encoder(batch['a_ids'], batch['a_mask']), dim=-1)
    b = F.normalize(self.encoder(batch['b_ids'], batch['b_mask']), dim=-1)
    logits = a @ b.T / self.log_temperature.exp()
    labels = torch.arange(a.shape[0])
    return F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)


def warmup_linear(warmup: int, total: int):
  """The LambdaLR factor of pete_jax's schedule: 0 -> 1 over ``warmup``, then 1 -> 0 at ``total``."""
  decay = max(total - warmup, 1)
  return lambda s: s / warmup if s < warmup else max(0.0, 1.0 - (s - warmup) / decay)


def to_torch(batch: dict) -> dict:
  """A numpy batch as a PyTorch user's data loader gives it (int64 ids)."""
  return {k: torch.from_numpy(np.asarray(v)).long() for k, v in batch.items()}


@dataclasses.dataclass
class PeerTrainer:
  """One model's eager training step: forward, backward, AdamW, schedule; ``step`` times it."""

  config: EncoderConfig
  learning_rate: float = 2e-5
  warmup_steps: int = 1000
  num_steps: int = 100_000
  weight_decay: float = 0.01
  seed: int = 0

  def __post_init__(self):
    torch.manual_seed(self.seed)
    self.model = PeerModel(self.config).train()
    self.num_params = sum(p.numel() for p in self.model.encoder.parameters())
    self.optimizer = torch.optim.AdamW(
      self.model.parameters(),
      lr=self.learning_rate,
      betas=(0.9, 0.999),
      eps=1e-8,
      weight_decay=self.weight_decay,
    )
    self.schedule = torch.optim.lr_scheduler.LambdaLR(
      self.optimizer, warmup_linear(self.warmup_steps, self.num_steps)
    )

  def train_step(self, batch: dict) -> float:
    """One optimisation step on a torch batch; returns the loss."""
    self.optimizer.zero_grad(set_to_none=True)
    loss = self.model(batch)
    loss.backward()
    self.optimizer.step()
    self.schedule.step()
    return float(loss.detach())

  def step(self, batch: dict) -> float:
    """Seconds of one training step (``Trainer.step``'s contract)."""
    start = time.perf_counter()
    self.train_step(batch)
    return time.perf_counter() - start


def load_jax_params(model: PeerEncoder, params: dict) -> None:
  """Copies a ``SentenceEncoder`` parameter tree into the peer (Dense kernels transposed)."""
  t = lambda x: torch.from_numpy(np.array(x, np.float32))
  dense = lambda p: {'weight': t(p['kernel']).T.contiguous(), 'bias': t(p['bias'])}
  state = {}

  def put(prefix: str, values: dict) -> None:
    state.update({f'{prefix}.{k}': v for k, v in values.items()})

  emb = params['embed']
  if model.c.embedding == 'fourier':
    put('mlp', dense(emb['mlp']))
  else:
    state['table.weight'] = t(emb['table']['embedding'])
  state['norm.weight'] = t(emb['norm']['scale'])
  for i in range(model.c.num_layers):
    p = params[f'blocks_{i}']
    put(f'layers.{i}.projection', dense(p['attention']['qkv']))
    put(f'layers.{i}.attn_out', dense(p['attention']['out']))
    put(f'layers.{i}.positional_ff.w1', dense(p['ffn']['wi']))
    put(f'layers.{i}.positional_ff.w2', dense(p['ffn']['wo']))
    for norm in ('norm1', 'norm2'):
      state[f'layers.{i}.{norm}.weight'] = t(p[norm]['scale'])
  put('pooler.dense', dense(params['pooler']))
  missing, unexpected = model.load_state_dict(state, strict=False)
  buffers = {n for n, _ in model.named_buffers()}
  if unexpected or set(missing) - buffers:
    raise ValueError(f'parameter trees differ: missing {missing}, unexpected {unexpected}')
