"""BDD100K semantic segmentation reader (the 10K images with masks already in Cityscapes train ids).

Layouts::

    <root>/images/10k/<split>/<name>.jpg
    <root>/labels/sem_seg/masks/<split>/<name>.png           (current release)

    <root>/seg/images/<split>/<name>.jpg
    <root>/seg/labels/<split>/<name>_train_id.png            (older "bdd100k_seg" release)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from causal_tune_ros.errors import DatasetError
from causal_tune_ros.training.datasets.base import SegmentationDataset, pair_files, require_dir
from causal_tune_ros.training.datasets.label_maps import TRAIN_ID_LUT


class BDD100KDataset(SegmentationDataset):
    """BDD100K 10K semantic segmentation.

    Args:
        root: Data set root (holds ``images/10k`` and ``labels/sem_seg``, or ``seg/``).
        split: ``train`` or ``val``.
        condition: Condition tag of every sample (BDD100K mixes weathers and times of day).
        **kw: ``transform``, ``limit``.

    Raises:
        DatasetError: Neither layout found, no images, or an image without a label.
    """

    dataset_name = "bdd100k"

    def __init__(self, root: str | Path, split: str = "val", condition: str = "mixed", **kw: Any) -> None:
        root = Path(root)
        if (root / "images" / "10k").is_dir() or not (root / "seg").is_dir():
            img_dir = require_dir(root / "images" / "10k" / split, f"bdd100k {split} images")
            lbl_dir = require_dir(root / "labels" / "sem_seg" / "masks" / split, f"bdd100k {split} labels")

            def labels(img: Path) -> list[tuple[Path, Any]]:
                return [(lbl_dir / f"{img.stem}.png", TRAIN_ID_LUT)]
        else:
            img_dir = require_dir(root / "seg" / "images" / split, f"bdd100k {split} images")
            lbl_dir = require_dir(root / "seg" / "labels" / split, f"bdd100k {split} labels")

            def labels(img: Path) -> list[tuple[Path, Any]]:
                return [(lbl_dir / f"{img.stem}_train_id.png", TRAIN_ID_LUT)]

        images = sorted(p for p in img_dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        if not images:
            raise DatasetError(f"bdd100k: no .jpg images in {img_dir}")
        samples = pair_files(images, labels, condition, lambda img: img.stem, self.dataset_name)
        super().__init__(samples, **kw)
