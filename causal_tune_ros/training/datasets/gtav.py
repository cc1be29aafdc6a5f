"""GTAV reader (Richter et al., "Playing for Data"): synthetic game frames with Cityscapes label ids.

Layout::

    <root>/images/<name>.png
    <root>/labels/<name>.png        (8-bit palette PNGs; the palette index is the Cityscapes label id)

Optionally split into ``images/<split>/`` and ``labels/<split>/``. Without such folders, ``split`` ``all``
or ``train`` reads every image (domain-generalisation work trains on the whole set). A few GTAV images are
not the size of their labels; they are resized to the label (labels are never resampled).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from causal_tune_ros.errors import DatasetError
from causal_tune_ros.training.datasets.base import SegmentationDataset, pair_files, require_dir
from causal_tune_ros.training.datasets.label_maps import CITYSCAPES_LUT


class GTAVDataset(SegmentationDataset):
    """GTAV (GTA5) frames.

    Args:
        root: Data set root (holds ``images/`` and ``labels/``).
        split: ``all`` / ``train`` (everything unless split folders exist), or a split folder name.
        condition: Condition tag of every sample (the game mixes weathers and times of day).
        **kw: ``transform``, ``limit``.

    Raises:
        DatasetError: A missing folder, no images, or an image without a label.
    """

    dataset_name = "gtav"
    resize_image_to_label = True

    def __init__(self, root: str | Path, split: str = "all", condition: str = "mixed", **kw: Any) -> None:
        root = Path(root)
        img_dir = require_dir(root / "images", "gtav images")
        lbl_dir = require_dir(root / "labels", "gtav labels")
        if (img_dir / split).is_dir():
            img_dir = img_dir / split
            lbl_dir = require_dir(lbl_dir / split, f"gtav {split} labels")
        elif split not in ("all", "train"):
            raise DatasetError(
                f"gtav: no split folder {img_dir / split}; use split 'all' (or 'train') for the whole set"
            )
        images = sorted(p for p in img_dir.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
        if not images:
            raise DatasetError(f"gtav: no .png/.jpg images in {img_dir}")
        samples = pair_files(
            images,
            lambda img: [(lbl_dir / f"{img.stem}.png", CITYSCAPES_LUT)],
            condition,
            lambda img: img.stem,
            self.dataset_name,
        )
        super().__init__(samples, **kw)
