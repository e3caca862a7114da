"""Orbax checkpoints of a run's workdir: training state, data position, config.

A workdir holds ``config.json`` (the resolved config), ``checkpoints/<step>/``
(Orbax: items ``state`` and ``data``) and the tokenizer's artifacts. Saves are
atomic (Orbax writes to a temporary directory and renames it when complete), so a
run killed while writing restarts from the previous complete checkpoint.

Orbax does not notice every damaged file: a flipped byte in an array chunk (a bad
copy between machines) restores without error, with wrong values. So each
finished checkpoint gets a manifest of its files' sizes and SHA-256 digests
(``MANIFEST``), checked before it is restored. Training resumes from the newest
checkpoint that passes, moving damaged ones to ``<workdir>/damaged_checkpoints``;
evaluation names the damaged one and the intact steps to pick instead.
"""

import json
import os
import shutil
from typing import Any

from absl import logging
import jax
from jax.experimental import multihost_utils
import ml_collections
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers

from pete_jax import config_fields, configuration, files
from pete_jax.errors import UserError

CONFIG_FILE = 'config.json'
MANIFEST = 'pete_jax_sha256.json'
DAMAGED_DIR = 'damaged_checkpoints'


class CheckpointError(UserError):
  """A checkpoint that is missing, incomplete or damaged."""


def write_config(workdir: str, config: ml_collections.ConfigDict) -> None:
  """Writes the resolved config as JSON into the workdir (atomically)."""
  files.write_text(
    os.path.join(workdir, CONFIG_FILE), config.to_json_best_effort(indent=2, sort_keys=True)
  )


def read_config(workdir: str) -> ml_collections.ConfigDict:
  """The config a workdir was trained (or converted) with."""
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path):
    raise CheckpointError(
      f'{path} not found: {workdir!r} is not a pete_jax workdir '
      '(train one with pete_jax.main or convert official weights).'
    )
  try:
    with open(path, encoding='utf-8') as f:
      record = json.load(f)
  except (OSError, ValueError) as e:
    raise CheckpointError(
      f'{path} is damaged ({e}): the workdir cannot say what model it holds. Restore the file '
      '(it is the config the run was started with), or train into a new workdir.'
    ) from None
  return configuration.from_json(record)


# What a workdir's checkpoints depend on: resuming under other values would continue
# another run (another schedule, model or tokenizer) and overwrite config.json with it.
# The data fields are those that change the batches; the sources are paths (which differ
# between machines) and are checked by their pair count when the batcher is restored.
RUN_DEFINING_FIELDS = (
  'seed',
  'model.',
  'tokenizer.',
  'train.',
  'data.max_len',
  'data.buckets',
  'data.pad_to_max_len',
  'data.sort_window_batches',
  'data.label_filter',
)
# What a resumed run may change: when it stops, logs, evaluates and saves.
RESUME_MAY_CHANGE = (
  'train.stop_at_step',
  'train.log_every_steps',
  'train.eval_every_steps',
  'train.checkpoint_every_steps',
  'train.keep_checkpoints',
)


def check_resumes_same_run(workdir: str, config: ml_collections.ConfigDict) -> None:
  """Refuses to resume a workdir's pre-training under a config that defines another run.

  Only fields both configs have are compared, so a field added to the code since the
  workdir was written does not block it. Fine-tuning settings are not compared: a
  finished pre-training may be fine-tuned later in the same workdir.
  """
  if not has_saved_step(os.path.join(workdir, 'checkpoints')):
    return  # nothing to continue (Orbax creates the folder before its first save)
  if not os.path.exists(os.path.join(workdir, CONFIG_FILE)):
    return
  saved = config_fields.flatten(read_config(workdir))
  # Through JSON as config.json is written, so that both sides read the same way.
  new = config_fields.flatten(configuration.from_json(json.loads(config.to_json_best_effort())))
  changed = [
    f'{key}: {saved[key]!r} there, {new[key]!r} now'
    for key in sorted(new.keys() & saved.keys())
    if key.startswith(RUN_DEFINING_FIELDS)
    and key not in RESUME_MAY_CHANGE
    and saved[key] != new[key]
  ]
  if changed:
    raise CheckpointError(
      f'cannot resume {workdir}: its checkpoints were trained with another config ('
      + '; '.join(changed)
      + '). Use a new workdir, or the config it was started with.'
    )


# The metric a checkpoint is saved with, by which the best one is kept (higher is better): the
# selection score of ``train.PeriodicActions.selection_score``, under the key that every
# checkpoint written so far holds it by.
SCORE = 'spearman'


def _score(metrics: dict) -> float:
  return metrics[SCORE]


def manager(directory: str, keep: int = 3, use_async: bool = True) -> ocp.CheckpointManager:
  """A CheckpointManager keeping the last ``keep`` checkpoints plus the best-scored one.

  Args:
    directory: where the step directories go (``<workdir>/checkpoints``).
    keep: number of most recent checkpoints to keep.
    use_async: write in a background thread while training continues.
  """
  policies = [
    checkpoint_managers.LatestN(n=keep),
    checkpoint_managers.BestN(
      get_metric_fn=_score, reverse=False, n=1, keep_checkpoints_without_metrics=False
    ),
  ]
  options = ocp.CheckpointManagerOptions(
    enable_async_checkpointing=use_async,
    best_fn=_score,
    best_mode='max',
    preservation_policy=checkpoint_managers.AnyPreservationPolicy(policies),
    cleanup_tmp_directories=True,
  )
  return ocp.CheckpointManager(
    os.path.abspath(directory), options=options, item_names=('state', 'data')
  )


def _step_dir(mgr: ocp.CheckpointManager, step: int) -> str:
  return os.path.join(os.fspath(mgr.directory), str(step))


def _digests(step_dir: str) -> dict[str, list]:
  """``{relative path: [size, sha256]}`` of every file of a checkpoint but the manifest."""
  out = {}
  for root, _, names in os.walk(step_dir):
    for name in names:
      path = os.path.join(root, name)
      rel = os.path.relpath(path, step_dir)
      if not rel.startswith(MANIFEST):  # the manifest and its temporary file
        out[rel] = [os.path.getsize(path), files.sha256(path)]
  return out


def write_manifests(mgr: ocp.CheckpointManager) -> None:
  """Writes the manifest of every finished checkpoint that has none (process 0 only)."""
  if jax.process_index() != 0:
    return
  mgr.wait_until_finished()
  for step in mgr.all_steps():
    step_dir = _step_dir(mgr, step)
    path = os.path.join(step_dir, MANIFEST)
    if os.path.isdir(step_dir) and not os.path.exists(path):
      files.write_json(path, _digests(step_dir), indent=1, sort_keys=True)


def verify(step_dir: str) -> bool:
  """True if the checkpoint matches its manifest, False if it has none; raises CheckpointError."""
  path = os.path.join(step_dir, MANIFEST)
  if not os.path.exists(path):
    return False
  try:
    with open(path, encoding='utf-8') as f:
      expected = json.load(f)
  except (OSError, ValueError) as e:
    raise CheckpointError(f'its manifest {MANIFEST} is unreadable ({e})') from None
  found = _digests(step_dir)
  for rel, (size, digest) in sorted(expected.items()):
    if rel not in found:
      raise CheckpointError(f'file {rel} is missing')
    if found[rel][0] != size:
      raise CheckpointError(f'file {rel} has {found[rel][0]} bytes, {size} were written')
    if found[rel][1] != digest:
      raise CheckpointError(f'file {rel} does not match the SHA-256 written with it')
  return True


def save(
  mgr: ocp.CheckpointManager,
  step: int,
  state: Any,
  data_position: dict,
  score: float | None = None,
) -> bool:
  """Saves the state, the input pipeline's position and the selection ``score`` (if the
  step was scored) at ``step``; always, as the caller's schedule decides when to save.

  The previous save is finished first (Orbax would wait for it anyway) and given
  its manifest; call ``write_manifests`` after the last save.
  """
  write_manifests(mgr)
  args = ocp.args.Composite(
    state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data_position)
  )
  metrics = None if score is None else {SCORE: score}
  return mgr.save(step, args=args, metrics=metrics, force=True)


def finish(mgr: ocp.CheckpointManager) -> None:
  """Waits for the last save, writes its manifest and closes the manager."""
  write_manifests(mgr)
  mgr.close()


def _restore_step(mgr: ocp.CheckpointManager, step: int, args: ocp.args.Composite) -> dict:
  """Restores one step after checking its manifest; any failure is a CheckpointError.

  Without a manifest (a run killed between a save and its manifest) an error of
  Orbax's is taken as damage too: the files cannot be vouched for.
  """
  step_dir = _step_dir(mgr, step)
  try:
    verified = verify(step_dir)
  except CheckpointError as e:
    raise CheckpointError(f'checkpoint {step_dir} is damaged: {e}') from None
  try:
    return mgr.restore(step, args=args)
  except Exception as e:  # pylint: disable=broad-except  (Orbax raises many types)
    if verified:
      raise
    raise CheckpointError(
      f'checkpoint {step_dir} is damaged or incomplete: Orbax said '
      f'{type(e).__name__}: {str(e)[:300]}'
    ) from None


def restore(mgr: ocp.CheckpointManager, abstract_state: Any) -> tuple[Any, dict] | None:
  """(state, data_position) of the newest intact checkpoint, or None if there is none.

  Damaged checkpoints are moved out of the way (to ``<workdir>/damaged_checkpoints``,
  nothing is deleted) with a warning that says why, so that training resumes from the
  newest intact one and can later save the same steps again.
  """
  args = ocp.args.Composite(
    state=ocp.args.StandardRestore(abstract_state), data=ocp.args.JsonRestore()
  )
  for step in sorted(mgr.all_steps(), reverse=True):
    try:
      restored = _restore_step(mgr, step, args)
    except CheckpointError as e:
      target = os.path.join(os.path.dirname(os.fspath(mgr.directory)), DAMAGED_DIR, str(step))
      if jax.process_index() == 0:  # every process reaches the same verdict; one moves it
        if os.path.exists(target):
          shutil.rmtree(target)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.move(_step_dir(mgr, step), target)
      # Then every process forgets the moved step, so that each can save it again.
      multihost_utils.sync_global_devices(f'pete_jax: damaged step {step} moved')
      mgr.reload()
      logging.warning(
        'Skipping a damaged checkpoint: %s. Moved it to %s; resuming from the '
        'newest intact checkpoint instead.',
        e,
        target,
      )
      continue
    return restored['state'], restored['data']
  return None


STAGES = ('pretrain', 'finetune')


def has_saved_step(directory: str) -> bool:
  """Whether a checkpoints folder holds a finished save (a step folder named by its number)."""
  return os.path.isdir(directory) and any(n.isdigit() for n in os.listdir(directory))


def stage_dir(workdir: str, stage: str) -> str:
  """Where a training stage keeps its checkpoints and eval results (as train.py writes them)."""
  if stage not in STAGES:
    raise ValueError(f'stage must be one of {STAGES}, got {stage!r}')
  return workdir if stage == 'pretrain' else os.path.join(workdir, 'finetune')


def last_stage(workdir: str) -> str:
  """The run's last stage with a saved checkpoint: 'finetune' once fine-tuning saved one.

  The one default of every loader (evaluate, export, inference), so that a workdir's
  score and its exported model are the same model.
  """
  saved = has_saved_step(os.path.join(stage_dir(workdir, 'finetune'), 'checkpoints'))
  return 'finetune' if saved else 'pretrain'


def load_step(
  workdir: str, step: int | None = None, best: bool = False, stage: str | None = None
) -> tuple[ml_collections.ConfigDict, dict, int]:
  """(config, parameters, step) of one checkpoint of a workdir's ``stage``.

  Args:
    workdir: a training or converted workdir.
    step: a specific step; default the latest (or the best with ``best``).
    best: take the checkpoint with the best selection-set Spearman (pre-training with a
      ``data.select_source`` only; anything else raises CheckpointError).
    stage: 'pretrain' or 'finetune' (the STS-B fine-tuned model, ``<workdir>/finetune``);
      default :func:`last_stage`.

  Returns:
    The config, the parameter tree ``{'encoder': ..., 'loss': ...}`` and the step.
  """
  if best and step is not None:
    raise CheckpointError('--step and --best each pick a checkpoint: give one of them.')
  config = configuration.with_defaults(read_config(workdir))
  stage = stage or last_stage(workdir)
  if best and (stage == 'finetune' or not config.data.select_source):
    other = ', or the pre-trained model (--stage=pretrain)' if stage == 'finetune' else ''
    raise CheckpointError(
      f'--best picks a checkpoint by its selection-set score, and the {stage} stage of '
      f'{workdir} scored only the reported set (data.eval_source): choosing on it would '
      f'overstate the result. Take the latest checkpoint, or one --step=N{other}.'
    )
  directory = os.path.join(stage_dir(workdir, stage), 'checkpoints')
  # A manager that never saves nor deletes (no keep policy, create=False): Orbax's
  # read_only option would do the same but logs three warnings per load.
  with ocp.CheckpointManager(
    os.path.abspath(directory),
    options=ocp.CheckpointManagerOptions(create=False, best_fn=_score, best_mode='max'),
    item_names=('state', 'data'),
  ) as mgr:
    steps = sorted(mgr.all_steps())
    if step is None:
      step = mgr.best_step() if best else mgr.latest_step()
      step = mgr.latest_step() if step is None else step
    if step is None:
      raise CheckpointError(f'no checkpoint in {directory}: the run has not saved one yet.')
    if step not in steps:
      raise CheckpointError(f'{directory} has no step {step}; it has {steps}.')
    try:
      # Saved on another topology (a pod, two processes, 8 devices): read onto one local device.
      local = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
      args = ocp.args.Composite(state=ocp.args.StandardRestore(fallback_sharding=local))
      restored = _restore_step(mgr, step, args)
    except CheckpointError as e:
      others = [s for s in steps if s != step]
      raise CheckpointError(
        f'{e}. Pick another checkpoint with --step=N (steps here: {others or "none"}), or '
        'delete the damaged folder.'
      ) from None
  params = restored['state']['params']
  return config, jax.tree.map(jax.numpy.asarray, params), step
