"""The GLUE tasks (and local stand-ins): inputs, labels, metrics and splits of each.

Facts from GLUE (Wang et al., 2019) and TFDS's ``glue`` builder: which text
fields each task has, its label names in TFDS's order (local files' text labels
map onto them), and the metric GLUE reports. STS-B is the one regression task.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Task:
  """One fine-tuning task.

  Attributes:
    name: 'rte', 'mrpc', ...
    text_keys: TFDS feature names of the first and (pair tasks) second text.
    label_names: class names in label-id order; () for regression (STS-B).
    metrics: GLUE's metrics of the task, e.g. ('f1', 'accuracy').
    validation_splits: TFDS validation splits; MNLI has matched and mismatched.
    train_split: TFDS training split ('' for tasks that have none, e.g. ax).
    scored_with: the task whose fine-tuned model scores this one (ax: mnli).
  """

  name: str
  text_keys: tuple
  label_names: tuple = ()
  metrics: tuple = ('accuracy',)
  validation_splits: tuple = ('validation',)
  train_split: str = 'train'
  scored_with: str = ''

  @property
  def is_pair(self) -> bool:
    return len(self.text_keys) == 2

  @property
  def is_regression(self) -> bool:
    return not self.label_names

  @property
  def num_labels(self) -> int:
    return len(self.label_names)


_BINARY = ('0', '1')
_ENTAILMENT = ('entailment', 'not_entailment')
_NLI = ('entailment', 'neutral', 'contradiction')

GLUE_TASKS = {
  t.name: t
  for t in (
    Task('cola', ('sentence',), _BINARY, ('mcc',)),
    Task('sst2', ('sentence',), _BINARY),
    Task('mrpc', ('sentence1', 'sentence2'), _BINARY, ('f1', 'accuracy')),
    Task('qqp', ('question1', 'question2'), _BINARY, ('f1', 'accuracy')),
    Task('stsb', ('sentence1', 'sentence2'), (), ('pearson', 'spearman')),
    Task(
      'mnli',
      ('premise', 'hypothesis'),
      _NLI,
      validation_splits=('validation_matched', 'validation_mismatched'),
    ),
    Task('qnli', ('question', 'sentence'), _ENTAILMENT),
    Task('rte', ('sentence1', 'sentence2'), _ENTAILMENT),
    Task('wnli', ('sentence1', 'sentence2'), _BINARY),
    # The diagnostic set: no training split; GLUE scores it with the MNLI model. TFDS
    # holds only its test split, whose labels are not public.
    Task(
      'ax',
      ('premise', 'hypothesis'),
      _NLI,
      validation_splits=('test',),
      train_split='',
      scored_with='mnli',
    ),  # fmt: skip
  )
}
# Local stand-ins for GLUE-like tasks (../shared/data/standins): premise/hypothesis CSVs.
STANDIN_TASKS = {
  t.name: t
  for t in (
    Task('add_one_rte', ('premise', 'hypothesis'), _ENTAILMENT),
    Task('joci', ('premise', 'hypothesis'), _NLI),
    Task('mpe', ('premise', 'hypothesis'), _NLI),
  )
}
TASKS = {**GLUE_TASKS, **STANDIN_TASKS}


def get_task(name: str) -> Task:
  """The task called ``name``; a clear error for an unknown one."""
  if name not in TASKS:
    raise ValueError(f'unknown task {name!r}; known: {sorted(TASKS)}')
  return TASKS[name]


def metric_names(task: Task) -> list[str]:
  """The reported metric keys: MNLI's carry the split (accuracy_matched, ...)."""
  if len(task.validation_splits) == 1:
    return list(task.metrics)
  return [f'{m}_{s.split("_")[-1]}' for s in task.validation_splits for m in task.metrics]
