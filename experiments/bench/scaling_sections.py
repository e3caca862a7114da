"""The sections beyond the training step at the data's shapes: ``inference`` (sentences/s
of the encoder with the materialised table, the basis on the fly, the learned table),
``vocab`` (step time and memory as V grows), ``peers`` (step time and memory of the
embeddings of the ``embedding_peers`` sweep) and ``shapes`` (as batch and length grow).
"""

import time

import jax
import jax.numpy as jnp
import numpy as np

from experiments import sweeps
from experiments.bench.batches import BERT_VOCAB_SIZE, random_batch, table1_config
from experiments.bench.measure import Trainer, block, interleaved, log, med, memory_of
from pete_jax import config_fields, train
from pete_jax.params import count_by_component
from pete_jax.data import batching
from pete_jax.encoder import encoder_from_config


def section_inference(args, sentences: dict) -> list[dict]:
  """Sentences/s: materialised table vs basis on the fly vs the learned table."""
  rows = []
  seqs_a, seqs_b = sentences['a'], sentences['b']
  rng = np.random.default_rng(0)
  bsz = args.encode_batch
  n_batches = max(args.inference_batches, 1)
  lengths = batching.bucket_lengths(args.max_len, (16, 32, 64, 128))
  batches = {'bucketed': [], 'padded': []}
  for _ in range(n_batches):
    side = seqs_a if rng.random() < 0.5 else seqs_b
    rows_idx = rng.choice(len(side), bsz, replace=False)
    longest = int(side.lengths[rows_idx].max())
    batches['bucketed'].append(side.pad(rows_idx, batching.fit_length(longest, lengths)))
    batches['padded'].append(side.pad(rows_idx, args.max_len))
  for size in args.inference_sizes:
    f_cfg = table1_config(f'fourier_{size}', args.quick)
    l_cfg = table1_config(f'learned_{size}', args.quick)
    f_enc = encoder_from_config(
      f_cfg.model, f_cfg.model.vocab_size, args.max_len, args.compute_dtype
    )
    l_enc = encoder_from_config(
      l_cfg.model, l_cfg.model.vocab_size, args.max_len, args.compute_dtype
    )
    f_params = train.init_params(f_enc, f_cfg, jax.random.key(0))['encoder']
    l_params = train.init_params(l_enc, l_cfg, jax.random.key(0))['encoder']
    table_fn = jax.jit(lambda p: f_enc.apply({'params': p}, method='embedding_table'))
    block(table_fn(f_params))
    t = time.perf_counter()
    table = block(table_fn(f_params))
    table_s = time.perf_counter() - t
    enc_table = jax.jit(lambda p, tb, i, m: f_enc.apply({'params': p}, i, m, embedding_table=tb))
    enc_fly = jax.jit(lambda p, i, m: f_enc.apply({'params': p}, i, m))
    enc_learned = jax.jit(lambda p, i, m: l_enc.apply({'params': p}, i, m))
    # The learned baseline is served the same way as in training: lookup + RMSNorm.
    for padding, bl in batches.items():
      if padding == 'padded' and args.inference_padded_batches <= 0:
        continue
      bl = bl if padding == 'bucketed' else bl[: max(args.inference_padded_batches, 1)]
      bl = [jax.device_put(b) for b in bl]

      def run(fn, *pre):
        def r(i):
          ids, mask = bl[i]
          t = time.perf_counter()
          block(fn(*pre, ids, mask))
          return time.perf_counter() - t

        return r

      first = {}
      for i, (ids, _) in enumerate(bl):
        first.setdefault(ids.shape, i)
      runners = {
        'fourier_table': run(enc_table, f_params, table),
        'fourier_on_the_fly': run(enc_fly, f_params),
        'learned': run(enc_learned, l_params),
      }
      if args.peer:
        runners['torch_fourier'] = _peer_encode(f_enc, f_params, bl)
      times = interleaved(
        runners,
        len(bl),
        warmup_items=sorted(first.values()),
      )
      n_sent = bsz * len(bl)
      row = {
        'size': size,
        'padding': padding,
        'batch': bsz,
        'batches': len(bl),
        'table_materialise_s': table_s,
        'table_bytes': int(table.size * table.dtype.itemsize),
      }
      for k, v in times.items():
        row[f'{k}_sentences_per_s'] = n_sent / float(sum(v))
        row[f'{k}_median_batch_s'] = med(v)
      row['table_over_learned'] = (
        row['fourier_table_sentences_per_s'] / row['learned_sentences_per_s']
      )
      row['table_over_on_the_fly'] = (
        row['fourier_table_sentences_per_s'] / row['fourier_on_the_fly_sentences_per_s']
      )
      row['median_of_ratios_table_over_learned'] = med(
        np.asarray(times['learned']) / np.asarray(times['fourier_table'])
      )
      if 'torch_fourier' in times:
        row['on_the_fly_over_torch'] = (
          row['fourier_on_the_fly_sentences_per_s'] / row['torch_fourier_sentences_per_s']
        )
      rows.append(row)
      log(
        f'inference {size} {padding}: table {row["fourier_table_sentences_per_s"]:.0f}  fly '
        f'{row["fourier_on_the_fly_sentences_per_s"]:.0f}  learned {row["learned_sentences_per_s"]:.0f}'
      )
  return rows


def _peer_encode(encoder, params: dict, batches: list):
  """The PyTorch peer of ``encoder`` (same parameters) encoding ``batches``, eval mode, no grad."""
  import torch  # pylint: disable=import-outside-toplevel

  from experiments.bench import torch_peer  # pylint: disable=import-outside-toplevel

  peer = torch_peer.PeerEncoder(encoder.config).eval()
  torch_peer.load_jax_params(peer, params)
  inputs = [tuple(torch.from_numpy(np.array(x)).long() for x in b) for b in batches]

  def run(i):
    t = time.perf_counter()
    with torch.inference_mode():
      peer(*inputs[i])
    return time.perf_counter() - t

  return run


def section_vocab(args) -> list[dict]:
  """Fourier vs learned 1x256 step time and memory as the vocabulary grows."""
  rows = []
  size = '1x256'
  for vocab in args.vocab_sizes:
    batch = jax.device_put(random_batch(args.batch_size, args.scaling_len, args.scaling_len, vocab))
    trainers = {
      e: Trainer(table1_config(f'{e}_{size}', args.quick, vocab), args.compute_dtype, args.rng_impl)
      for e in ('fourier', 'learned')
    }
    times = interleaved(
      {n: (lambda i, t=t: t.step(batch)) for n, t in trainers.items()}, args.scaling_steps, warmup=1
    )
    for e, t in trainers.items():
      mem = next(iter(t.memory.values()), {})
      rows.append(
        {
          'vocab_size': vocab,
          'embedding': e,
          'num_params': t.num_params,
          'step_time_s_median': med(times[e]),
          'step_times_s': times[e],
          'peak_memory_bytes': mem.get('peak_estimate', 0),
          'temp_bytes': mem.get('temp', 0),
          'state_bytes': t.state_bytes,
        }
      )
    log(
      f'vocab {vocab}: '
      + '  '.join(
        f'{r["embedding"]} {r["step_time_s_median"]:.3f}s {r["peak_memory_bytes"] / 2**20:.0f}MiB'
        for r in rows[-2:]
      )
    )
    del trainers
  return rows


# The row of the ``embedding_peers`` sweep the others' step times are divided by.
PEERS_REFERENCE = 'fourier (reference)'


def peer_variants() -> list:
  """The runs of ``embedding_peers`` that change the embedding module.

  Left out: the SentencePiece rows (they change the tokenizer, not the module) and the
  rows built on the Table 1 learned config (the same module as 'learned, dropout 0', with
  dropout 0.1 or another initialisation: the same step time and memory).
  """
  return [
    r
    for r in sweeps.embedding_peers()
    if 'SentencePiece' not in r.name and r.module == 'table1_fourier_1x256'
  ]


def section_peers(args) -> list[dict]:
  """Step time and memory of each embedding of the embedding_peers sweep (issue 17)."""
  rows = []
  for vocab in args.peer_vocab_sizes:
    batch = jax.device_put(random_batch(args.batch_size, args.scaling_len, args.scaling_len, vocab))
    ids = jax.ShapeDtypeStruct((args.batch_size, args.scaling_len), jnp.int32)
    trainers = {}
    for run in peer_variants():
      config = table1_config(run.module.removeprefix('table1_'), args.quick, vocab)
      for field, value in run.overrides:
        config_fields.set_field(config, field, value)
      trainers[run.name] = Trainer(config, args.compute_dtype, args.rng_impl)
    times = interleaved(
      {n: (lambda i, t=t: t.step(batch)) for n, t in trainers.items()}, args.scaling_steps, warmup=1
    )
    ref = times.get(PEERS_REFERENCE)
    for name, t in trainers.items():
      mem = next(iter(t.memory.values()), {})
      encode = jax.jit(lambda p, i, m, enc=t.encoder: enc.apply({'params': p}, i, m))
      inference = memory_of(encode.lower(t.state.params['encoder'], ids, ids).compile())
      rows.append(
        {
          'vocab_size': vocab,
          'name': name,
          'embedding': t.config.model.embedding,
          'embedding_params': count_by_component(t.encoder)['embed'],
          'num_params': t.num_params,
          'step_time_s_median': med(times[name]),
          'step_times_s': times[name],
          # Median of the interleaved per-step ratios to the reference's steps.
          'step_time_over_reference': (
            med(np.asarray(times[name]) / np.asarray(ref)) if ref is not None else None
          ),
          'peak_memory_bytes': mem.get('peak_estimate', 0),
          'temp_bytes': mem.get('temp', 0),
          'state_bytes': t.state_bytes,
          'inference_peak_memory_bytes': inference.get('peak_estimate', 0),
          'inference_temp_bytes': inference.get('temp', 0),
        }
      )
      r = rows[-1]
      log(
        f'peers V={vocab} {name}: {r["step_time_s_median"]:.3f}s '
        f'train {r["peak_memory_bytes"] / 2**20:.0f}MiB '
        f'inference {r["inference_peak_memory_bytes"] / 2**20:.0f}MiB'
      )
    del trainers
  return rows


def section_shapes(args) -> list[dict]:
  """Step time as the batch (at ``scaling_len``) and the padded length (at batch 128) grow."""
  rows = []
  points = [('batch', b, args.scaling_len) for b in args.scaling_batches] + [
    ('max_len', args.batch_size, n) for n in args.scaling_lens
  ]
  for embedding in args.shape_models:
    trainer = Trainer(
      table1_config(f'{embedding}_1x256', args.quick), args.compute_dtype, args.rng_impl
    )
    for kind, bsz, length in points:
      batch = jax.device_put(random_batch(bsz, length, length, BERT_VOCAB_SIZE))
      times = interleaved({'x': lambda i: trainer.step(batch)}, args.scaling_steps, warmup=1)
      t = med(times['x'])
      rows.append(
        {
          'embedding': embedding,
          'varying': kind,
          'batch_pairs': bsz,
          'length': length,
          'step_time_s_median': t,
          'pairs_per_s': bsz / t,
          'tokens_per_s': 2 * bsz * length / t,
          'peak_memory_bytes': trainer.memory[Trainer.shape_of(batch)].get('peak_estimate', 0),
        }
      )
      log(f'shapes {embedding} {kind} B={bsz} L={length}: {t:.3f}s')
  return rows
