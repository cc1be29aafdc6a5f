"""How much mIoU a per-patch classifier can reach at a given input size: the patch-majority oracle.

The light head classifies the ViT's patch grid (one 14 x 14 patch per cell) and interpolates the logits
up. An oracle that knows the true majority class of every patch and paints the whole patch with it is
a close upper bound for that design: thin poles, signs, lights and the boundaries of every object are
lost at the patch grid whatever the backbone. This script scores that oracle on the demo's frames
(`causal-tune demo`'s drive: scene seeds 100.., the same streets in every condition) at several sizes.

    python bench/patch_ceiling.py                         # 168x336, 224x448, 336x672
    python bench/patch_ceiling.py --sizes 168x336 --per-class
"""

from __future__ import annotations

import argparse

import numpy as np

from causal_tune_ros.classes import load_classes
from causal_tune_ros.demo.layout import DEFAULT_SEGMENTS
from causal_tune_ros.synthetic import render_scene
from causal_tune_ros.training.metrics import ConfusionMatrix

PATCH = 14
IGNORE = 255


def patch_majority(labels: np.ndarray, patch: int = PATCH) -> np.ndarray:
    """Each ``patch`` x ``patch`` cell painted with its most frequent (non-ignored) label."""
    h, w = labels.shape[0] // patch * patch, labels.shape[1] // patch * patch
    cells = labels[:h, :w].reshape(h // patch, patch, w // patch, patch).transpose(0, 2, 1, 3)
    cells = cells.reshape(h // patch, w // patch, patch * patch)
    counts = np.stack([(cells == k).sum(-1) for k in range(IGNORE)], axis=-1)  # ignore 255 itself
    majority = counts.argmax(-1).astype(np.uint8)
    return np.repeat(np.repeat(majority, patch, 0), patch, 1)


def oracle(height: int, width: int) -> ConfusionMatrix:
    """Confusion matrix of the patch-majority oracle over the demo drive's frames at ``height x width``."""
    cm = ConfusionMatrix(len(load_classes().names))
    for condition, frames in DEFAULT_SEGMENTS:
        for k in range(frames):
            labels = render_scene(100 + k, condition, height, width).labels
            h, w = height // PATCH * PATCH, width // PATCH * PATCH
            cm.update(patch_majority(labels), labels[:h, :w])
    return cm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="168x336,224x448,336x672", help="HxW,... (default %(default)s)")
    parser.add_argument("--per-class", action="store_true", help="also print IoU per class")
    args = parser.parse_args()
    names = load_classes().names
    for size in args.sizes.split(","):
        height, width = (int(v) for v in size.lower().split("x"))
        cm = oracle(height, width)
        grid = f"{height // PATCH} x {width // PATCH} patches"
        print(f"{height}x{width} ({grid}): patch-majority oracle mIoU {100 * cm.miou():.1f} %")
        if args.per_class:
            for name, iou in zip(names, cm.iou(), strict=True):
                if not np.isnan(iou):
                    print(f"    {name:<14} {100 * iou:5.1f}")


if __name__ == "__main__":
    main()
