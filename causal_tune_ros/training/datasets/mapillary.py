"""Mapillary Vistas v1.2 reader, mapped from its 65 classes to the 19 Cityscapes train ids.

Layout::

    <root>/<split>/images/<name>.jpg
    <root>/<split>/v1.2/labels/<name>.png     (release 2.0 layout)  or
    <root>/<split>/labels/<name>.png          (release 1.x layout)

``split`` is ``training``, ``validation`` (``train`` / ``val`` are accepted). Labels are 8-bit palette
PNGs whose index is the v1.2 class id; the mapping is
:data:`~causal_tune_ros.training.datasets.label_maps.VISTAS_V12_TO_TRAIN_ID`. The v2.0 labels (124 classes)
are a different id space and are not read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from causal_tune_ros.errors import DatasetError
from causal_tune_ros.training.datasets.base import SegmentationDataset, pair_files, require_dir
from causal_tune_ros.training.datasets.label_maps import VISTAS_V12_LUT

_SPLIT_ALIASES = {"train": "training", "val": "validation", "test": "testing"}


class MapillaryDataset(SegmentationDataset):
    """Mapillary Vistas v1.2.

    Args:
        root: Data set root (holds ``training/``, ``validation/``).
        split: ``training`` / ``validation`` (or ``train`` / ``val``).
        condition: Condition tag of every sample (Vistas mixes weathers, seasons and cameras).
        **kw: ``transform``, ``limit``.

    Raises:
        DatasetError: A missing folder, no images, or an image without a label.
    """

    dataset_name = "mapillary"

    def __init__(
        self, root: str | Path, split: str = "validation", condition: str = "mixed", **kw: Any
    ) -> None:
        root = Path(root)
        split = _SPLIT_ALIASES.get(split, split)
        split_dir = require_dir(root / split, f"mapillary {split} split")
        img_dir = require_dir(split_dir / "images", f"mapillary {split} images")
        lbl_dir = split_dir / "v1.2" / "labels"
        if not lbl_dir.is_dir():
            lbl_dir = split_dir / "labels"
        if not lbl_dir.is_dir():
            hint = (
                " (only v2.0 labels found; they use other class ids)" if (split_dir / "v2.0").is_dir() else ""
            )
            v12 = split_dir / "v1.2" / "labels"
            raise DatasetError(
                f"mapillary {split} labels: neither {v12} nor {split_dir / 'labels'} exists{hint}"
            )
        images = sorted(p for p in img_dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        if not images:
            raise DatasetError(f"mapillary: no .jpg images in {img_dir}")
        samples = pair_files(
            images,
            lambda img: [(lbl_dir / f"{img.stem}.png", VISTAS_V12_LUT)],
            condition,
            lambda img: img.stem,
            self.dataset_name,
        )
        super().__init__(samples, **kw)
