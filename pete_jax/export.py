r"""Self-contained model folders: export a trained workdir, load it anywhere.

    python -m pete_jax.export --workdir=runs/snli_pete --out=models/pete_1x256
    embedder = SentenceEmbedder.from_pretrained('models/pete_1x256')   # pete_jax.inference

A training workdir needs Orbax, its checkpoint layout and the paths it was
trained with. An exported folder needs none of them:

  model.safetensors   encoder parameters (safetensors; names are Flax paths joined by '/')
  pete_model.json     format version, the resolved config (tokenizer paths made relative),
                      where it came from, its scores, and the SHA-256 of every weight and
                      tokenizer file
  vocab.txt | spm.model, and id_order.json when the ids were re-ordered
  README.md           a model card: what the model is, how to load it, training config, scores

Loading checks every weight and tokenizer file against its SHA-256, so a truncated or altered
copy stops with a message naming the file instead of encoding with wrong weights.
The folder is written under a temporary name and renamed when complete.
"""

import datetime
import json
import os
import shutil
from typing import Sequence

from absl import app, flags, logging
import flax.traverse_util
import jax
import ml_collections
import numpy as np
import safetensors.numpy

from pete_jax import assets, configuration, files, logs, trained_model
from pete_jax.data import pipeline, tokenizers
from pete_jax.trained_model import TrainedModel, assemble
from pete_jax.errors import UserError, exit_with

FORMAT = 'pete_jax.sentence_encoder'
FORMAT_VERSION = 1
MODEL_JSON = 'pete_model.json'
WEIGHTS = 'model.safetensors'
CARD = 'README.md'
VOCAB = 'vocab.txt'


class ModelFolderError(UserError):
  """An export that cannot be written, or a model folder that is not complete and intact."""


def flatten_params(params: dict) -> dict[str, np.ndarray]:
  """``{'embed/mlp/kernel': array, ...}``: the safetensors form of a Flax parameter tree."""
  flat = flax.traverse_util.flatten_dict(jax.device_get(params), sep='/')
  return {k: np.ascontiguousarray(np.asarray(v)) for k, v in flat.items()}


def _tokenizer_files(config: ml_collections.ConfigDict, workdir: str) -> dict[str, str]:
  """{name in the folder: source path} of the files that fix the token ids.

  The given vocabulary (vocab.txt, or a given spm.model) plus what training wrote
  into the workdir (``pipeline.tokenizer_files``: a trained spm.model, id_order.json).
  """
  tok = config.tokenizer
  given = {}
  if tok.kind == 'wordpiece':
    given[VOCAB] = assets.vocab_file(tok.vocab_path)
  elif tok.spm_model_path:
    given[tokenizers.SPM_FILENAME] = tok.spm_model_path
  return given | {os.path.basename(p): p for p in pipeline.tokenizer_files(config, workdir)}


def _folder_config(config: ml_collections.ConfigDict, vocab_size: int) -> ml_collections.ConfigDict:
  """The config with the vocabulary size fixed and tokenizer paths relative to the folder."""
  config = ml_collections.ConfigDict(config.to_dict())
  config.model.vocab_size = vocab_size
  if config.tokenizer.kind == 'wordpiece':
    config.tokenizer.vocab_path = VOCAB
  else:
    config.tokenizer.spm_model_path = tokenizers.SPM_FILENAME
  return config


def _scores(stage_dir: str, step: int) -> dict:
  """The evaluation the run recorded at ``step`` (eval_results.json), if any."""
  path = os.path.join(stage_dir, 'eval_results.json')
  try:
    records = files.read_json(path, [])
  except ValueError as e:  # the scores only describe the model: export it without them
    logging.warning('%s is damaged (%s); the model card gives no scores.', path, e)
    return {}
  return next((r for r in records if r.get('step') == step), {})


def _card(record: dict) -> str:
  """The model card (README.md) of an exported folder."""
  config, source, scores = record['config'], record['source'], record['scores']
  m = config['model']
  kind = (
    'PETE: a fixed %s basis of the token id plus a learned %s MLP' % (m['basis'], m['embed_mlp'])
    if m['embedding'] == 'fourier'
    else 'a learned V x d embedding table'
    if m['embedding'] == 'learned'
    else f'a smaller learned table ({m["embedding"]}, pete_jax/table_embeddings.py)'
  )
  lines = [
    '# PETE sentence encoder (pete_jax)',
    '',
    f'A {m["num_layers"]}-layer, d={m["d_model"]}, {m["num_heads"]}-head sentence encoder whose '
    f'token embedding is {kind}; vocabulary {m["vocab_size"]:,} ({config["tokenizer"]["kind"]}); '
    f'{record["num_params"]:,} parameters; {m["pooling"]} pooling.',
    '',
    f'Exported by pete_jax from `{source["workdir"]}` ({source["stage"]} stage, step '
    f'{source["step"]}) on {source["exported"]}.'
    + (' The weights are the official PETE weights, converted.' if config.get('official') else ''),
    '',
    '## Use',
    '',
    '```python',
    'from pete_jax.inference import SentenceEmbedder',
    '',
    "embedder = SentenceEmbedder.from_pretrained('path/to/this/folder')",
    "vectors = embedder.encode(['A man is playing a guitar.', 'Someone plays music.'])",
    '```',
    '',
    '## Scores',
    '',
  ]
  if scores:
    lines += [
      f'Recorded by the training run at step {source["step"]} on '
      f'`{config["data"]["eval_source"]}`: Spearman x100 {scores["spearman"]:.2f}, '
      f'Pearson x100 {scores["pearson"]:.2f} ({scores["num_pairs"]} pairs).'
    ]
  else:
    lines += [
      'The training run recorded no evaluation at this step '
      '(`python -m pete_jax.evaluate --workdir=...` scores a workdir).'
    ]
  lines += [
    '',
    '## Training config',
    '',
    '```json',
    json.dumps(config, indent=2, sort_keys=True),
    '```',
    '',
    '## Files',
    '',
  ]
  lines += [f'- `{name}` sha256 `{digest}`' for name, digest in sorted(record['files'].items())]
  return '\n'.join(lines) + '\n'


def _check_out(workdir: str, out: str, overwrite: bool) -> None:
  """``out`` must be new, empty, or (with ``overwrite``) a model folder: never anything else,
  since replacing it deletes it."""
  if os.path.exists(out) and not os.path.isdir(out):
    raise ModelFolderError(f'--out {out} is a file; give the path of a folder to write.')
  source, target = os.path.realpath(workdir), os.path.realpath(out)
  if source == target or source.startswith(target + os.sep):
    raise ModelFolderError(f'--out {out} holds the workdir {workdir}; export to another folder.')
  if not os.path.isdir(out) or not os.listdir(out):
    return
  if not overwrite:
    raise ModelFolderError(f'{out} exists and is not empty; pass --overwrite to replace it.')
  if not os.path.exists(os.path.join(out, MODEL_JSON)):
    raise ModelFolderError(
      f'{out} is not a pete_jax model folder (it has no {MODEL_JSON}): --overwrite replaces '
      'only a model folder written by export. Give another --out.'
    )


def export(
  workdir: str,
  out: str,
  step: int | None = None,
  best: bool = False,
  stage: str | None = None,
  overwrite: bool = False,
) -> str:
  """Writes the model folder ``out`` from a checkpoint of ``workdir``; returns ``out``.

  Args:
    workdir: a training or converted workdir.
    out: the folder to write; it must not exist (or be empty) unless ``overwrite``.
    step: a specific checkpoint; default the latest (the best with ``best``).
    best: take the checkpoint with the best selection-set Spearman (see ``checkpoint.load_step``).
    stage: 'pretrain' or 'finetune'; default the run's last (``checkpoint.last_stage``).
    overwrite: replace an existing model folder ``out``.
  """
  from pete_jax import checkpoint  # pylint: disable=import-outside-toplevel  (Orbax: export only)
  from pete_jax.trained_model import load_workdir  # pylint: disable=import-outside-toplevel

  _check_out(workdir, out, overwrite)
  stage = stage or checkpoint.last_stage(workdir)
  model = load_workdir(workdir, step, best, stage)
  tmp = f'{os.path.abspath(out).rstrip(os.sep)}.tmp-{os.getpid()}'
  shutil.rmtree(tmp, ignore_errors=True)
  try:
    _write_folder(tmp, model, workdir, stage)
  except BaseException as e:
    shutil.rmtree(tmp, ignore_errors=True)  # a failed export leaves no half-written folder
    if isinstance(e, OSError):
      raise ModelFolderError(f'cannot write the model folder for --out {out}: {e}') from None
    raise
  if os.path.exists(out):
    old = f'{tmp}.old'
    os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old)
  else:
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    os.replace(tmp, out)
  return out


def _write_folder(tmp: str, model: TrainedModel, workdir: str, stage: str) -> None:
  """Writes the folder's files into ``tmp`` (which export then renames to ``--out``)."""
  from pete_jax import checkpoint  # pylint: disable=import-outside-toplevel  (Orbax: export only)

  weights = flatten_params(model.params)
  os.makedirs(tmp)
  safetensors.numpy.save_file(weights, os.path.join(tmp, WEIGHTS), metadata={'format': FORMAT})
  os.chmod(os.path.join(tmp, WEIGHTS), 0o644)  # safetensors writes 0600; the folder is for sharing
  for name, source in _tokenizer_files(model.config, workdir).items():
    shutil.copyfile(source, os.path.join(tmp, name))
  folder_config = _folder_config(model.config, model.encoder.config.vocab_size)
  record = {
    'format': FORMAT,
    'format_version': FORMAT_VERSION,
    'config': json.loads(folder_config.to_json_best_effort()),
    'num_params': int(sum(v.size for v in weights.values())),
    'source': {
      'workdir': os.path.abspath(workdir),
      'stage': stage,
      'step': int(model.step),
      'exported': datetime.datetime.now().isoformat(timespec='seconds'),
    },
    'scores': _scores(checkpoint.stage_dir(workdir, stage), model.step),
    'files': {name: files.sha256(os.path.join(tmp, name)) for name in sorted(os.listdir(tmp))},
  }
  files.write_json(os.path.join(tmp, MODEL_JSON), record, sort_keys=True)
  files.write_text(os.path.join(tmp, CARD), _card(record))


def _read_record(folder: str) -> dict:
  path = os.path.join(folder, MODEL_JSON)
  if not os.path.isdir(folder):
    raise ModelFolderError(f'model folder {folder!r} not found')
  if not os.path.exists(path):
    raise ModelFolderError(
      f'{folder} is not a pete_jax model folder: it has no {MODEL_JSON} '
      '(export one with python -m pete_jax.export --workdir=... --out=...).'
    )
  try:
    with open(path, encoding='utf-8') as f:
      record = json.load(f)
  except (OSError, ValueError) as e:
    raise ModelFolderError(f'{path} is damaged ({e}); export the model again.') from None
  if record.get('format') != FORMAT or record.get('format_version', 0) > FORMAT_VERSION:
    raise ModelFolderError(
      f'{path} holds format {record.get("format")!r} version '
      f'{record.get("format_version")}; this pete_jax reads {FORMAT} up to '
      f'version {FORMAT_VERSION}.'
    )
  for name, digest in sorted(record['files'].items()):
    file = os.path.join(folder, name)
    if not os.path.isfile(file):
      raise ModelFolderError(f'model folder {folder} is incomplete: {name} is missing.')
    if files.sha256(file) != digest:
      raise ModelFolderError(
        f'model folder {folder} is damaged: {name} does not match the '
        f'SHA-256 in {MODEL_JSON} (a truncated or altered copy); copy or '
        'export it again.'
      )
  return record


def load_folder(folder: str) -> TrainedModel:
  """The model of an exported folder, its weight and tokenizer files checked against their
  SHA-256."""
  record = _read_record(folder)
  config = configuration.with_defaults(configuration.from_json(record['config']))
  if config.tokenizer.kind == 'wordpiece':
    config.tokenizer.vocab_path = os.path.join(folder, VOCAB)
  else:
    config.tokenizer.spm_model_path = os.path.join(folder, tokenizers.SPM_FILENAME)
  params = flax.traverse_util.unflatten_dict(
    safetensors.numpy.load_file(os.path.join(folder, WEIGHTS)), sep='/'
  )
  model = assemble(
    config, folder, jax.tree.map(jax.numpy.asarray, params), record['source']['step']
  )
  ids = np.zeros((1, 4), np.int32)
  expected = jax.eval_shape(model.encoder.init, jax.random.key(0), ids, ids)['params']
  shapes = lambda tree: jax.tree.map(lambda x: tuple(x.shape), tree)
  if shapes(params) != shapes(expected):
    raise ModelFolderError(
      f'{folder}/{WEIGHTS} does not hold the parameters of the model its '
      f'{MODEL_JSON} describes; export it again.'
    )
  return model


def main(argv: Sequence[str]) -> None:
  logs.start_command(argv)
  f = flags.FLAGS
  try:
    out = export(f.workdir, f.out, f.step, f.best, f.stage or None, f.overwrite)
  except UserError as e:
    raise exit_with(e) from None
  with open(os.path.join(out, MODEL_JSON), encoding='utf-8') as fh:
    record = json.load(fh)
  source = record['source']
  print(
    f'Exported {source["workdir"]} ({source["stage"]}, step {source["step"]}, '
    f'{record["num_params"]:,} parameters) -> {out}'
  )


if __name__ == '__main__':
  trained_model.define_checkpoint_flags('Export')
  flags.adopt_module_key_flags(trained_model)  # listed by --help
  flags.DEFINE_string('out', None, 'The model folder to write.', required=True)
  flags.DEFINE_bool('overwrite', False, 'Replace an existing --out folder.')
  app.run(main)
