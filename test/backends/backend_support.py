"""Helpers of the backend and pipeline tests: one tiny random Causal-Tune model.

The model is a 2-block, 32-wide DINOv2 (4 heads) with Causal-Tune on both blocks and a LightHead, run at
56 x 112 (4 x 8 patches). The refinement scale is set to 1 (not the 1e-3 of training start) so the band
visibly changes the output. (A uniquely named module rather than ``conftest`` so imports never collide
with other test folders' conftest files.)
"""

from __future__ import annotations

import torch

INPUT_SIZE = (56, 112)


def build_tiny_model(seed: int = 0) -> torch.nn.Module:
    """The tiny segmenter (eval mode, CPU)."""
    from causal_tune_ros.model.causal_tune import CausalTuneSegmenter
    from causal_tune_ros.model.dinov2 import DinoV2
    from causal_tune_ros.model.heads import LightHead

    torch.manual_seed(seed)
    backbone = DinoV2("custom", embed_dim=32, depth=2, num_heads=4, img_size=56)
    head = LightHead(32, 19, channels=16)
    model = CausalTuneSegmenter(backbone, head, num_tokens=8, rank=4, scale_init=1.0).eval()
    with torch.no_grad():  # a classifier with real spread, so class ids are not decided by rounding noise
        head.classifier.weight.normal_(0.0, 0.5)
    return model
