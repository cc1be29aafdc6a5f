"""Helpers of the training tests: image size, the tiny model and synthetic data sections of a config.

(A uniquely named module rather than ``conftest`` so imports never collide with other test folders'
conftest files.)
"""

from __future__ import annotations

from typing import Any

H, W = 56, 112


def tiny_model() -> dict[str, Any]:
    """``model`` section of a tiny, fast config: a 2-block, 32-wide custom ViT and a 32-channel LightHead.

    Returns:
        A fresh dict on every call (tests change it in place).
    """
    return {
        "backbone": {"arch": "custom", "overrides": {"embed_dim": 32, "depth": 2, "num_heads": 2}},
        "tuner": {"num_tokens": 8, "rank": 4},
        "head": {"options": {"channels": 32}},
    }


def synthetic_train(num_samples: int) -> dict[str, Any]:
    """``data.train`` section: ``num_samples`` clear synthetic scenes at ``H x W``.

    Returns:
        A fresh dict on every call.
    """
    return {
        "name": "synthetic",
        "num_samples": num_samples,
        "conditions": ["clear"],
        "height": H,
        "width": W,
    }
