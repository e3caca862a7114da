"""The official PyTorch code's behaviour, every difference from the paper switched on (PAPER.md).

1. normalisation by max_seq_len - 1 (current official code), 2. the block's FFN
output dropped, 3. linear embedding MLP, 4. all SNLI/MNLI pairs as positives,
5. unmasked mean over all padded positions (everything padded to max_len),
6. lr 1e-5 and batch 256 (its command-line defaults; baseline dropout 0.2),
7. its RoPE arithmetic. Vocabulary sized 30,552 as in its main.py.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.model.normalisation = 'max_seq_len'
  config.model.drop_ffn_output = True
  config.model.embed_mlp = 'linear'
  config.data.label_filter = 'all'
  config.model.pooling = 'mean_all'
  config.data.pad_to_max_len = True
  config.train.learning_rate = 1e-5
  config.train.batch_size = 256
  config.model.rope = 'official'
  config.model.vocab_size = 30552
  return config
