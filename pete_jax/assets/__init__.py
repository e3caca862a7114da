"""Files shipped inside the package, so that the default config needs nothing outside it.

``bert-base-uncased-vocab.txt`` is BERT's uncased WordPiece vocabulary (30,522
tokens), the paper's tokenizer; provenance and licence in ``assets/README.md``.
A config names it as ``tokenizer.vocab_path = 'bert-base-uncased'``; any other
value is a path to a vocab.txt of one's own.
"""

import importlib.resources
import os

PACKAGED_VOCABS = {'bert-base-uncased': 'bert-base-uncased-vocab.txt'}


def vocab_file(name_or_path: str) -> str:
  """The file behind ``tokenizer.vocab_path``: a packaged vocabulary by name, else the path itself."""
  if name_or_path in PACKAGED_VOCABS:
    return os.fspath(importlib.resources.files(__name__) / PACKAGED_VOCABS[name_or_path])
  return name_or_path
