"""GLUE fine-tuning: readers (GLUE TSV, MSR paraphrase, CSV), metrics, the head, the
fine-tuning loop on small synthetic tasks, the command and the suite runner."""

import csv
import json
import os
import random

import jax
import numpy as np
import pytest
from scipy import stats

from configs import glue as glue_config
from configs import smoke
from experiments import glue as glue_suite
from pete_jax import train, trained_model
from pete_jax.data.records import SourceError
from pete_jax.encoder import encoder_from_config
from pete_jax.errors import ConfigError
from pete_jax.glue import finetune, metrics, readers, tasks
from pete_jax.glue.head import ClassifierHead

ACTIONS = ['plays a guitar', 'rides a bike', 'reads a book', 'cooks dinner', 'swims in a lake']
PARAPHRASE = ['makes music', 'is cycling', 'is reading', 'makes food', 'is in the water']
SUBJECTS = ['a man', 'a woman', 'the boy', 'two girls', 'an old man', 'the dog']


def _nli_rows(n, seed):
  """Premise/hypothesis pairs: entailment when the hypothesis paraphrases the action."""
  rng = random.Random(seed)
  rows = []
  for _ in range(n):
    s, a = rng.choice(SUBJECTS), rng.randrange(len(ACTIONS))
    other = (a + rng.randrange(1, len(ACTIONS))) % len(ACTIONS)
    same = rng.random() < 0.5
    rows.append((f'{s} {ACTIONS[a]}', f'{s} {PARAPHRASE[a if same else other]}',
                 'entailment' if same else 'not_entailment'))  # fmt: skip
  return rows


def _write_csv(path, rows, header=('premise', 'hypothesis', 'label')):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w', newline='', encoding='utf-8') as f:
    w = csv.writer(f)
    w.writerow(header)
    w.writerows(rows)
  return str(path)


def _write_tsv(path, lines):
  path.write_text('\n'.join('\t'.join(map(str, line)) for line in lines) + '\n', encoding='utf-8')
  return str(path)


def test_glue_tsv_layouts_and_bad_rows_are_counted(tmp_path):
  cola = _write_tsv(tmp_path / 'cola.tsv', [('src', 1, '', 'The cat sat.'), ('src', 0, '', 'Cat the.'),
                                            ('src', 7, '', 'Bad label.'), ('src', 1)])  # fmt: skip
  examples, report = readers.read_examples(f'glue_tsv:{cola}', tasks.get_task('cola'))
  assert [(e.text_a, e.text_b, e.label) for e in examples] == [
    ('The cat sat.', None, 1.0),
    ('Cat the.', None, 0.0),
  ]
  assert report.dropped == {'unknown_label': 1, 'wrong_column_count': 1} and report.read == 4
  qnli = _write_tsv(tmp_path / 'qnli.tsv', [('index', 'question', 'sentence', 'label'),
                                            (0, 'Who?', 'Him.', 'not_entailment'),
                                            (1, ' ', 'Empty.', 'entailment')])  # fmt: skip
  examples, report = readers.read_examples(f'glue_tsv:{qnli}', tasks.get_task('qnli'))
  assert [(e.text_a, e.text_b, e.label) for e in examples] == [('Who?', 'Him.', 1.0)]
  assert report.dropped == {'empty_sentence': 1}
  with pytest.raises(SourceError, match='columns'):
    readers.read_examples(f'glue_tsv:{qnli}', tasks.get_task('qqp'))
  with pytest.raises(readers.BadRowError):
    readers.read_examples(f'glue_tsv:{cola}', tasks.get_task('cola'), on_bad_row='error')


def test_msr_paraphrase_dev_is_carved_out_deterministically(tmp_path):
  header = ('Quality', '#1 ID', '#2 ID', '#1 String', '#2 String')
  lines = [header] + [(i % 2, 2 * i, 2 * i + 1, f'sentence {i}', f'other {i}') for i in range(500)]
  path = _write_tsv(tmp_path / 'msr_paraphrase_train.txt', lines)
  mrpc = tasks.get_task('mrpc')
  read = lambda part: readers.read_examples(f'msr_paraphrase:{path}:{part}', mrpc)[0]
  dev, rest = read('dev'), read('train')
  assert len(dev) == readers.MRPC_DEV_SIZE and len(rest) == 500 - readers.MRPC_DEV_SIZE
  assert not {e.text_a for e in dev} & {e.text_a for e in rest}
  assert [e.text_a for e in read('dev')] == [e.text_a for e in dev]  # the same on every call
  # GLUE's own list, when it lies beside the file, decides instead.
  _write_tsv(tmp_path / readers.MRPC_DEV_IDS, [(0, 1), (4, 5)])
  assert [e.text_a for e in read('dev')] == ['sentence 0', 'sentence 2']


def test_metrics_are_glues():
  labels, predictions = np.array([1, 1, 0, 0]), np.array([1, 0, 0, 0])
  mrpc = metrics.score(tasks.get_task('mrpc'), predictions, labels)
  assert mrpc == pytest.approx({'f1': 200 / 3, 'accuracy': 75.0})
  cola = metrics.score(tasks.get_task('cola'), predictions, labels)
  assert cola['mcc'] == pytest.approx(100 * 2 / np.sqrt(12))  # (TP TN - FP FN) / sqrt(...)
  stsb = metrics.score(tasks.get_task('stsb'), np.array([1.0, 2.0, 4.0]), np.array([0.0, 1.0, 5.0]))
  assert stsb['spearman'] == pytest.approx(100.0) and metrics.combined({'a': 1, 'b': 3}) == 2
  assert tasks.metric_names(tasks.get_task('mnli')) == ['accuracy_matched', 'accuracy_mismatched']


def test_head_features():
  u, v = np.random.default_rng(0).normal(size=(2, 2, 8)).astype(np.float32)
  for features, pair, expected in (
    ('uv_absdiff', True, np.concatenate([u, v, np.abs(u - v)], -1)),
    ('concat', True, np.concatenate([u, v], -1)),
    ('concat', False, u),
  ):
    head = ClassifierHead(3, features)
    params = head.init(jax.random.key(0), u, v if pair else None)['params']
    kernel, bias = params['classifier']['kernel'], params['classifier']['bias']
    assert kernel.shape == (expected.shape[-1], 3)
    logits = head.apply({'params': params}, u, v if pair else None)
    np.testing.assert_allclose(logits, expected @ kernel + bias, rtol=1e-5, atol=1e-5)
  with pytest.raises(ValueError, match='head features must be one of'):
    ClassifierHead(3, 'bogus').init(jax.random.key(0), u, v)


def _fresh_model(tmp_path, **model_fields):
  """A tiny untrained encoder with the packaged BERT vocabulary (no pre-training needed)."""
  config = smoke.get_config()
  config.model.update(model_fields)
  tokenizer = trained_model.pipeline.build_tokenizer(config, str(tmp_path))
  encoder = encoder_from_config(config.model, tokenizer.vocab_size, config.data.max_len)
  params = train.init_params(encoder, config, jax.random.key(0))['encoder']
  return trained_model.assemble(config, str(tmp_path), params, 0)


def _task_config(task, train_source, validation, lr=3e-3, epochs=3):
  config = glue_config.get_config(task)
  config.train_source, config.validation_sources = train_source, (validation,)
  config.update(learning_rate=lr, epochs=epochs, batch_size=16, max_len=32, buckets=())
  return config


def test_finetune_learns_a_pair_task_and_picks_the_epoch_on_the_selection_split(tmp_path):
  train_csv = _write_csv(tmp_path / 'train.csv', _nli_rows(320, 0))
  dev_csv = _write_csv(tmp_path / 'dev.csv', _nli_rows(100, 1))
  config = _task_config('rte', f'nli_csv:{train_csv}', f'nli_csv:{dev_csv}')
  data = finetune.load_task_data(config)
  assert (len(data.train), len(data.select)) == (288, 32)
  again = finetune.load_task_data(config)  # the same held-out examples for every seed
  assert again.select == data.select
  result = finetune.finetune(_fresh_model(tmp_path), config, data)
  best = max(result['curve'], key=lambda p: metrics.combined(p['select']))
  assert result['best_epoch'] == best['epoch'] and result['validation'] == best['validation']
  assert result['steps'] == 3 * (288 // 16)
  # The label is a function of the two texts; a trained head beats chance clearly.
  assert result['validation']['accuracy'] > 70


def test_finetune_single_sentence_and_regression_tasks(tmp_path):
  rows = [('sentence', 'label')] + [(f'{s} {a}', int(i < 3)) for s in SUBJECTS
                                     for i, a in enumerate(ACTIONS)]  # fmt: skip
  sst = _write_tsv(tmp_path / 'sst2.tsv', rows)
  model = _fresh_model(tmp_path)
  config = _task_config('sst2', f'glue_tsv:{sst}', f'glue_tsv:{sst}', epochs=1)
  result = finetune.finetune(model, config, finetune.load_task_data(config))
  assert set(result['validation']) == {'accuracy'} and 0 <= result['validation']['accuracy'] <= 100
  assert result['examples'] == {'train': 27, 'select': 3, 'validation': 30}
  assert result['steps'] == 27 // 16
  sts = [('sentence1', 'sentence2', 'score')]
  sts += [(f'{s} {a}', f'{s} {b}', 5.0 if a == b else 1.0) for s in SUBJECTS for a in ACTIONS
          for b in ACTIONS[:2]]  # fmt: skip
  path = _write_tsv(tmp_path / 'sts.tsv', sts)
  config = _task_config('stsb', f'glue_tsv:{path}', f'glue_tsv:{path}', epochs=1)
  result = finetune.finetune(model, config, finetune.load_task_data(config))
  assert set(result['validation']) == {'pearson', 'spearman'} and result['steps'] == 54 // 16
  # STS-B is scored by the cosine of the two sentences' vectors: a pair of identical
  # sentences (score 5) has cosine 1, above (up to float rounding) every other pair's,
  # whatever the weights: the Spearman correlation of a perfect split of the binary gold.
  gold = np.array([row[2] for row in sts[1:]])
  ranked_like_cosine = np.where(gold == 5.0, 2.0, np.linspace(0, 1, len(gold)))
  perfect = 100 * stats.spearmanr(ranked_like_cosine, gold).statistic
  assert perfect - 1 < result['validation']['spearman'] <= perfect + 1e-6


def test_a_mean_all_model_is_fine_tuned_at_the_length_it_was_trained_with(tmp_path):
  """Its vector averages the padding too: a longer GLUE max_len would change what it computes."""
  train_csv = _write_csv(tmp_path / 'train.csv', _nli_rows(64, 0))
  dev_csv = _write_csv(tmp_path / 'dev.csv', _nli_rows(32, 1))
  model = _fresh_model(tmp_path, pooling='mean_all')
  results = []
  for max_len in (model.config.data.max_len, model.config.data.max_len + 16):
    config = _task_config('rte', f'nli_csv:{train_csv}', f'nli_csv:{dev_csv}', epochs=1)
    config.max_len = max_len
    results.append(finetune.finetune(model, config, finetune.load_task_data(config)))
  assert results[0]['curve'][0]['loss'] == results[1]['curve'][0]['loss']
  assert results[0]['validation'] == results[1]['validation']


def test_an_invalid_finetuning_config_names_every_field_before_reading_data():
  config = glue_config.get_config('rte')  # its TFDS data is not read: the check comes first
  config.update(task='squad', head='bogus', on_bad_row='ignore', epochs=0, select_fraction=1.0)
  config.update(learning_rate=0.0, batch_size=1, max_len=2)
  with pytest.raises(ConfigError) as info:
    finetune.load_task_data(config)
  fields = [line.split()[0] for line in str(info.value).splitlines()[1:]]
  assert fields == ['task', 'head', 'on_bad_row', 'epochs', 'select_fraction', 'learning_rate',
                    'batch_size', 'max_len']  # fmt: skip


def test_ax_is_reported_as_not_scorable():
  with pytest.raises(SourceError, match='mnli'):
    finetune.load_task_data(glue_config.get_config('ax'))


def test_configs_name_local_files_and_tfds(monkeypatch):
  monkeypatch.setenv('PETE_DATA_DIR', '/data')
  assert glue_config.get_config('rte').train_source == 'tfds:glue/rte:train'
  assert glue_config.get_config('mnli').validation_sources == (
    'tfds:glue/mnli:validation_matched',
    'tfds:glue/mnli:validation_mismatched',
  )
  local = glue_config.get_config('mrpc,local')
  assert local.train_source.startswith('msr_paraphrase:/data/') and local.train_source.endswith(
    ':train'
  )
  assert glue_config.get_config('joci').train_source.endswith('joci_train.csv')
  with pytest.raises(ValueError, match='no local files'):
    glue_config.get_config('qqp,local')
  with pytest.raises(ValueError, match='unknown task'):
    glue_config.get_config('squad')


def test_suite_chooses_the_rate_on_the_selection_split_and_skips_finished_runs(
  tiny_data, tmp_path, monkeypatch
):
  """Pre-trains a tiny model, runs the suite on a local RTE-like task (two rates, two seeds)
  in subprocesses, then again: nothing retrains and the tables are the same."""
  monkeypatch.setenv('XLA_FLAGS', '--xla_force_host_platform_device_count=1')
  standins = os.path.join(tiny_data, 'standins', 'felipessalvatore_nli_datasets')
  _write_csv(os.path.join(standins, 'rte_train.csv'), _nli_rows(200, 0))
  _write_csv(os.path.join(standins, 'rte_dev.csv'), _nli_rows(60, 1))
  assert glue_suite.tasks_with_data(local=True) == ['stsb', 'rte']  # the files present
  pretrained = str(tmp_path / 'pretrained')
  config = smoke.get_config()
  config.train.num_steps = 2
  config.train.eval_every_steps = config.train.checkpoint_every_steps = 2
  train.train_and_evaluate(config, pretrained)
  monkeypatch.setattr(glue_suite, 'LR_GRID', (1e-3, 3e-3))
  monkeypatch.setattr(glue_suite, 'LR_LADDER', (1e-3, 3e-3))  # no widening here
  monkeypatch.chdir(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  dirs = {'runs_dir': str(tmp_path / 'runs'), 'results_dir': str(tmp_path / 'results')}
  path = glue_suite.run_suite({'tiny': pretrained}, ['rte', 'ax'], (0, 1), **dirs)
  table = json.loads((tmp_path / 'results' / 'glue.json').read_text())['rows']
  (row,) = table
  chosen = max(row['grid_select'], key=row['grid_select'].get)
  assert row['learning_rate'] == float(chosen) and set(row['per_seed']) == {'0', '1'}
  assert f'**{chosen}**' in open(path, encoding='utf-8').read()
  records = tmp_path / 'results' / 'runs' / 'glue' / 'tiny' / 'rte'
  assert len(list(records.glob('*.json'))) == 3  # two rates at seed 0, the chosen one at seed 1
  monkeypatch.setattr(glue_suite.subprocess, 'call', lambda *a, **k: pytest.fail('retrained'))
  before = (tmp_path / 'results' / 'glue.json').read_text()
  glue_suite.run_suite({'tiny': pretrained}, ['rte'], (0, 1), **dirs)
  assert (tmp_path / 'results' / 'glue.json').read_text() == before
  # Records are found by model name: another pre-trained model under that name is refused.
  with pytest.raises(ValueError, match=f'fine-tuned {pretrained}, not .*other'):
    glue_suite.run_suite({'tiny': str(tmp_path / 'other')}, ['rte'], (0, 1), **dirs)


@pytest.mark.parametrize(
  'name', ['cola', 'sst2', 'mrpc', 'qqp', 'stsb', 'mnli', 'qnli', 'rte', 'wnli']
)
def test_tfds_glue_tasks_read_with_their_real_schema(name, monkeypatch):
  """tfds.testing.mock_data builds examples from each builder's real features, so the text
  keys and label ranges of tasks.py are checked against TFDS's own glue builder."""
  tfds = pytest.importorskip('tensorflow_datasets')
  from pete_jax.data import tfds_reader  # pylint: disable=import-outside-toplevel

  monkeypatch.setattr(tfds_reader, 'network_reachable', lambda *a, **k: True)
  task = tasks.get_task(name)
  with tfds.testing.mock_data(num_examples=6):
    examples, report = readers.read_examples(f'tfds:glue/{name}:train', task)
  assert len(examples) + report.dropped.get('no_gold_label', 0) == 6 and not report.bad_rows
  assert all(isinstance(e.text_a, str) and (e.text_b is not None) == task.is_pair for e in examples)
  if not task.is_regression:
    assert {int(e.label) for e in examples} <= set(range(task.num_labels))


def test_tfds_glue_spec_may_name_a_version(monkeypatch):
  """The GLUE reader reads TFDS specs with the pre-training grammar, NAME[:VERSION][:SPLIT]."""
  from pete_jax.data import tfds_reader  # pylint: disable=import-outside-toplevel

  opened = []
  monkeypatch.setattr(
    tfds_reader, 'open_source', lambda name, split, *_: opened.append((name, split)) or []
  )
  rte = tasks.get_task('rte')
  list(readers.rows('tfds:glue/rte:2.0.0:train[:10%]', rte))
  list(readers.rows('tfds:glue/rte', rte))
  assert opened == [('glue/rte:2.0.0', 'train[:10%]'), ('glue/rte', 'train')]


def test_the_grid_widens_only_while_its_best_rate_is_at_an_edge():
  rec = lambda score: {'result': {'select': {'accuracy': score}}}
  grid = {3e-5: rec(50), 1e-4: rec(60), 3e-4: rec(70)}
  assert glue_suite.widen(grid) == [1e-3]
  assert glue_suite.widen({**grid, 1e-3: rec(65)}) == []  # the best is inside now
  assert glue_suite.widen({3e-5: rec(80), 1e-4: rec(60)}) == [1e-5]
  assert glue_suite.widen({1e-3: rec(1), 3e-3: rec(2)}) == []  # the ladder ends
  assert glue_suite.widen({3e-5: rec(1), 1e-4: None}) == []  # not all run yet
