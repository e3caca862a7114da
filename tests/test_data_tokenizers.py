"""Tests of pete_jax.data tokenizers and token-id re-ordering."""

import os

os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=8')

import hashlib
import json
import types

from configs import default

import numpy as np
import pytest

import tiny_data
import tokenizers as hf_tokenizers

from pete_jax import assets
from pete_jax.data import id_order
from pete_jax.data import pipeline
from pete_jax.data import tokenizers

BERT_VOCAB = assets.vocab_file('bert-base-uncased')  # shipped with the package
DATA_DIR = os.environ.get('PETE_DATA_DIR', '../shared/data')
GOLDEN = os.path.join(DATA_DIR, 'official_weights', 'golden_tan_1_64.json')
needs_golden = pytest.mark.skipif(
  not os.path.exists(GOLDEN),
  reason=f'official golden file not found under PETE_DATA_DIR={DATA_DIR!r} (needs '
  'official_weights/golden_tan_1_64.json, which cannot be shipped)',
)

SENTENCES = [
  'A man with a hard hat is dancing.',
  'Héllo, WÖRLD!! naïve café — isn\'t it "great"?',
  'Tokyo 東京 is big; the U.S.A. (1999) cost $3.50.',
  'antidisestablishmentarianism and pneumonoultramicroscopic words',
  '[MASK] tokens, tabs\tand\nnewlines',
]
CORPUS = [
  'A man is playing a guitar on stage.',
  'Two dogs run across a field.',
  'The woman is cutting onions in the kitchen.',
  'A child plays outside.',
  'A man is riding a horse on the beach.',
  'People walk in the park.',
] * 20


def _config(**tokenizer):
  config = default.get_config()
  for key, value in tokenizer.items():
    config.tokenizer[key] = value
  return config


@pytest.fixture
def tiny_vocab(tmp_path):
  tokens = [
    *tiny_data.BERT_SPECIALS,
    'a',
    'man',
    'is',
    'danc',
    '##ing',
    '.',
    'the',
    'dog',
    'run',
    '##s',
  ]
  path = tmp_path / 'vocab.txt'
  path.write_text('\n'.join(tokens) + '\n')
  return str(path)


def test_wordpiece_tiny_vocab_truncation_and_decode(tiny_vocab):
  tok = tokenizers.WordPieceTokenizer(tiny_vocab)
  assert (tok.vocab_size, tok.pad_id, tok.special_ids) == (15, 0, (0, 1, 2, 3, 4))
  assert tok.encode(['A man is dancing.', 'The dog runs fast'], 16) == [
    [2, 5, 6, 7, 8, 9, 10, 3],
    [2, 11, 12, 13, 14, 1, 3],
  ]
  # Truncation counts the markers, and [SEP] survives it (as HF BERT).
  assert tok.encode(['A man is dancing.'], 4) == [[2, 5, 6, 3]]
  assert tok.decode([2, 5, 6, 7, 8, 9, 10, 3, 0, 0]) == 'a man is dancing.'
  with pytest.raises(ValueError, match='no room'):
    tok.encode(['a'], 2)


def test_wordpiece_vocab_without_pad_at_zero_is_refused(tmp_path):
  path = tmp_path / 'vocab.txt'
  path.write_text('[UNK]\n[PAD]\n[CLS]\n[SEP]\na\n')
  with pytest.raises(tokenizers.BadTokenizerFile, match=r'\[PAD\] must have id 0'):
    tokenizers.WordPieceTokenizer(str(path))
  path.write_text('a\nb\n')
  with pytest.raises(tokenizers.BadTokenizerFile, match=r"special tokens \['\[PAD\]'"):
    tokenizers.WordPieceTokenizer(str(path))


def test_a_file_that_is_no_sentencepiece_model_is_refused(tmp_path):
  path = tmp_path / 'spm.model'
  path.write_bytes(b'\x00not a model\xff' * 8)
  with pytest.raises(tokenizers.BadTokenizerFile, match='is not a SentencePiece model'):
    tokenizers.SentencePieceTokenizer(str(path))


def test_packaged_vocab_is_bert_uncased():
  with open(BERT_VOCAB, 'rb') as f:
    raw = f.read()
  assert hashlib.sha256(raw).hexdigest() == (
    '07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3'
  )  # assets/README.md
  lines = raw.decode('utf-8').splitlines()
  assert (
    len(lines) == 30522
    and lines[:1] == ['[PAD]']
    and lines[100:104] == ['[UNK]', '[CLS]', '[SEP]', '[MASK]']
  )
  assert default.get_config().tokenizer.vocab_path == 'bert-base-uncased'
  assert pipeline.build_tokenizer(default.get_config(), None).vocab_size == 30522


@needs_golden
def test_wordpiece_reproduces_official_golden_ids():
  tok = pipeline.build_tokenizer(_config(vocab_path=BERT_VOCAB), None)
  with open(GOLDEN) as f:
    golden = json.load(f)
  sentences = [p[k] for p in golden['pairs'] for k in ('sentence1', 'sentence2')]
  assert len(sentences) == 16
  ids = tok.encode([s['text'] for s in sentences], 128)
  for sentence, mine in zip(sentences, ids):
    n = sentence['num_real_tokens']
    assert mine == sentence['input_ids'][:n], sentence['text']
    assert sentence['input_ids'][n:] == [0] * (128 - n)
    assert mine[0] == 101 and mine[-1] == 102


@pytest.mark.parametrize('max_len', [5, 9, 128])
def test_wordpiece_matches_independent_hf_bert_tokenizer(max_len):
  tok = tokenizers.WordPieceTokenizer(BERT_VOCAB, lowercase=True)
  reference = hf_tokenizers.BertWordPieceTokenizer(BERT_VOCAB, lowercase=True)
  reference.enable_truncation(max_len)
  expected = [e.ids for e in reference.encode_batch(SENTENCES)]
  assert tok.encode(SENTENCES, max_len) == expected
  assert tok.vocab_size == 30522 and tok.special_ids == (0, 100, 101, 102, 103)


def test_sentencepiece_trains_saves_reloads_and_round_trips(tmp_path, monkeypatch):
  config = _config(kind='sentencepiece', spm_vocab_size=60, spm_max_sentences=1000)
  workdir = str(tmp_path / 'run')
  tok = pipeline.build_tokenizer(config, workdir, CORPUS)
  model_path = os.path.join(workdir, tokenizers.SPM_FILENAME)
  assert os.path.isfile(model_path)
  assert [f for f in os.listdir(workdir) if '.tmp' in f] == []
  mtime = os.stat(model_path).st_mtime_ns
  ids = tok.encode(CORPUS[:3], 64)

  def no_training(*args, **kwargs):
    raise AssertionError('retrained although spm.model exists')

  monkeypatch.setattr(tokenizers, 'train_sentencepiece', no_training)
  again = pipeline.build_tokenizer(config, workdir)  # No text: must reuse.
  assert os.stat(model_path).st_mtime_ns == mtime
  assert again.encode(CORPUS[:3], 64) == ids
  assert again.fingerprint == tok.fingerprint
  assert tok.pad_id == 0 and 0 < tok.vocab_size <= 60
  for text, seq in zip(CORPUS[:3], ids):
    assert seq[0] == 2 and seq[-1] == 3 and 0 not in seq
    assert max(seq) < tok.vocab_size
    assert tok.decode(seq + [0, 0]) == text.lower()  # Case-folded like BERT.
  short = tok.encode([CORPUS[2]], 5)[0]
  assert len(short) == 5 and short[0] == 2 and short[-1] == 3
  # An explicit model path is used as is.
  loaded = pipeline.build_tokenizer(_config(kind='sentencepiece', spm_model_path=model_path), None)
  assert loaded.encode(CORPUS[:3], 64) == ids


def test_sentencepiece_without_model_or_text_fails(tmp_path):
  with pytest.raises(ValueError, match='no SentencePiece model'):
    pipeline.build_tokenizer(_config(kind='sentencepiece'), str(tmp_path))


def _check_bijection(new_id, vocab_size, special_ids):
  assert sorted(new_id.tolist()) == list(range(vocab_size))
  assert all(new_id[s] == s for s in special_ids)


def test_frequency_and_random_orders_are_bijections_fixing_specials():
  counts = np.array([0, 5, 0, 1, 9, 9, 0, 3])
  specials = (0, 2)
  freq = id_order.frequency_order(counts, specials)
  _check_bijection(freq, 8, specials)
  # Free ids 1,3,4,5,6,7 go to tokens by count: 4 and 5 (9, ties by id),
  # 1 (5), 7 (3), 3 (1), 6 (0).
  assert freq.tolist() == [0, 4, 2, 6, 1, 3, 7, 5]
  rand = id_order.random_order(1000, (0, 100, 101), seed=3)
  _check_bijection(rand, 1000, (0, 100, 101))
  assert np.array_equal(rand, id_order.random_order(1000, (0, 100, 101), 3))
  assert not np.array_equal(rand, id_order.random_order(1000, (0, 100, 101), 4))


def test_a_reordering_that_is_no_permutation_or_moves_a_special_id_is_refused():
  base = types.SimpleNamespace(vocab_size=4, special_ids=(0,), pad_id=0, fingerprint='t')
  with pytest.raises(ValueError, match='not a permutation'):
    id_order.ReorderedTokenizer(base, [0, 1, 1, 3], 'random')
  with pytest.raises(ValueError, match='moves a special id'):
    id_order.ReorderedTokenizer(base, [1, 0, 2, 3], 'random')
  reordered = id_order.ReorderedTokenizer(base, [0, 3, 1, 2], 'random')
  assert reordered.native_id.tolist() == [0, 2, 3, 1]


@pytest.mark.parametrize('order', ['frequency', 'random'])
def test_id_order_saved_and_identical_in_evaluation(order, tiny_vocab, tmp_path):
  config = _config(vocab_path=tiny_vocab, id_order=order, id_order_seed=7)
  workdir = str(tmp_path)
  texts = ['the dog runs.', 'the dog runs.', 'a dog.', 'a man is dancing.']
  train_tok = pipeline.build_tokenizer(config, workdir, texts)
  assert os.path.isfile(os.path.join(workdir, id_order.ID_ORDER_FILENAME))
  eval_tok = pipeline.build_tokenizer(config, workdir)  # No texts.
  native = tokenizers.WordPieceTokenizer(tiny_vocab)
  _check_bijection(train_tok.new_id, native.vocab_size, native.special_ids)
  sentences = ['A man is dancing.', 'The dog runs fast']
  ids = train_tok.encode(sentences, 16)
  assert eval_tok.encode(sentences, 16) == ids
  assert ids == [train_tok.new_id[s].tolist() for s in native.encode(sentences, 16)]
  assert train_tok.pad_id == 0 and train_tok.decode(ids[0] + [0]) == ('a man is dancing.')
  if order == 'frequency':  # '.' and 'dog' are the most frequent pieces.
    assert sorted([train_tok.new_id[10], train_tok.new_id[12]]) == [5, 6]
  # A different seed or order must not silently reuse the saved mapping.
  other = _config(vocab_path=tiny_vocab, id_order='random', id_order_seed=8)
  with pytest.raises(ValueError, match='was made for'):
    pipeline.build_tokenizer(other, workdir)


def test_native_order_and_missing_frequency_text(tiny_vocab, tmp_path):
  config = _config(vocab_path=tiny_vocab)
  assert isinstance(pipeline.build_tokenizer(config, None), tokenizers.WordPieceTokenizer)
  config = _config(vocab_path=tiny_vocab, id_order='frequency')
  with pytest.raises(ValueError, match='no training text'):
    pipeline.build_tokenizer(config, str(tmp_path))
