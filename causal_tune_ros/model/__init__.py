"""Pure-PyTorch model code: the DINOv2 backbone and its weight loaders (more is exported as it lands)."""

from causal_tune_ros.model.dinov2 import ARCHS, DinoV2, interpolate_pos_embed
from causal_tune_ros.model.loading import load_backbone, load_weights, save_official_checkpoint

__all__ = [
    "ARCHS",
    "DinoV2",
    "interpolate_pos_embed",
    "load_backbone",
    "load_weights",
    "save_official_checkpoint",
]
