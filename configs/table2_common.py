"""Shared settings of the Table 2 small PETE models: FFN hidden d/4, pre-training, then STS-B fine-tuning.

The paper does not say which width/depth gives each Table 2 row; each config
file uses the (layers, d) whose parameter count is nearest to its row's. The 58k row's
2x64 (48,256 parameters) is narrower than the official code's sweep ({1, 2} x {128, 256,
512}, whose smallest model, 1x128, has 111,936); the official weights include d=64 models.
Fine-tuning: 720 steps of batch 32 (4 epochs of STS-B train) with the official
code's Pearson loss.
"""

from configs import default


def small_pete(num_layers: int, d_model: int):
  """A Table 2 model: ``num_layers`` layers (= heads), width ``d_model``, FFN d/4."""
  config = default.get_config()
  config.model.num_layers = num_layers
  config.model.num_heads = num_layers
  config.model.d_model = d_model
  config.model.ffn_multiplier = 0.25
  config.finetune.enabled = True
  config.finetune.num_steps = 720
  return config
