"""Small synthetic data in the real file formats, written by the tests themselves.

The suite must not depend on ``../shared/data``: every test that trains, resumes,
shards or tokenises reads these files instead. Sentences are built from a few
subjects and actions, so that the entailment pairs and the STS scores carry a
signal a tiny model can pick up (paraphrased action = similar meaning).
"""

import csv
import os
import random

SUBJECTS = (
  'a man',
  'a woman',
  'a young boy',
  'two girls',
  'an old man',
  'the children',
  'a tall woman',
  'three men',
  'a little girl',
  'the dog',
)
GENERIC = {
  'a man': 'a person',
  'a woman': 'a person',
  'a young boy': 'a child',
  'two girls': 'some kids',
  'an old man': 'someone',
  'the children': 'some kids',
  'a tall woman': 'someone',
  'three men': 'some people',
  'a little girl': 'a child',
  'the dog': 'an animal',
}
# (action, paraphrase of the action).
ACTIONS = (
  ('is playing a guitar', 'is making music'),
  ('is riding a bike', 'is cycling'),
  ('runs along the beach', 'is outside near the sea'),
  ('is cooking dinner', 'makes food'),
  ('reads a book', 'is reading'),
  ('is swimming in a lake', 'is in the water'),
  ('sleeps on a couch', 'is resting'),
  ('is climbing a rock', 'climbs'),
  ('kicks a ball', 'plays a game'),
  ('paints a picture', 'is making art'),
  ('is talking on the phone', 'makes a call'),
  ('waits for the bus', 'is at a bus stop'),
)
# The first five lines of a BERT vocab.txt (ids 0-4 in a test vocabulary).
BERT_SPECIALS = ('[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]')
# Files of configs/local_data.py (NLI_FILES) and of the STS-B GLUE TSVs.
NLI_FILES = ('snli_train_subset.csv', 'snli_dev.csv', 'snli_test.csv', 'mnli_dev_label1.csv')
NLI_ROWS = 240  # per file: 160 entailment pairs (a smoke batch is 16)
STS_ROWS = 96
STS_TRAIN_SEED, STS_DEV_SEED = 100, 101  # sts_rows(seed) of stsb/train.tsv and dev.tsv
GLUE_STSB_HEADER = (
  'index',
  'genre',
  'filename',
  'year',
  'old_index',
  'source1',
  'source2',
  'sentence1',
  'sentence2',
  'score',
)


def nli_rows(seed: int, n: int = NLI_ROWS) -> list[tuple[str, str, str]]:
  """(premise, hypothesis, label) rows; two of every three are entailment."""
  rng = random.Random(seed)
  rows = []
  for i in range(n):
    subject = rng.choice(SUBJECTS)
    action, paraphrase = rng.choice(ACTIONS)
    premise = f'{subject.capitalize()} {action}.'
    if i % 3 == 2:
      other = rng.choice([a for a in ACTIONS if a[0] != action])[1]
      rows.append(
        (
          premise,
          f'{GENERIC[subject].capitalize()} {other}.',
          rng.choice(('neutral', 'contradiction')),
        )
      )
    else:
      rows.append((premise, f'{GENERIC[subject].capitalize()} {paraphrase}.', 'entailment'))
  return rows


def sts_rows(seed: int, n: int = STS_ROWS) -> list[tuple[str, str, float]]:
  """(sentence1, sentence2, score 0..5): same action 4-5, same subject only 1-2, else 0-1."""
  rng = random.Random(seed)
  rows = []
  for _ in range(n):
    s1, s2 = rng.choice(SUBJECTS), rng.choice(SUBJECTS)
    (a1, p1), (a2, p2) = rng.choice(ACTIONS), rng.choice(ACTIONS)
    if rng.random() < 0.4:
      a2, p2 = a1, p1
    score = (4.0 if a1 == a2 else 0.0) + (1.0 if s1 == s2 else 0.0) + round(rng.random() * 0.8, 2)
    second = p2 if rng.random() < 0.5 else a2
    rows.append((f'{s1.capitalize()} {a1}.', f'{s2.capitalize()} {second}.', min(score, 5.0)))
  return rows


def write_nli_csv(path: str, rows) -> None:
  with open(path, 'w', encoding='utf-8', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(('premise', 'hypothesis', 'label'))
    writer.writerows(rows)


def write_stsb_tsv(path: str, rows) -> None:
  with open(path, 'w', encoding='utf-8') as f:
    f.write('\t'.join(GLUE_STSB_HEADER) + '\n')
    for i, (a, b, score) in enumerate(rows):
      f.write(f'{i}\tmain-captions\tMSRvid\t2012test\t{i:04d}\tnone\tnone\t{a}\t{b}\t{score:.3f}\n')


def write_tiny_data(root: str) -> str:
  """Writes ``nli/*.csv`` and ``stsb/{train,dev}.tsv`` under ``root`` (the PETE_DATA_DIR layout)."""
  os.makedirs(os.path.join(root, 'nli'), exist_ok=True)
  os.makedirs(os.path.join(root, 'stsb'), exist_ok=True)
  for seed, name in enumerate(NLI_FILES):
    write_nli_csv(os.path.join(root, 'nli', name), nli_rows(seed))
  write_stsb_tsv(os.path.join(root, 'stsb', 'train.tsv'), sts_rows(STS_TRAIN_SEED))
  write_stsb_tsv(os.path.join(root, 'stsb', 'dev.tsv'), sts_rows(STS_DEV_SEED))
  return root


# ------------------------------------------------------------------ TFDS raw downloads
# The columns of the SNLI 1.0 and MultiNLI 1.0 .txt files: seven in common, then their own.
_NLI_COLUMNS = ('gold_label', 'sentence1_binary_parse', 'sentence2_binary_parse',
                'sentence1_parse', 'sentence2_parse', 'sentence1', 'sentence2')  # fmt: skip
SNLI_HEADER = _NLI_COLUMNS + ('captionID', 'pairID', 'label1', 'label2', 'label3', 'label4',
                              'label5')  # fmt: skip
MNLI_HEADER = _NLI_COLUMNS + ('promptID', 'pairID', 'genre', 'label1')


def write_nli_txt(path: str, header, rows) -> None:
  blank = len(header) - 7
  with open(path, 'w', encoding='utf-8') as f:
    f.write('\t'.join(header) + '\n')
    for i, (premise, hypothesis, label) in enumerate(rows):
      extra = [f'{i}', f'{i}n'] + [label] + [''] * (blank - 3)
      f.write(
        '\t'.join([label, '( x )', '( y )', '(ROOT x)', '(ROOT y)', premise, hypothesis, *extra])
        + '\n'
      )


def write_tfds_downloads(root: str) -> dict[str, str]:
  """What the TFDS snli, multi_nli and glue/stsb builders download, extracted, in their formats.

  Returns:
    {download URL: extracted directory}, for a stand-in of
    ``DownloadManager.download_and_extract``.
  """
  snli, mnli, stsb = (os.path.join(root, n) for n in ('snli', 'multi_nli', 'stsb'))
  os.makedirs(os.path.join(snli, 'snli_1.0'))
  os.makedirs(os.path.join(mnli, 'multinli_1.0'))
  os.makedirs(os.path.join(stsb, 'STS-B'))
  for seed, split in enumerate(('train', 'dev', 'test')):
    rows = nli_rows(10 + seed, 120)
    rows[5] = (rows[5][0], rows[5][1], '-')  # SNLI's "no gold label"
    write_nli_txt(os.path.join(snli, 'snli_1.0', f'snli_1.0_{split}.txt'), SNLI_HEADER, rows)
  for seed, split in enumerate(('train', 'dev_matched', 'dev_mismatched')):
    write_nli_txt(
      os.path.join(mnli, 'multinli_1.0', f'multinli_1.0_{split}.txt'),
      MNLI_HEADER,
      nli_rows(20 + seed, 90),
    )
  write_stsb_tsv(os.path.join(stsb, 'STS-B', 'train.tsv'), sts_rows(30))
  write_stsb_tsv(os.path.join(stsb, 'STS-B', 'dev.tsv'), sts_rows(31, 64))
  with open(os.path.join(stsb, 'STS-B', 'test.tsv'), 'w', encoding='utf-8') as f:
    f.write('\t'.join(GLUE_STSB_HEADER[:-1]) + '\n')
    for i, (a, b, _) in enumerate(sts_rows(32, 20)):
      f.write(f'{i}\tmain-captions\tMSRvid\t2012test\t{i:04d}\tnone\tnone\t{a}\t{b}\n')
  return {
    'https://nlp.stanford.edu/projects/snli/snli_1.0.zip': snli,
    'https://cims.nyu.edu/~sbowman/multinli/multinli_1.0.zip': mnli,
    'https://dl.fbaipublicfiles.com/glue/data/STS-B.zip': stsb,
  }
