"""Tests of the data entry points (pete_jax.data.pipeline) and the data-summary CLI."""

import os

os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=8')

import subprocess
import sys

from configs import default
import numpy as np
import pytest

import tiny_data

from pete_jax import data as data_lib

VOCAB = [
  *tiny_data.BERT_SPECIALS,
  'a',
  'man',
  'dog',
  'runs',
  'sings',
  'is',
  'happy',
  '.',
  'woman',
  'cat',
  'sleeps',
]
SENTENCES = [
  'A man sings.',
  'A dog runs.',
  'A woman is happy.',
  'A cat sleeps.',
  'A man is happy.',
  'A dog sleeps.',
]


def _write_fixtures(tmp_path):
  (tmp_path / 'vocab.txt').write_text('\n'.join(VOCAB) + '\n')
  rows = ['premise,hypothesis,label']
  for i in range(40):
    a, b = SENTENCES[i % 6], SENTENCES[(i * 5 + 1) % 6]
    rows.append(f'{a} {a},{b},{"entailment" if i % 4 else "neutral"}')
  rows.append('broken row,entailment')
  (tmp_path / 'nli.csv').write_text('\n'.join(rows) + '\n')
  header = 'index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore'
  sts = [header] + [
    f'{i}\tg\tf\t2012\t{i:04d}\tnone\tnone\t{SENTENCES[i % 6]}\t{SENTENCES[(i + 2) % 6]}\t{i % 6}.0'
    for i in range(10)
  ]
  (tmp_path / 'sts.tsv').write_text('\n'.join(sts) + '\n')


def _config(tmp_path):
  config = default.get_config()
  config.tokenizer.vocab_path = str(tmp_path / 'vocab.txt')
  config.data.train_sources = (f'pairs_csv:{tmp_path / "nli.csv"}',)
  config.data.eval_source = f'stsb_tsv:{tmp_path / "sts.tsv"}'
  config.data.finetune_source = f'stsb_tsv:{tmp_path / "sts.tsv"}'
  config.data.max_len = 16
  config.train.batch_size = 8
  config.finetune.batch_size = 4
  return config


def test_training_eval_and_finetune_entry_points(tmp_path):
  _write_fixtures(tmp_path)
  config = _config(tmp_path)
  train = data_lib.prepare_training_data(
    config, str(tmp_path / 'run'), process_index=1, process_count=2
  )
  assert train.report.kept == 30 and train.report.bad_rows == 1
  assert train.tokenizer.vocab_size == len(VOCAB)
  batch = train.batcher.batch_at(0)
  # Default buckets (16, 32, 64, 128) cut at max_len=16 leave (16,).
  assert train.batcher.lengths == (16,)
  assert batch['a_ids'].shape == (4, 16) and batch['b_ids'].shape == (4, 16)
  assert (batch['a_ids'][:, 0] == 2).all()  # [CLS]

  sts = data_lib.prepare_sts(config, train.tokenizer)
  assert len(sts.pairs) == 10 and sts.scores.dtype == np.float32
  assert sts.a_ids[0] == train.tokenizer.encode([SENTENCES[0]], 16)[0]

  finetune, report = data_lib.prepare_finetune_batcher(config, train.tokenizer)
  assert report.kept == 10
  assert finetune.batch_at(3)['score'].shape == (4,)


def test_data_summary_command(tmp_path):
  _write_fixtures(tmp_path)
  overrides = [
    f'--config.tokenizer.vocab_path={tmp_path / "vocab.txt"}',
    f"--config.data.train_sources=('pairs_csv:{tmp_path / 'nli.csv'}',)",
    '--config.data.max_len=16',
    '--config.train.batch_size=8',
    f'--workdir={tmp_path / "run"}',
    '--num_examples=1',
  ]
  out = subprocess.run(
    [sys.executable, '-m', 'pete_jax.data.summary', '--config=configs/default.py'] + overrides,
    capture_output=True,
    text=True,
    check=True,
    env={**os.environ, 'JAX_PLATFORMS': 'cpu'},
  ).stdout
  assert 'read 41, kept 30, dropped 11' in out
  assert 'wrong_column_count' in out and 'label_filter:neutral' in out
  assert 'p50' in out and 'p99' in out
  assert 'pad to max_len (official code):' in out
  assert 'decoded: a dog runs. a dog runs.' in out  # row 0 is neutral: row 1 is the first kept


def test_other_processes_wait_for_process_0_tokenizer_files(tmp_path):
  _write_fixtures(tmp_path)
  config = _config(tmp_path)
  config.tokenizer.kind = 'sentencepiece'
  config.tokenizer.spm_vocab_size = 40
  config.tokenizer.id_order = 'random'
  workdir = str(tmp_path / 'run')
  with pytest.raises(TimeoutError, match='spm.model'):
    data_lib.prepare_training_data(config, workdir, 1, 2, wait_timeout_s=0.2)
  first = data_lib.prepare_training_data(config, workdir, 0, 2)
  second = data_lib.prepare_training_data(config, workdir, 1, 2, wait_timeout_s=0.2)
  assert second.tokenizer.fingerprint == first.tokenizer.fingerprint
  whole = np.concatenate([first.batcher.batch_at(2)['a_ids'], second.batcher.batch_at(2)['a_ids']])
  alone = data_lib.prepare_training_data(config, workdir, 0, 1).batcher.batch_at(2)['a_ids']
  np.testing.assert_array_equal(whole, alone)  # two halves of the one-process batch


def test_mean_all_pooling_always_pads_to_max_len():
  config = default.get_config()
  config.data.max_len, config.data.buckets = 48, (16, 32)
  assert data_lib.padding_lengths(config) == (16, 32, 48)
  config.model.pooling = 'mean_all'  # averages the padding too: defined at one length only
  assert data_lib.padding_lengths(config) == (48,)
