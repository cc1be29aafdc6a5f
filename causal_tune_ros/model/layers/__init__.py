"""DINOv2 building blocks, one small layer per module (names follow the official checkpoints)."""

from causal_tune_ros.model.layers.attention import Attention
from causal_tune_ros.model.layers.block import FFN_LAYERS, Block
from causal_tune_ros.model.layers.layer_scale import LayerScale
from causal_tune_ros.model.layers.mlp import Mlp
from causal_tune_ros.model.layers.patch_embed import PatchEmbed
from causal_tune_ros.model.layers.swiglu_ffn import SwiGLUFFN, swiglu_hidden_features

__all__ = [
    "FFN_LAYERS",
    "Attention",
    "Block",
    "LayerScale",
    "Mlp",
    "PatchEmbed",
    "SwiGLUFFN",
    "swiglu_hidden_features",
]
