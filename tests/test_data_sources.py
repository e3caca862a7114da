"""Tests of pete_jax.data sources: every format, every bad-row reason, TFDS.

Fixture files are written here in each official format (no real data).
"""

import os

os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=8')

import json
import types

from configs import default
import pytest

import tiny_data
from pete_jax.data import sources
from pete_jax.data import tfds_reader
from pete_jax.data.records import BadRowError
from pete_jax.data.records import SentencePair
from pete_jax.data.records import SourceError


def _config(**data):
  config = default.get_config()
  for key, value in data.items():
    config.data[key] = value
  return config


def _snli_line(label, s1, s2):
  return json.dumps(
    {
      'annotator_labels': [label],
      'captionID': '3416050480.jpg#4',
      'gold_label': label,
      'pairID': '3416050480.jpg#4r1n',
      'sentence1': s1,
      'sentence1_binary_parse': '( x )',
      'sentence1_parse': '(ROOT x)',
      'sentence2': s2,
      'sentence2_binary_parse': '( y )',
      'sentence2_parse': '(ROOT y)',
    }
  )


@pytest.fixture
def snli_jsonl(tmp_path):
  lines = [
    _snli_line('neutral', 'A person on a horse jumps.', 'A person trains.'),
    _snli_line('entailment', 'A person on a horse jumps.', 'A person is outdoors.'),
    _snli_line('-', 'Kids smile.', 'Children are happy.'),  # No gold.
    _snli_line('contradiction', 'A dog runs.', 'A cat sleeps.'),
    '{"gold_label": "entailment", "sentence1": "truncated',  # Bad JSON.
    json.dumps({'gold_label': 'entailment', 'sentence1': 'No second.'}),
    _snli_line('entailment', '   ', 'Empty premise.'),
    _snli_line('maybe', 'A man sings.', 'A man makes sound.'),
    '',  # Blank lines are not rows.
    _snli_line('Entailment', 'Two men talk.', 'People talk.'),
  ]
  data = ('\n'.join(lines) + '\n').encode()
  # A line whose bytes are not UTF-8 (sentence1 holds byte 0xff).
  data += (
    _snli_line('entailment', 'CAFE', 'A cafe.')
    .replace('CAFE', 'caf\udcff')
    .encode('utf-8', 'surrogateescape')
    + b'\n'
  )
  path = tmp_path / 'snli_1.0_train.jsonl'
  path.write_bytes(data)
  return str(path)


def test_nli_jsonl_entailment_filter_counts_every_reason(snli_jsonl):
  pairs, report = sources.read_source(f'nli_jsonl:{snli_jsonl}', 'nli', _config())
  assert pairs == [
    SentencePair('A person on a horse jumps.', 'A person is outdoors.', 'entailment'),
    SentencePair('Two men talk.', 'People talk.', 'entailment'),
  ]
  assert report.read == 10 and report.kept == 2  # The blank line is no row.
  assert dict(report.dropped) == {
    'label_filter:neutral': 1,
    'label_filter:contradiction': 1,
    'no_gold_label': 1,
    'malformed_json': 1,
    'missing_field': 1,
    'empty_sentence': 1,
    'unknown_label': 1,
    'undecodable': 1,
  }
  assert report.bad_rows == 5
  assert dict(report.labels) == {'entailment': 2, 'neutral': 1, 'contradiction': 1, 'no_gold': 1}
  assert report.first_where['malformed_json'] == f'{snli_jsonl}:5'
  assert report.read == report.kept + sum(report.dropped.values())


def test_nli_jsonl_all_keeps_every_label_and_no_gold(snli_jsonl):
  pairs, report = sources.read_source(f'nli_jsonl:{snli_jsonl}', 'nli', _config(label_filter='all'))
  assert [p.label for p in pairs] == ['neutral', 'entailment', None, 'contradiction', 'entailment']
  assert report.kept == 5 and report.bad_rows == 5


def test_error_mode_stops_at_first_bad_row_with_location(snli_jsonl):
  with pytest.raises(BadRowError, match=rf'{snli_jsonl}:5: .*malformed_json'):
    sources.read_source(f'nli_jsonl:{snli_jsonl}', 'nli', _config(on_bad_row='error'))


GLUE_HEADER = (
  'index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore'
)


def test_stsb_tsv(tmp_path):
  rows = [
    '0\tmain-captions\tMSRvid\t2012test\t0000\tnone\tnone\tA man with a '
    'hard hat is dancing.\tA man wearing a hard hat is dancing.\t5.000',
    '1\tmain-news\theadlines\t2015\t0001\tnone\tnone\t"Quoted start\t'
    'end quote" here\t0.500',  # Quote characters are ordinary text.
    '2\tmain-news\theadlines\t2015\t0002\tnone\tnone\tOnly nine\t4.0',
    '3\tmain-news\theadlines\t2015\t0003\tnone\tnone\tA\tB\tabout 3',
    '4\tmain-news\theadlines\t2015\t0004\tnone\tnone\tA\tB\t5.5',
    '5\tmain-news\theadlines\t2015\t0005\tnone\tnone\tA\t \t1.0',
    '6\tmain-news\theadlines\t2015\t0006\tnone\tnone\tA\tB\tnan',
  ]
  path = tmp_path / 'dev.tsv'
  path.write_text('\n'.join([GLUE_HEADER] + rows) + '\n')
  pairs, report = sources.load_sts_pairs(f'stsb_tsv:{path}', _config())
  assert pairs == [
    SentencePair(
      'A man with a hard hat is dancing.', 'A man wearing a hard hat is dancing.', None, 5.0
    ),
    SentencePair('"Quoted start', 'end quote" here', None, 0.5),
  ]
  assert report.read == 7 and report.kept == 2
  assert dict(report.dropped) == {
    'wrong_column_count': 1,
    'non_numeric_score': 2,
    'score_out_of_range': 1,
    'empty_sentence': 1,
  }
  assert report.first_where['wrong_column_count'] == f'{path}:4'


def test_stsb_tsv_missing_column_names_it_and_the_columns_found(tmp_path):
  path = tmp_path / 'test.tsv'  # GLUE's test split has no score column.
  path.write_text(GLUE_HEADER.replace('\tscore', '') + '\n0\ta\tb\n')
  with pytest.raises(SourceError, match=r"'score' not found.*'sentence2'"):
    sources.load_sts_pairs(f'stsb_tsv:{path}', _config())


def test_stsb_csv_original_format(tmp_path):
  rows = [
    'main-captions\tMSRvid\t2012test\t0001\t5.000\tA plane is taking off.'
    '\tAn air plane is taking off.',
    'main-forum\tdeft-forum\t2014\t0010\t2.400\tWe "think" so.\tMaybe.'
    '\tsource-a\tsource-b',  # Optional extra columns.
    'main-captions\tMSRvid\t2012test\t0002\t4.000\tSix columns only',
    'main-captions\tMSRvid\t2012test\t0003\t-0.5\tA.\tB.',
    'main-captions\tMSRvid\t2012test\t0004\tfive\tA.\tB.',
  ]
  path = tmp_path / 'sts-dev.csv'
  data = ('\n'.join(rows) + '\n').encode()
  data += b'main-captions\tMSRvid\t2012test\t0005\t1.0\t\xe9t\xe9\tsummer\n'
  path.write_bytes(data)
  pairs, report = sources.load_sts_pairs(f'stsb_csv:{path}', _config())
  assert [(p.text_a, p.score) for p in pairs] == [
    ('A plane is taking off.', 5.0),
    ('We "think" so.', 2.4),
  ]
  assert dict(report.dropped) == {
    'wrong_column_count': 1,
    'score_out_of_range': 1,
    'non_numeric_score': 1,
    'undecodable': 1,
  }
  with pytest.raises(BadRowError, match=rf'{path}:3: bad row: wrong_column'):
    sources.load_sts_pairs(f'stsb_csv:{path}', _config(on_bad_row='error'))


def test_pairs_csv_nli(tmp_path):
  path = tmp_path / 'pairs.csv'
  path.write_text(
    'premise,hypothesis,label\n'
    '"A man, in a hat, sings.",A man sings.,entailment\n'
    'A dog runs.,An animal moves.,ENTAILMENT\n'
    'A dog runs.,A cat sleeps.,contradiction\n'
    'Too,many,entailment,columns\n'
    'A dog runs.,A dog runs.,entails\n'
  )
  pairs, report = sources.read_source(f'pairs_csv:{path}', 'nli', _config())
  assert [p.text_a for p in pairs] == ['A man, in a hat, sings.', 'A dog runs.']
  assert dict(report.dropped) == {
    'label_filter:contradiction': 1,
    'wrong_column_count': 1,
    'unknown_label': 1,
  }


def test_pairs_tsv_sts_with_configured_columns(tmp_path):
  path = tmp_path / 'pairs.tsv'
  path.write_text('id\ts1\ts2\tsim\n1\tA "b\tC\t3.5\n2\tD\tE\t7\n')
  config = _config(csv_columns='s1,s2,sim')
  pairs, report = sources.load_sts_pairs(f'pairs_tsv:{path}', config)
  assert pairs == [SentencePair('A "b', 'C', None, 3.5)]
  assert dict(report.dropped) == {'score_out_of_range': 1}


def test_missing_file_and_missing_column(tmp_path):
  missing = tmp_path / 'nope.csv'
  with pytest.raises(SourceError, match='no such file.*nope.csv'):
    sources.read_source(f'pairs_csv:{missing}', 'nli', _config())
  path = tmp_path / 'other.csv'
  path.write_text('sentence1,sentence2,gold\na,b,entailment\n')
  with pytest.raises(
    SourceError,
    match=r"'premise' not found.*"
    r"\['sentence1', 'sentence2', 'gold'\]",
  ):
    sources.read_source(f'pairs_csv:{path}', 'nli', _config())


def test_several_sources_concatenate_and_empty_is_an_error(tmp_path):
  one, two = tmp_path / 'one.csv', tmp_path / 'two.csv'
  one.write_text('premise,hypothesis,label\na,b,entailment\nc,d,neutral\n')
  two.write_text('premise,hypothesis,label\ne,f,entailment\n')
  config = _config(train_sources=(f'pairs_csv:{one}', f'pairs_csv:{two}'))
  pairs, report = sources.load_nli_pairs(config)
  assert [p.text_a for p in pairs] == ['a', 'e']
  assert (report.read, report.kept, len(report.parts)) == (3, 2, 2)
  assert report.labels == {'entailment': 2, 'neutral': 1}
  only_neutral = tmp_path / 'neutral.csv'
  only_neutral.write_text('premise,hypothesis,label\nc,d,neutral\n')
  config = _config(train_sources=(f'pairs_csv:{only_neutral}',))
  with pytest.raises(SourceError, match='no NLI training pairs left'):
    sources.load_nli_pairs(config)


def test_one_source_left_with_no_pair_is_an_error_naming_it(tmp_path):
  good, bad = tmp_path / 'good.csv', tmp_path / 'bad.csv'
  good.write_text('premise,hypothesis,label\na,b,entailment\n')
  bad.write_text('premise,hypothesis,label\n' + 'a,b,maybe\n' * 50)
  config = _config(train_sources=(f'pairs_csv:{good}', f'pairs_csv:{bad}'))
  with pytest.raises(SourceError, match=r'no NLI training pairs left(.|\n)*bad.csv: read 50'):
    sources.load_nli_pairs(config)


def test_csv_exports_of_integer_labels_and_blank_csv_lines(tmp_path):
  """'0'/'1'/'2'/'-1' are the TFDS and Hugging Face label integers as a CSV writes them."""
  path = tmp_path / 'hf_export.csv'
  path.write_text('premise,hypothesis,label\nA,B,0\nC,D,1\n   \nE,F,2\nG,H,-1\nI,J,3\n \t \n')
  pairs, report = sources.read_source(f'pairs_csv:{path}', 'nli', _config(label_filter='all'))
  assert [(p.text_a, p.label) for p in pairs] == [
    ('A', 'entailment'),
    ('C', 'neutral'),
    ('E', 'contradiction'),
    ('G', None),
  ]
  assert report.read == 5 and dict(report.dropped) == {'unknown_label': 1}  # blank lines: no rows


def test_a_carriage_return_inside_a_field_does_not_split_the_row(tmp_path):
  path = tmp_path / 'pairs.tsv'
  path.write_bytes(
    b'premise\thypothesis\tlabel\r\nA man\rwalks.\tA man walks.\tentailment\r\n'
    b'Too\tfew\r\nA dog.\tAn animal.\tentailment\n'
  )
  pairs, report = sources.read_source(f'pairs_tsv:{path}', 'nli', _config())
  assert [p.text_a for p in pairs] == ['A man\rwalks.', 'A dog.']
  assert report.first_where['wrong_column_count'] == f'{path}:3'


def test_spec_parsing_and_kind_checks(tmp_path):
  assert sources.parse_spec('tfds:glue/stsb:validation') == (
    sources.SourceSpec('tfds', 'glue/stsb', 'validation')
  )
  assert sources.parse_spec('tfds:snli:1.1.0:train[:10%]') == (
    sources.SourceSpec('tfds', 'snli:1.1.0', 'train[:10%]')
  )
  assert sources.parse_spec('tfds:snli').split is None
  assert sources.parse_spec('pairs_csv:a:b.csv').location == 'a:b.csv'
  for bad in ('snli', 'csv:x.csv', 'pairs_csv:'):
    with pytest.raises(SourceError, match='bad source spec'):
      sources.parse_spec(bad)
  with pytest.raises(SourceError, match='holds sts pairs'):
    sources.read_source('stsb_tsv:x.tsv', 'nli', _config())
  with pytest.raises(SourceError, match='unsupported TFDS dataset'):
    sources.read_source('tfds:imdb_reviews', 'nli', _config())


# ------------------------------------------------------------------- TFDS
tfds = pytest.importorskip('tensorflow_datasets')


@pytest.fixture
def network_up(monkeypatch):
  """The download probe says the server is reachable (tfds.testing.mock_data fakes the rest)."""
  monkeypatch.setattr(tfds_reader, 'network_reachable', lambda host, port, timeout_s=5.0: True)


@pytest.mark.parametrize('name', ['snli', 'multi_nli'])
def test_tfds_nli_mock_real_schema(name, network_up):
  with tfds.testing.mock_data(num_examples=40):
    everything, report_all = sources.read_source(f'tfds:{name}', 'nli', _config(label_filter='all'))
    entailment, report = sources.read_source(f'tfds:{name}', 'nli', _config())
  assert len(everything) == 40 == report_all.kept
  assert all(isinstance(p.text_a, str) and isinstance(p.text_b, str) for p in everything)
  assert {p.label for p in everything} <= {'entailment', 'neutral', 'contradiction'}
  assert all(p.label == 'entailment' for p in entailment)
  assert len(entailment) == report_all.labels['entailment'] == report.kept
  assert report.read == 40


def test_tfds_stsb_mock_split(network_up):
  with tfds.testing.mock_data(num_examples=12):
    pairs, report = sources.load_sts_pairs('tfds:glue/stsb:validation', _config())
  assert len(pairs) == 12 == report.kept
  assert all(isinstance(p.score, float) and 0 <= p.score <= 5 and p.label is None for p in pairs)


def test_tfds_bytes_no_gold_and_undecodable(monkeypatch):
  records = [
    {'premise': b'A caf\xc3\xa9.', 'hypothesis': b'A shop.', 'label': 0},
    {'premise': b'Kids.', 'hypothesis': b'Children.', 'label': -1},
    {'premise': b'Bad \xff.', 'hypothesis': b'X.', 'label': 0},
    {'premise': b'Dog.', 'hypothesis': b'Cat.', 'label': 2},
  ]

  class PreparedBuilder:
    data_dir = '/prepared'
    info = types.SimpleNamespace(splits={'train': 1, 'validation': 1})
    is_prepared = lambda self: True
    as_data_source = lambda self, split: records

  monkeypatch.setattr(tfds, 'builder', lambda *a, **k: PreparedBuilder())
  pairs, report = sources.read_source('tfds:snli:validation', 'nli', _config(label_filter='all'))
  assert pairs == [
    SentencePair('A café.', 'A shop.', 'entailment'),
    SentencePair('Kids.', 'Children.', None),
    SentencePair('Dog.', 'Cat.', 'contradiction'),
  ]
  assert dict(report.dropped) == {'undecodable': 1}
  assert report.first_where['undecodable'] == 'tfds:snli:validation[2]'


def test_tfds_not_prepared_says_what_to_do(tmp_path):
  config = _config(tfds_data_dir=str(tmp_path), tfds_download=False)
  with pytest.raises(SourceError) as info:
    sources.read_source('tfds:snli', 'nli', config)
  message = str(info.value)
  assert str(tmp_path) in message
  assert 'data.tfds_download=False forbids' in message
  assert 'data.train_sources' in message and 'configs/local_data.py' in message


def test_tfds_download_prepares_readable_array_record(tmp_path, monkeypatch):
  """The real SNLI builder, 'downloading' official-format files offline."""
  pytest.importorskip(
    'importlib_resources', reason='TFDS needs importlib_resources to prepare data'
  )
  raw = tmp_path / 'raw' / 'snli_1.0'
  raw.mkdir(parents=True)
  rows = [
    ('A man in a café.', 'He waits.', 'neutral'),
    ('A man in a café.', 'A man is indoors.', 'entailment'),
    ('Kids play.', 'Children are outside.', '-'),
  ]
  for split in ('train', 'dev', 'test'):
    tiny_data.write_nli_txt(str(raw / f'snli_1.0_{split}.txt'), tiny_data.SNLI_HEADER, rows)
  monkeypatch.setattr(
    tfds.download.DownloadManager, 'download_and_extract', lambda self, url: str(tmp_path / 'raw')
  )
  monkeypatch.setattr(tfds_reader, 'network_reachable', lambda host, port, timeout_s=5.0: True)
  config = _config(tfds_data_dir=str(tmp_path / 'tfds'), tfds_download=True, label_filter='all')
  pairs, report = sources.read_source('tfds:snli:validation', 'nli', config)
  assert sorted(pairs, key=lambda p: p.text_b) == [
    SentencePair('A man in a café.', 'A man is indoors.', 'entailment'),
    SentencePair('Kids play.', 'Children are outside.', None),
    SentencePair('A man in a café.', 'He waits.', 'neutral'),
  ]
  assert report.labels == {'entailment': 1, 'neutral': 1, 'no_gold': 1}
