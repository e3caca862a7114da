"""Parameter counts by component: ``python -m pete_jax.params --config=configs/snli_pete.py``.

Counts come from ``jax.eval_shape`` of the model's init, so nothing is computed.
The contrastive temperature is not part of the encoder and is not counted.
"""

import collections
import os

from absl import app, flags
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from ml_collections import config_flags
import sentencepiece

from pete_jax import assets, configuration, logs, published_weights
from pete_jax.data.tokenizers import SPM_FILENAME
from pete_jax.encoder import SentenceEncoder, encoder_from_config
from pete_jax.errors import UserError, exit_with, parse_config_flags


def param_shapes(model: SentenceEncoder) -> dict:
  """The parameter tree of ``model`` as shapes, without computing anything."""
  ids = jnp.zeros((1, 4), jnp.int32)
  return jax.eval_shape(model.init, jax.random.key(0), ids, jnp.ones_like(ids))['params']


def count_by_component(model: SentenceEncoder) -> dict[str, int]:
  """Parameter counts keyed by top-level component (embed, blocks_i/attention, ...)."""
  counts = collections.Counter()
  for path, leaf in jax.tree_util.tree_flatten_with_path(param_shapes(model))[0]:
    keys = [p.key for p in path]
    component = '/'.join(keys[:2]) if keys[0].startswith('blocks_') else keys[0]
    counts[component] += int(np.prod(leaf.shape))
  return dict(counts)


def vocab_size_of(config: ml_collections.ConfigDict, workdir: str | None = None) -> int:
  """The model's V without building the tokenizer.

  ``model.vocab_size`` if set; else the SentencePiece model's size (the run's
  trained ``<workdir>/spm.model``, or ``tokenizer.spm_vocab_size`` before it is
  trained); else the WordPiece vocab file's line count.
  """
  if config.model.vocab_size:
    return config.model.vocab_size
  tok = config.tokenizer
  if tok.kind == 'sentencepiece':
    path = tok.spm_model_path or (os.path.join(workdir, SPM_FILENAME) if workdir else '')
    if path and os.path.exists(path):
      return sentencepiece.SentencePieceProcessor(model_file=path).get_piece_size()
    return tok.spm_vocab_size
  with open(assets.vocab_file(tok.vocab_path), encoding='utf-8') as f:
    return sum(1 for _ in f)


def main(argv):
  del argv
  logs.quiet_library_logs()
  config = published_weights.apply_official(flags.FLAGS.config)  # as training builds it
  try:
    configuration.validate_model(config)
    vocab = flags.FLAGS.vocab_size or vocab_size_of(config)
  except UserError as e:
    raise exit_with(e) from None
  except OSError as e:  # the tokenizer's vocabulary file
    raise SystemExit(
      f'error: cannot count the vocabulary ({e}); fix tokenizer.vocab_path or pass --vocab_size=V.'
    ) from None
  model = encoder_from_config(config.model, vocab, config.data.max_len)
  counts = count_by_component(model)
  width = max(len(k) for k in counts)
  for name, n in counts.items():
    print(f'{name:<{width}}  {n:>12,}')
  print(f'{"total":<{width}}  {sum(counts.values()):>12,}')


if __name__ == '__main__':
  config_flags.DEFINE_config_file('config', None, 'Model config file.', lock_config=True)
  flags.DEFINE_integer(
    'vocab_size',
    0,
    'Vocabulary size when the config leaves model.vocab_size 0 (default: the size of the '
    "config's tokenizer: its SentencePiece model, or the lines of tokenizer.vocab_path).",
  )
  app.run(main, flags_parser=parse_config_flags)
