r"""Inference: sentences -> vectors, from an exported model folder or a training workdir.

    embedder = SentenceEmbedder.from_pretrained('models/pete_1x256')   # pete_jax.export output
    embedder = SentenceEmbedder.from_workdir('runs/snli_pete')         # a checkpoint (Orbax)
    vectors = embedder.encode(['A man is playing a guitar.', 'Someone plays music.'])

    python -m pete_jax.inference --model=models/pete_1x256 --input=sentences.txt --output=vectors.npy

The embedding table is materialised once ([V, d], the Fourier basis and MLP
evaluated for every id), so serving a Fourier model is a plain lookup, like the
learned baseline. ``from_pretrained`` needs neither Orbax nor the workdir.
"""

import functools
import io
import os
from typing import Sequence

from absl import app, flags
import jax
import numpy as np

from pete_jax import files, logs
from pete_jax.data import pipeline
from pete_jax.errors import UserError, exit_with
from pete_jax.evaluate import encode_sequences
from pete_jax.trained_model import TrainedModel, load_workdir


class SentenceEmbedder:
  """A trained (or converted) encoder with its tokenizer, ready to encode text."""

  def __init__(self, model: TrainedModel):
    self.model = model
    self.config, self.tokenizer, self.encoder = model.config, model.tokenizer, model.encoder
    encoder = model.encoder
    enc_params = {'params': model.params}
    self.table = jax.jit(lambda p: encoder.apply(p, method='embedding_table'))(enc_params)
    # Parameters and table are arguments, not constants folded into the compiled program.
    apply = jax.jit(lambda p, table, ids, mask: encoder.apply(p, ids, mask, embedding_table=table))
    self._encode = functools.partial(apply, enc_params, self.table)
    self.lengths = pipeline.padding_lengths(model.config)

  @classmethod
  def from_pretrained(cls, folder: str) -> 'SentenceEmbedder':
    """Loads a folder written by ``python -m pete_jax.export`` (its weight and tokenizer files
    checked)."""
    from pete_jax import export  # pylint: disable=import-outside-toplevel

    return cls(export.load_folder(folder))

  @classmethod
  def from_workdir(
    cls, workdir: str, best: bool = False, step: int | None = None, stage: str | None = None
  ) -> 'SentenceEmbedder':
    """Loads the latest (best-scoring, or ``step``) checkpoint of a workdir's ``stage``
    (default its last: finetune once fine-tuning saved a checkpoint, as export and evaluate)."""
    return cls(load_workdir(workdir, step, best, stage))

  def encode(self, sentences: Sequence[str], batch_size: int = 256) -> np.ndarray:
    """``[len(sentences), d]`` float32 sentence vectors (the pooled output)."""
    if isinstance(sentences, str):
      raise TypeError('encode() takes a list of sentences, not one string.')
    if len(sentences) == 0:
      return np.zeros((0, self.encoder.config.d_model), np.float32)
    ids = self.tokenizer.encode(list(sentences), self.config.data.max_len)
    # Batches of a power of two (filled up with copies): a few compiled shapes serve
    # every number of sentences, not one per list length.
    batch = min(batch_size, 1 << (len(ids) - 1).bit_length())
    return encode_sequences(self._encode, ids, self.lengths, batch)


def main(argv: Sequence[str]) -> None:
  logs.start_command(argv)
  f = flags.FLAGS
  output = f.output if f.output.endswith('.npy') else f'{f.output}.npy'  # as np.save names it
  try:
    out_dir = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(out_dir):  # found now, not after encoding every line
      raise UserError(f'--output {output}: folder {out_dir} does not exist')
    embedder = SentenceEmbedder.from_pretrained(f.model)
    # Lines end at '\n' only (a stray '\r' stays inside its sentence), and every line
    # counts, blank ones too: row i of the output is line i of the input.
    with open(f.input, encoding='utf-8', newline='\n') as fh:
      sentences = [line.rstrip('\r\n') for line in fh]
  except (UserError, OSError, UnicodeDecodeError) as e:
    raise exit_with(UserError(str(e))) from None
  vectors = embedder.encode(sentences, f.batch_size)
  buffer = io.BytesIO()
  np.save(buffer, vectors)
  files.write_bytes(output, buffer.getvalue())  # atomic: never a half-written .npy
  blank = sum(not s.strip() for s in sentences)
  note = f' ({blank} blank lines encoded as the empty sentence)' if blank else ''
  print(f'{len(sentences)} lines -> {output} {vectors.shape} float32{note}')


if __name__ == '__main__':
  flags.DEFINE_string(
    'model', None, 'An exported model folder (python -m pete_jax.export).', required=True
  )
  flags.DEFINE_string(
    'input',
    None,
    'A UTF-8 text file, one sentence per line; row i of the output is line i (a blank line '
    "gets the empty sentence's vector).",
    required=True,
  )
  flags.DEFINE_string('output', None, 'Where to write the [n, d] vectors (.npy).', required=True)
  flags.DEFINE_integer('batch_size', 256, 'Sentences per batch.', lower_bound=1)
  app.run(main)
