"""Cityscapes reader (``leftImg8bit`` + ``gtFine``), also the layout of the paper's source domain.

Layout::

    <root>/leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png
    <root>/gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelTrainIds.png   (preferred, if present)
    <root>/gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png        (official map applied)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from causal_tune_ros.errors import DatasetError
from causal_tune_ros.training.datasets.base import SegmentationDataset, pair_files, require_dir
from causal_tune_ros.training.datasets.label_maps import CITYSCAPES_LUT

_IMG_SUFFIX = "_leftImg8bit.png"


class CityscapesDataset(SegmentationDataset):
    """Cityscapes fine annotations.

    Args:
        root: Data set root (holds ``leftImg8bit/`` and ``gtFine/``).
        split: ``train``, ``val`` or ``test``.
        condition: Condition tag of every sample (Cityscapes is clear daytime weather).
        **kw: ``transform``, ``limit`` (see :class:`SegmentationDataset`).

    Raises:
        DatasetError: A missing folder, no images, or an image without a label.
    """

    dataset_name = "cityscapes"

    def __init__(self, root: str | Path, split: str = "train", condition: str = "clear", **kw: Any) -> None:
        root = Path(root)
        img_dir = require_dir(root / "leftImg8bit" / split, f"cityscapes {split} images")
        gt_dir = require_dir(root / "gtFine" / split, f"cityscapes {split} labels")
        images = sorted(img_dir.glob(f"*/*{_IMG_SUFFIX}"))
        if not images:
            raise DatasetError(f"cityscapes: no *{_IMG_SUFFIX} images in {img_dir}/<city>/")

        def labels(img: Path) -> list[tuple[Path, Any]]:
            stem = img.name[: -len(_IMG_SUFFIX)]
            folder = gt_dir / img.parent.name
            return [
                (folder / f"{stem}_gtFine_labelTrainIds.png", None),
                (folder / f"{stem}_gtFine_labelIds.png", CITYSCAPES_LUT),
            ]

        def name(img: Path) -> str:
            return f"{img.parent.name}/{img.name[: -len(_IMG_SUFFIX)]}"

        super().__init__(pair_files(images, labels, condition, name, self.dataset_name), **kw)
