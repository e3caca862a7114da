"""One loader of a trained model: config, tokenizer, encoder and parameters, from a workdir.

Evaluation, inference, export, the plots and the weights check all need the same
four things from a training (or converted) workdir; ``load_workdir`` is the one
place that builds them, so they cannot drift apart (an exported folder is read
into the same ``TrainedModel`` by ``pete_jax.export.load_folder``).
"""

import dataclasses

from absl import flags
import ml_collections

from pete_jax.data import pipeline, tokenizers
from pete_jax.encoder import SentenceEncoder, encoder_from_config


@dataclasses.dataclass(frozen=True)
class TrainedModel:
  """What it takes to encode text with a trained encoder.

  Attributes:
    config: the resolved config the model was trained (or converted) with.
    tokenizer: its tokenizer, with its id order.
    encoder: the SentenceEncoder (float32 compute).
    params: the encoder's parameter tree.
    step: the checkpoint step the parameters come from.
  """

  config: ml_collections.ConfigDict
  tokenizer: tokenizers.Tokenizer
  encoder: SentenceEncoder
  params: dict
  step: int


def assemble(
  config: ml_collections.ConfigDict, tokenizer_dir: str, params: dict, step: int
) -> TrainedModel:
  """The TrainedModel of ``config`` and encoder ``params``; tokenizer files are in ``tokenizer_dir``."""
  tokenizer = pipeline.build_tokenizer(config, tokenizer_dir)
  encoder = encoder_from_config(config.model, tokenizer.vocab_size, config.data.max_len)
  return TrainedModel(config, tokenizer, encoder, params, step)


def load_workdir(
  workdir: str, step: int | None = None, best: bool = False, stage: str | None = None
) -> TrainedModel:
  """The model of one checkpoint of a workdir (default: the latest of the run's last stage).

  Args:
    workdir: a training or converted workdir.
    step: a specific checkpoint step.
    best: the checkpoint with the best selection-set Spearman (see ``checkpoint.load_step``).
    stage: 'pretrain' or 'finetune' (``<workdir>/finetune``); default
      ``checkpoint.last_stage`` (finetune once fine-tuning saved a checkpoint).
  """
  from pete_jax import checkpoint  # pylint: disable=import-outside-toplevel  (Orbax: workdirs only)

  config, params, step = checkpoint.load_step(workdir, step, best, stage)
  return assemble(config, workdir, params['encoder'], step)


def define_checkpoint_flags(verb: str) -> None:
  """``--workdir``, ``--step``, ``--best`` and ``--stage``: the arguments of
  :func:`load_workdir` as a command's flags (evaluate, export); ``verb`` says what the
  command does with the model. Called by the commands only, so that importing a module
  never defines flags."""
  from pete_jax import checkpoint  # pylint: disable=import-outside-toplevel  (Orbax: workdirs only)

  flags.DEFINE_string('workdir', None, 'A training or converted workdir.', required=True)
  flags.DEFINE_integer(
    'step', None, f'{verb} the checkpoint of this step (default: the latest).', lower_bound=0
  )
  flags.DEFINE_bool(
    'best',
    False,
    f'{verb} the checkpoint best on the selection set (runs with data.select_source).',
  )
  flags.DEFINE_enum(
    'stage',
    '',
    ['', *checkpoint.STAGES],
    "Which model (default: the run's last stage, finetune once it saved a checkpoint).",
  )
