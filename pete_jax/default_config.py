"""Default configuration: the paper's Fourier model (Table 1, 1 layer, d=256).

Every experiment config (``configs/*.py``, through ``configs/default.py``) starts
from this one and overrides only what differs. Every field is documented here. Any field can be overridden on the command line, e.g.
``--config.train.batch_size=64``.

This default needs nothing outside the package: TFDS downloads and prepares the
datasets on first use, and the BERT vocabulary ships with pete_jax. Only the
configs that read local files (``configs/local_data.py`` and those built on it)
resolve their paths against the environment variable ``PETE_DATA_DIR`` (default
``../shared/data``, relative to the working directory), read when the config is
built, so the same config works wherever the data lives.
"""

import os

import ml_collections


def data_path(*parts: str) -> str:
  """Path of a file under the local data directory (``PETE_DATA_DIR``, read now)."""
  return os.path.join(os.environ.get('PETE_DATA_DIR', '../shared/data'), *parts)


def get_config() -> ml_collections.ConfigDict:
  """The paper's Fourier 1x256 model with the paper's full-scale schedule."""
  config = ml_collections.ConfigDict()
  config.seed = 0
  # Compatibility with the official pretrained weights: True switches on every
  # behaviour they need (pete_jax/published_weights.py lists them); each is also a field
  # of its own below. The paper's behaviour is the default.
  config.official = False

  # ---------------------------------------------------------------- model
  model = config.model = ml_collections.ConfigDict()
  # 'fourier' (PETE: fixed basis + MLP), 'learned' (V x d table baseline), or a smaller
  # table (pete_jax/table_embeddings.py): 'factorised' (V x e then e -> d), 'hashed'
  # (hash_buckets rows, hash_functions hashes), 'quotient_remainder' (p // m, p % m).
  model.embedding = 'fourier'
  model.embed_rank = 128  # e of 'factorised'
  model.hash_buckets = 4096  # B of 'hashed'
  model.hash_functions = 1  # k of 'hashed' (k > 1: hash embedding, learned V x k weights)
  model.qr_modulus = 0  # m of 'quotient_remainder'; 0 = ceil(sqrt(V))
  # Std of the learned tables' normal init: 0 = Flax's 1/sqrt(d_model); 1.0 = torch's
  # nn.Embedding, as in the official code (the tables are RMS-normalised, so only the
  # optimiser sees the difference: Adam moves a small table faster relative to its size).
  model.table_init_std = 0.0
  # Vocabulary size V of the model. 0 = take it from the tokenizer.
  model.vocab_size = 0
  model.d_model = 256
  model.num_layers = 1
  # The paper uses heads = layers in every config.
  model.num_heads = 1
  # Hidden size m of the GeGLU feed-forward: 0 = ffn_multiplier * d_model.
  model.ffn_hidden = 0
  # 4 for Table 1, 0.25 for the small Table 2 models.
  model.ffn_multiplier = 4.0
  # Fixed basis: fourier | chebyshev | legendre | hermite | laguerre
  # | hermite_stretched | laguerre_stretched (see pete_jax/basis.py), or a code of the
  # id itself: random | binary (pete_jax/id_codes.py, the controls of issue 17).
  model.basis = 'fourier'
  # Id normalisation: 'vocab' (paper: 2p/(N-1)-1, N = basis_vocab_size or V)
  # or 'max_seq_len' (current official code: 2p/(max_seq_len-1)-1).
  model.normalisation = 'vocab'
  # N of the 'vocab' normalisation; 0 = the model's vocab_size. The official
  # weights were trained with N = 30552.
  model.basis_vocab_size = 0
  # Embedding refinement MLP: 'linear' (one d->d layer, as in the official code and
  # consistent with the paper's Table 1 parameter counts), 'geglu' (the paper's
  # text), or 'none'.
  model.embed_mlp = 'linear'
  # Expansion of the 'geglu' embedding MLP (hidden = expansion * d_model).
  model.embed_mlp_expansion = 4
  # Dropout on hidden states and attention weights (baseline 0.1; Fourier none).
  model.dropout_rate = 0.0
  # RoPE arithmetic: 'standard' (rotation) or 'official' (the official code's
  # non-rotation, needed for the published weights).
  model.rope = 'standard'
  # Sentence pooling: 'masked_mean' (paper) or 'mean_all' (official code: mean
  # over every padded position, padding included).
  model.pooling = 'masked_mean'
  # Official code quirk: the block's FFN output is computed but not added.
  model.drop_ffn_output = False
  # Bias on every dense layer (the official code has them).
  model.use_bias = True
  model.rms_eps = 1e-6
  # Initial value of the contrastive temperature t (learned; stored as log t).
  model.init_temperature = 0.07

  # ------------------------------------------------------------ tokenizer
  tok = config.tokenizer = ml_collections.ConfigDict()
  # 'wordpiece' (BERT uncased, from vocab_path) or 'sentencepiece'.
  tok.kind = 'wordpiece'
  # 'bert-base-uncased' (shipped in pete_jax/assets) or the path of a vocab.txt.
  tok.vocab_path = 'bert-base-uncased'
  # Case-fold: WordPiece, and a SentencePiece model trained here. A given
  # spm_model_path keeps the normaliser it was trained with (this field is unused).
  tok.lowercase = True
  # SentencePiece: an existing .model file, or '' to train one on the training
  # text and save it as <workdir>/spm.model.
  tok.spm_model_path = ''
  tok.spm_vocab_size = 8000
  tok.spm_max_sentences = 200_000
  # Token id order: 'native', 'frequency' (re-ranked by training-corpus
  # frequency) or 'random' (seeded permutation: the control for the paper's
  # hypothesis that id order carries structure).
  tok.id_order = 'native'
  tok.id_order_seed = 0

  # ----------------------------------------------------------------- data
  data = config.data = ml_collections.ConfigDict()
  # Training sources, mixed into one stream. Each is 'format:location' with
  # format one of: tfds (location = TFDS name, e.g. tfds:snli), nli_jsonl,
  # pairs_csv, pairs_tsv, stsb_tsv, stsb_csv.
  data.train_sources = ('tfds:snli', 'tfds:multi_nli')
  # Columns (a, b, label-or-score) of the generic pairs_csv/pairs_tsv format.
  data.csv_columns = 'premise,hypothesis,label'
  # 'entailment' (paper) or 'all' (official code: every pair, any label).
  data.label_filter = 'entailment'
  # Zero-shot STS evaluation set and STS fine-tuning set.
  data.eval_source = 'tfds:glue/stsb:validation'
  data.finetune_source = 'tfds:glue/stsb:train'
  # Selection set: STS pairs scored zero-shot beside eval_source at every
  # pre-training evaluation (as select_spearman, ...), so that learning rates,
  # steps and the kept best checkpoint are chosen without looking at the reported
  # eval_source. '' = none; configs/local_data.py uses STS-B train, which
  # pre-training never sees.
  data.select_source = ''
  # TFDS settings.
  data.tfds_data_dir = ''
  # Download and prepare TFDS datasets on first use (array_record; later runs reuse them).
  data.tfds_download = True
  # Bad rows: 'skip' (counted by reason and reported) or 'error'.
  data.on_bad_row = 'skip'
  # Truncation length in tokens (special tokens included).
  data.max_len = 128
  # Bucket lengths for padding; those >= max_len are dropped and max_len is always the last.
  data.buckets = (16, 32, 64, 128)
  # Pad everything to max_len (the official code) instead of bucketing.
  data.pad_to_max_len = False
  # Length-sorting window in batches: 0 = fully random batches; larger = less
  # padding, but in-batch negatives of more similar length (see batching.py).
  data.sort_window_batches = 64

  # ---------------------------------------------------------------- train
  train = config.train = ml_collections.ConfigDict()
  train.batch_size = 128  # global batch, sentence pairs
  train.num_steps = 122_700
  train.learning_rate = 2e-5
  train.warmup_steps = 1_000  # then linear decay to 0
  train.weight_decay = 0.01  # AdamW
  train.grad_clip_norm = 0.0  # 0 = off
  # Compute dtype of activations: float32, bfloat16 (TPU/GPU) or float16.
  train.compute_dtype = 'float32'
  train.log_every_steps = 100
  train.eval_every_steps = 5_000
  train.checkpoint_every_steps = 5_000
  train.keep_checkpoints = 3
  # Stop after this step as if preempted (checkpoint, then exit; the next run
  # with the same workdir resumes). 0 = run to num_steps. For splitting long
  # runs across sessions, and for the exact-resume test.
  train.stop_at_step = 0

  # ---------------------------------------------------- STS-B fine-tuning
  finetune = config.finetune = ml_collections.ConfigDict()
  # Pre-train, then fine-tune on data.finetune_source. (To fine-tune an existing
  # workdir, e.g. converted official weights: python -m pete_jax.glue.main
  # --config=configs/glue.py:stsb --pretrained=<workdir> --workdir=<new workdir>.)
  finetune.enabled = False
  finetune.num_steps = 0
  finetune.batch_size = 32
  finetune.learning_rate = 2e-5
  finetune.warmup_steps = 100
  finetune.eval_every_steps = 500

  return config
