"""Analytic matmul FLOP counts of the encoder and the training step.

Kept apart from the timing code so the counts can be checked by hand (the tests do);
MFU = these FLOPs per second / the measured matmul rate.
"""

import numpy as np


def dense_flops_per_token(model) -> float:
  """Forward matmul FLOPs per token of every dense layer (2 per multiply-add)."""
  d = model.d_model
  m = model.ffn_hidden or int(round(model.ffn_multiplier * d))
  embed = 0.0
  if model.embedding == 'fourier':
    if model.embed_mlp == 'linear':
      embed = 2 * d * d
    elif model.embed_mlp == 'geglu':
      h = model.embed_mlp_expansion * d
      embed = 2 * d * 2 * h + 2 * h * d
  block = 2 * d * 3 * d + 2 * d * d  # qkv + out
  if not model.drop_ffn_output:  # A dropped FFN is removed by the compiler.
    block += 2 * d * 2 * m + 2 * m * d
  return embed + model.num_layers * block


def forward_flops(model, lengths: np.ndarray, padded_length: int | None) -> float:
  """Forward matmul FLOPs of encoding sentences with token counts ``lengths``.

  With ``padded_length`` every sentence is counted at that length (the computed
  tokens); without it only real tokens count (attention over real keys only).
  """
  d = model.d_model
  n = (
    np.full(len(lengths), padded_length, np.float64)
    if padded_length
    else lengths.astype(np.float64)
  )
  attention = model.num_layers * 4.0 * d * float((n * n).sum())  # q.k and weights.v
  pooler = 2.0 * d * d * len(lengths)
  return dense_flops_per_token(model) * float(n.sum()) + attention + pooler


def step_flops(model, batch: dict, padded: bool) -> float:
  """Training-step FLOPs: 3 x forward of both sides (the loss's B x B x d is included)."""
  total = 0.0
  for side in ('a', 'b'):
    mask = np.asarray(batch[f'{side}_mask'])
    total += forward_flops(model, mask.sum(1), mask.shape[1] if padded else None)
  bsz, d = np.asarray(batch['a_mask']).shape[0], model.d_model
  return 3.0 * (total + 2.0 * bsz * bsz * d)
