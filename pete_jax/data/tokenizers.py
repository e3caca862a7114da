"""Tokenizers with one small interface: BERT WordPiece and SentencePiece.

Both add sentence markers ([CLS] ... [SEP], or <s> ... </s>) and truncate to
`max_len` tokens including them, so the model always sees the same framing.
Padding id is 0 for both (the learned-embedding baseline reserves row 0).
`pipeline.build_tokenizer` adds the configured token-id order (id_order.py).
"""

from __future__ import annotations

import hashlib
import io
import os
import random
from typing import Protocol, Sequence

from absl import logging
import ml_collections
import sentencepiece as spm
import tokenizers as hf_tokenizers
from tokenizers import decoders
from tokenizers import models
from tokenizers import normalizers
from tokenizers import pre_tokenizers
from tokenizers import processors

from pete_jax import assets
from pete_jax import files
from pete_jax.errors import UserError

KINDS = ('wordpiece', 'sentencepiece')  # tokenizer.kind


class TokenizerFileError(UserError, FileNotFoundError):
  """A vocabulary or SentencePiece model file that is not there."""


class BadTokenizerFile(UserError, ValueError):
  """A vocabulary or SentencePiece model file that is there but cannot serve (wrong file,
  damaged, or without the special tokens at the ids the model needs)."""


SPM_FILENAME = 'spm.model'
_BERT_SPECIALS = ('[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]')
# SentencePiece ids chosen at training time; pad 0 like BERT's [PAD].
_SPM_IDS = dict(pad_id=0, unk_id=1, bos_id=2, eos_id=3)


class Tokenizer(Protocol):
  """What training and evaluation need from a tokenizer.

  Attributes:
    vocab_size: Number of ids (the model's V): ids are 0..vocab_size-1.
    pad_id: Always 0.
    special_ids: Ids that are not text pieces (pad, unk, markers); id
      re-ordering keeps them fixed.
    fingerprint: Identifies the vocabulary (a hash of the vocab/model file),
      so an id-order mapping is never applied to the wrong vocabulary.
  """

  vocab_size: int
  pad_id: int
  special_ids: tuple[int, ...]
  fingerprint: str

  def encode(self, texts: Sequence[str], max_len: int) -> list[list[int]]:
    """Ids of each text with markers, at most `max_len` ids (no padding)."""

  def decode(self, ids: Sequence[int]) -> str:
    """Text of `ids`, with pad and marker ids skipped."""


def _file_hash(path: str) -> str:
  with open(path, 'rb') as f:
    return hashlib.sha256(f.read()).hexdigest()[:16]


def _check_max_len(max_len: int, markers: int) -> None:
  if max_len <= markers:
    raise ValueError(f'max_len={max_len} leaves no room for text after {markers} marker tokens')


class WordPieceTokenizer:
  """BERT WordPiece from a vocab.txt, via the HF `tokenizers` library.

  Built from its parts (BERT normaliser, pre-tokeniser, WordPiece model,
  [CLS]/[SEP] template) to match HF BertTokenizer(do_lower_case=...) with
  truncation=True: the text is cut so that [CLS] + text + [SEP] fit max_len.
  """

  def __init__(self, vocab_path: str, lowercase: bool = True):
    vocab_path = assets.vocab_file(vocab_path)
    if not os.path.isfile(vocab_path):
      raise TokenizerFileError(
        f'WordPiece vocab not found: {vocab_path!r} '
        f'(absolute: {os.path.abspath(vocab_path)}); '
        'set tokenizer.vocab_path'
      )
    try:
      tok = hf_tokenizers.Tokenizer(models.WordPiece.from_file(vocab_path, unk_token='[UNK]'))
    except Exception as e:  # pylint: disable=broad-except  (the HF library's own error types)
      raise BadTokenizerFile(f'{vocab_path} is not a WordPiece vocab file ({e})') from None
    ids = {t: tok.token_to_id(t) for t in _BERT_SPECIALS}
    missing = [t for t in _BERT_SPECIALS[:4] if ids[t] is None]
    if missing:
      raise BadTokenizerFile(f'{vocab_path}: special tokens {missing} not in vocab')
    if ids['[PAD]'] != 0:
      raise BadTokenizerFile(f'{vocab_path}: [PAD] must have id 0, has {ids["[PAD]"]}')
    # strip_accents=None follows `lowercase`, as in BERT.
    tok.normalizer = normalizers.BertNormalizer(
      clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=lowercase
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
      single='[CLS] $A [SEP]', special_tokens=[('[CLS]', ids['[CLS]']), ('[SEP]', ids['[SEP]'])]
    )
    tok.decoder = decoders.WordPiece(prefix='##')
    tok.add_special_tokens([t for t in _BERT_SPECIALS if ids[t] is not None])
    self._tok = tok
    self._truncation = None
    self.vocab_size = tok.get_vocab_size()
    self.pad_id = 0
    self.special_ids = tuple(sorted(i for i in ids.values() if i is not None))
    self.fingerprint = f'wordpiece:{_file_hash(vocab_path)}:lower={lowercase}'

  def encode(self, texts: Sequence[str], max_len: int) -> list[list[int]]:
    _check_max_len(max_len, 2)
    if self._truncation != max_len:
      self._tok.enable_truncation(max_length=max_len)
      self._truncation = max_len
    return [e.ids for e in self._tok.encode_batch(list(texts))]

  def decode(self, ids: Sequence[int]) -> str:
    return self._tok.decode([int(i) for i in ids], skip_special_tokens=True)


class SentencePieceTokenizer:
  """A SentencePiece model with pad 0 and <s> ... </s> markers."""

  def __init__(self, model_path: str):
    if not os.path.isfile(model_path):
      raise TokenizerFileError(f'SentencePiece model not found: {model_path!r}')
    try:
      self._sp = spm.SentencePieceProcessor(model_file=model_path)
    except RuntimeError as e:
      raise BadTokenizerFile(f'{model_path} is not a SentencePiece model ({e})') from None
    if self._sp.pad_id() != 0:
      raise BadTokenizerFile(
        f'{model_path}: pad id must be 0 (train with --pad_id=0), got {self._sp.pad_id()}'
      )
    self._bos, self._eos = self._sp.bos_id(), self._sp.eos_id()
    self._markers = [i for i in (self._bos, self._eos) if i >= 0]
    self.vocab_size = self._sp.get_piece_size()
    self.pad_id = 0
    self.special_ids = tuple(
      sorted(i for i in (0, self._sp.unk_id(), self._bos, self._eos) if i >= 0)
    )
    self.fingerprint = f'sentencepiece:{_file_hash(model_path)}'

  def encode(self, texts: Sequence[str], max_len: int) -> list[list[int]]:
    _check_max_len(max_len, len(self._markers))
    keep = max_len - len(self._markers)
    head = [self._bos] if self._bos >= 0 else []
    tail = [self._eos] if self._eos >= 0 else []
    pieces = self._sp.encode(list(texts), out_type=int)
    return [head + p[:keep] + tail for p in pieces]

  def decode(self, ids: Sequence[int]) -> str:
    skip = {0, self._bos, self._eos}
    return self._sp.decode([int(i) for i in ids if int(i) not in skip])


def train_sentencepiece(
  texts: Sequence[str],
  model_path: str,
  vocab_size: int,
  max_sentences: int,
  lowercase: bool = True,
  seed: int = 0,
) -> str:
  """Trains a unigram SentencePiece model and writes it atomically.

  The model is written atomically (`files.write_bytes`), so a crash or a
  concurrent reader never sees half a file.

  Args:
    texts: Training sentences; duplicates are removed and at most
      `max_sentences` (a seeded sample) are used, bounding time and memory.
    model_path: Where to write the model.
    vocab_size: Target size; a soft limit, so a tiny corpus still trains
      (the tokenizer's `vocab_size` is the size actually reached).
    max_sentences: Bound on the number of training sentences.
    lowercase: Case-fold (as BERT uncased does) via 'nmt_nfkc_cf'.
    seed: Seed of the sample.

  Returns:
    model_path.
  """
  unique = sorted(set(texts))
  if not unique:
    raise ValueError('no text to train SentencePiece on')
  random.Random(seed).shuffle(unique)
  sample = unique[:max_sentences]
  model = io.BytesIO()
  spm.SentencePieceTrainer.train(
    sentence_iterator=iter(sample),
    model_writer=model,
    vocab_size=vocab_size,
    model_type='unigram',
    hard_vocab_limit=False,
    input_sentence_size=0,  # 0: all of the sample.
    character_coverage=0.9995,
    normalization_rule_name='nmt_nfkc_cf' if lowercase else 'nmt_nfkc',
    num_threads=os.cpu_count() or 1,
    minloglevel=2,
    **_SPM_IDS,
  )
  proto = model.getvalue()
  files.write_bytes(model_path, proto)
  reached = spm.SentencePieceProcessor(model_proto=proto).get_piece_size()
  logging.info(
    'trained SentencePiece (%d sentences, vocab %d of %d asked) -> %s',
    len(sample), reached, vocab_size, model_path,
  )  # fmt: skip
  return model_path


def build_base_tokenizer(
  config: ml_collections.ConfigDict,
  workdir: str | None,
  training_texts: Sequence[str] | None = None,
) -> Tokenizer:
  """The tokenizer in its native id order (``pipeline.build_tokenizer`` adds the id order)."""
  tok = config.tokenizer
  if tok.kind == 'wordpiece':  # else 'sentencepiece': KINDS, checked by configuration.validate
    return WordPieceTokenizer(tok.vocab_path, bool(tok.lowercase))
  if tok.spm_model_path:
    return SentencePieceTokenizer(tok.spm_model_path)
  if not workdir:
    raise ValueError(
      'a workdir is needed to train/reuse a SentencePiece model (or set tokenizer.spm_model_path)'
    )
  path = os.path.join(workdir, SPM_FILENAME)
  if os.path.exists(path):
    logging.info('reusing SentencePiece model %s', path)
  elif training_texts is None:
    raise ValueError(
      f'no SentencePiece model at {path} and no training text to train one (pass training_texts)'
    )
  else:
    train_sentencepiece(
      training_texts,
      path,
      tok.spm_vocab_size,
      tok.spm_max_sentences,
      bool(tok.lowercase),
      config.seed,
    )
  return SentencePieceTokenizer(path)
