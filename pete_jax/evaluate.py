"""Zero-shot STS evaluation: cosine of pooled sentence vectors against gold scores.

``python -m pete_jax.evaluate --workdir=runs/snli_pete`` scores a workdir's
checkpoint on ``data.eval_source`` (STS-B validation by default): every pair,
each sentence encoded on its own, real-valued gold scores, Pearson and Spearman
x 100 (scipy).
"""

import functools
import json
from typing import Callable, Sequence

from absl import app, flags, logging
import jax
import numpy as np
from scipy import stats

from pete_jax import logs, progress
from pete_jax.data import batching
from pete_jax.data.records import SourceError
from pete_jax.errors import UserError, exit_with

EncodeFn = Callable[[np.ndarray, np.ndarray], jax.Array]


def correlations(predicted: np.ndarray, gold: np.ndarray) -> dict[str, float]:
  """Pearson and Spearman correlation x 100."""
  return {
    'pearson': 100.0 * float(stats.pearsonr(predicted, gold)[0]),
    'spearman': 100.0 * float(stats.spearmanr(predicted, gold)[0]),
  }


def encode_sequences(
  encode_fn: EncodeFn,
  seqs: Sequence[Sequence[int]],
  lengths: Sequence[int],
  batch_size: int = 256,
  pad_id: int = 0,
) -> np.ndarray:
  """Vectors of token-id sequences, in input order.

  Sentences are sorted by length so that each batch pads to a small bucket;
  the last batch is filled up with copies so jit sees only full batches.
  ``lengths`` come from ``pipeline.padding_lengths`` (only max_len under 'mean_all' pooling).
  """
  order = np.argsort([len(s) for s in seqs], kind='stable')
  out = [None] * len(seqs)
  starts = range(0, len(seqs), batch_size)
  for start in progress.iterate(starts, 'encoding', unit='batch', min_total=8):
    rows = order[start : start + batch_size]
    chunk = [seqs[i] for i in rows]
    chunk += [chunk[-1]] * (batch_size - len(chunk))
    ids, mask = batching.pad_batch(chunk, tuple(lengths), pad_id)
    vectors = np.asarray(encode_fn(ids, mask))
    for j, i in enumerate(rows):
      out[i] = vectors[j]
  return np.stack(out)


def pair_cosines(
  encode_fn: EncodeFn, a_ids, b_ids, lengths: Sequence[int], batch_size: int = 256
) -> np.ndarray:
  """float64 [n]: the cosine of the two sentence vectors of every pair (``a_ids[i]``,
  ``b_ids[i]``); every STS score (evaluation, GLUE STS-B) is computed from these."""
  a = encode_sequences(encode_fn, a_ids, lengths, batch_size)
  b = encode_sequences(encode_fn, b_ids, lengths, batch_size)
  a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
  b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
  return (a.astype(np.float64) * b).sum(axis=1)


def cosines_as_json(cosines: np.ndarray) -> list[float]:
  """Pair cosines as a run keeps them (``pair_cosines.json``, run records): rounded to 1e-6,
  far below what moves a Spearman score at the 1e-4 the tables print, and a third the size."""
  return [round(c, 6) for c in np.asarray(cosines, np.float64).tolist()]


def sts_eval(
  encode_fn: EncodeFn, sts, lengths: Sequence[int], batch_size: int = 256
) -> dict[str, float]:
  """Scores an ``StsData`` set (see pete_jax.data.pipeline.prepare_sts)."""
  cosine = pair_cosines(encode_fn, sts.a_ids, sts.b_ids, lengths, batch_size)
  result = correlations(cosine, np.asarray(sts.scores, np.float64))
  result['num_pairs'] = len(cosine)
  return result


def jit_apply(encoder) -> Callable[[dict, np.ndarray, np.ndarray], jax.Array]:
  """``apply(params, ids, mask) -> vectors``, jitted once for an encoder.

  The parameters are an argument, not constants captured by the traced function,
  so evaluating new parameters (every evaluation of a training run) reuses the
  compiled step of each bucket shape instead of compiling it again.
  """
  return jax.jit(lambda params, ids, mask: encoder.apply({'params': params}, ids, mask))


def encoder_fn(apply: Callable, encoder_params: dict) -> EncodeFn:
  """``(ids, mask) -> vectors`` of one parameter tree, from a ``jit_apply`` function."""
  return functools.partial(apply, encoder_params)


def evaluate_workdir(
  workdir: str,
  source: str = '',
  best: bool = False,
  batch_size: int = 256,
  step: int | None = None,
  stage: str | None = None,
) -> dict[str, float]:
  """Loads a workdir's checkpoint (latest, best or ``step``) and scores it on ``source``.

  ``source`` defaults to the config's eval_source; ``stage`` to the run's last (the model
  ``pete_jax.export`` would export).
  """
  from pete_jax.data import pipeline  # pylint: disable=import-outside-toplevel
  from pete_jax.trained_model import load_workdir  # pylint: disable=import-outside-toplevel

  model = load_workdir(workdir, step, best, stage)
  sts = pipeline.prepare_sts(model.config, model.tokenizer, source or None)
  return sts_eval(
    encoder_fn(jit_apply(model.encoder), model.params),
    sts,
    pipeline.padding_lengths(model.config),
    batch_size,
  )


def main(argv):
  del argv
  logs.quiet_library_logs()
  try:
    result = evaluate_workdir(
      flags.FLAGS.workdir,
      flags.FLAGS.source,
      flags.FLAGS.best,
      step=flags.FLAGS.step,
      stage=flags.FLAGS.stage or None,
    )
  except SourceError as e:
    if not flags.FLAGS.source:  # the config's eval_source, e.g. TFDS STS-B on an offline machine
      e = SourceError(
        f"{e}\nThis scored the workdir config's data.eval_source; --source=stsb_tsv:<path to "
        'STS-B dev.tsv> scores a local copy instead.'
      )
    raise exit_with(e) from None
  except UserError as e:
    raise exit_with(e) from None
  logging.info('STS: %s', result)
  print(json.dumps(result, indent=2))


if __name__ == '__main__':
  # Flags are defined only when run as a command, so importing this module
  # never clashes with another command's flags.
  from pete_jax import trained_model  # pylint: disable=import-outside-toplevel

  trained_model.define_checkpoint_flags('Score')
  flags.adopt_module_key_flags(trained_model)  # listed by --help
  flags.DEFINE_string('source', '', "STS source spec (default: the config's data.eval_source).")
  app.run(main)
