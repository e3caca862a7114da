"""Orbax checkpoints of a run's workdir: training state, data position, config.

A workdir holds ``config.json`` (the resolved config), ``checkpoints/<step>/``
(Orbax: items ``state`` and ``data``) and the tokenizer's artifacts. Saves are
atomic (Orbax writes to a temporary directory and renames it when complete), so a
run killed while writing restarts from the previous complete checkpoint.
"""

import json
import os
from typing import Any

import jax
import ml_collections
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers

CONFIG_FILE = 'config.json'


def write_config(workdir: str, config: ml_collections.ConfigDict) -> None:
  """Writes the resolved config as JSON into the workdir (atomically)."""
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, CONFIG_FILE)
  with open(path + '.tmp', 'w', encoding='utf-8') as f:
    f.write(config.to_json_best_effort(indent=2, sort_keys=True))
  os.replace(path + '.tmp', path)


def read_config(workdir: str) -> ml_collections.ConfigDict:
  """The config a workdir was trained (or converted) with."""
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path):
    raise FileNotFoundError(f'{path} not found: {workdir!r} is not a pete_jax workdir '
                            '(train one with pete_jax.main or convert official weights).')
  with open(path, encoding='utf-8') as f:
    return _tuples(ml_collections.ConfigDict(json.load(f)))


def _tuples(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """JSON turns tuples into lists; the configs use tuples (overridable on the command line)."""
  for key, value in config.items():
    if isinstance(value, ml_collections.ConfigDict):
      _tuples(value)
    elif isinstance(value, list):
      config[key] = tuple(value)
  return config


def manager(directory: str, keep: int = 3, best_metric: str | None = 'spearman',
            save_every: int = 1, use_async: bool = True) -> ocp.CheckpointManager:
  """A CheckpointManager keeping the last ``keep`` checkpoints plus the best one.

  Args:
    directory: where the step directories go (``<workdir>/checkpoints``).
    keep: number of most recent checkpoints to keep.
    best_metric: metric (higher is better) whose best checkpoint is also kept.
    save_every: save interval in steps (``should_save``); explicit saves at
      other steps pass ``force=True``.
    use_async: write in a background thread while training continues.
  """
  policies = [checkpoint_managers.LatestN(n=keep)]
  if best_metric:
    policies.append(checkpoint_managers.BestN(
        get_metric_fn=lambda m: m[best_metric], reverse=False, n=1,
        keep_checkpoints_without_metrics=False))
  options = ocp.CheckpointManagerOptions(
      save_interval_steps=save_every, enable_async_checkpointing=use_async,
      best_fn=(lambda m: m[best_metric]) if best_metric else None, best_mode='max',
      preservation_policy=checkpoint_managers.AnyPreservationPolicy(policies),
      cleanup_tmp_directories=True)
  return ocp.CheckpointManager(os.path.abspath(directory), options=options,
                               item_names=('state', 'data'))


def save(mgr: ocp.CheckpointManager, step: int, state: Any, data_position: dict,
         metrics: dict | None = None, force: bool = False) -> bool:
  """Saves the state and the input pipeline's position at ``step``."""
  args = ocp.args.Composite(state=ocp.args.StandardSave(state),
                            data=ocp.args.JsonSave(data_position))
  return mgr.save(step, args=args, metrics=metrics, force=force)


def restore(mgr: ocp.CheckpointManager, abstract_state: Any, step: int | None = None
            ) -> tuple[Any, dict] | None:
  """Restores (state, data_position) at ``step`` (default: the latest), or None."""
  step = mgr.latest_step() if step is None else step
  if step is None:
    return None
  restored = mgr.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(abstract_state), data=ocp.args.JsonRestore()))
  return restored['state'], restored['data']


def load_params(workdir: str, step: int | None = None, best: bool = False
                ) -> tuple[ml_collections.ConfigDict, dict]:
  """(config, parameters) of a workdir, for evaluation and inference.

  Args:
    workdir: a training or converted workdir.
    step: a specific step; default the latest (or the best with ``best``).
    best: take the checkpoint with the best STS Spearman.

  Returns:
    The config and the parameter tree ``{'encoder': ..., 'loss': ...}``.
  """
  config = read_config(workdir)
  with ocp.CheckpointManager(os.path.abspath(os.path.join(workdir, 'checkpoints')),
                             options=ocp.CheckpointManagerOptions(
                                 read_only=True, best_fn=lambda m: m['spearman'], best_mode='max'),
                             item_names=('state', 'data')) as mgr:
    if step is None:
      step = mgr.best_step() if best else mgr.latest_step()
      step = mgr.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f'No checkpoint in {workdir}/checkpoints.')
    restored = mgr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
  params = restored['state']['params']
  return config, jax.tree.map(jax.numpy.asarray, params)
