"""Data and tokenizer layer: sources -> tokenizer -> bucketed batches.

Modules: records (SentencePair, ReadReport), file_readers / tfds_reader
(formats), sources (specs, load_*_pairs), tokenizers and id_order,
batching (PairBatcher, pad_batch), pipeline (entry points), summary (CLI).
"""

from pete_jax.data.batching import PairBatcher
from pete_jax.data.batching import bucket_lengths
from pete_jax.data.batching import pad_batch
from pete_jax.data.pipeline import StsData
from pete_jax.data.pipeline import TrainData
from pete_jax.data.pipeline import encode_pairs
from pete_jax.data.pipeline import make_batcher
from pete_jax.data.pipeline import padding_lengths
from pete_jax.data.pipeline import pads_to_max_len
from pete_jax.data.pipeline import pair_texts
from pete_jax.data.pipeline import prepare_finetune_batcher
from pete_jax.data.pipeline import prepare_sts
from pete_jax.data.pipeline import prepare_training_data
from pete_jax.data.records import BadRowError
from pete_jax.data.records import ReadReport
from pete_jax.data.records import SentencePair
from pete_jax.data.records import SourceError
from pete_jax.data.sources import load_nli_pairs
from pete_jax.data.sources import load_sts_pairs
from pete_jax.data.sources import parse_spec
from pete_jax.data.tokenizers import SentencePieceTokenizer
from pete_jax.data.tokenizers import Tokenizer
from pete_jax.data.tokenizers import WordPieceTokenizer
from pete_jax.data.pipeline import build_tokenizer
