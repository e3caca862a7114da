"""Table 2: small PETE model, 2 layer(s), d=64, FFN hidden d/4; pre-training, then STS-B fine-tuning.

Paper 58k+ row: Pearson 69.0 / Spearman 69.5. The paper does not say which width/depth gives each row; this
one is the (layers, d) whose parameter count is nearest to the row's.
Fine-tuning: 720 steps of batch 32 (4 epochs of STS-B train) with the official
Pearson loss.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.model.ffn_multiplier = 0.25
  config.finetune.enabled = True
  config.finetune.num_steps = 720
  config.model.num_layers = 2
  config.model.num_heads = 2
  config.model.d_model = 64
  return config
