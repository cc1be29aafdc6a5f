"""ACDC reader (Adverse Conditions Dataset with Correspondences): fog, night, rain and snow.

Layout::

    <root>/rgb_anon/<condition>/<split>/<sequence>/<name>_rgb_anon.png
    <root>/gt/<condition>/<split>/<sequence>/<name>_gt_labelTrainIds.png   (preferred, if present)
    <root>/gt/<condition>/<split>/<sequence>/<name>_gt_labelIds.png        (Cityscapes ids, mapped)

Each sample's condition is its ACDC condition folder, so results come out per condition.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from causal_tune_ros.errors import DatasetError
from causal_tune_ros.training.datasets.base import SegmentationDataset, pair_files, require_dir
from causal_tune_ros.training.datasets.label_maps import CITYSCAPES_LUT

ACDC_CONDITIONS: tuple[str, ...] = ("fog", "night", "rain", "snow")
_IMG_SUFFIX = "_rgb_anon.png"


def parse_conditions(conditions: str | Sequence[str] | None, known: Sequence[str], dataset: str) -> list[str]:
    """Normalise ``"fog,night"`` / ``["fog"]`` / ``None`` (all) to a list of known conditions.

    Raises:
        DatasetError: An unknown or empty selection.
    """
    if conditions is None:
        return list(known)
    items = conditions.split(",") if isinstance(conditions, str) else list(conditions)
    chosen = [str(c).strip().lower() for c in items if str(c).strip()]
    unknown = [c for c in chosen if c not in known]
    if unknown or not chosen:
        raise DatasetError(
            f"{dataset}: unknown condition(s) {unknown or chosen}; expected some of {', '.join(known)}"
        )
    return list(dict.fromkeys(chosen))


class ACDCDataset(SegmentationDataset):
    """ACDC semantic segmentation, one or more conditions.

    Args:
        root: Data set root (holds ``rgb_anon/`` and ``gt/``).
        split: ``train``, ``val`` (or ``test``, which has no public labels and therefore fails).
        conditions: Conditions to read (``"night"``, ``"fog,snow"``, a list, or ``None`` for all four).
        **kw: ``transform``, ``limit``.

    Raises:
        DatasetError: Unknown condition, a missing folder, no images, or an image without a label.
    """

    dataset_name = "acdc"

    def __init__(
        self, root: str | Path, split: str = "val", conditions: str | Sequence[str] | None = None, **kw: Any
    ) -> None:
        root = Path(root)
        samples = []
        for cond in parse_conditions(conditions, ACDC_CONDITIONS, self.dataset_name):
            img_dir = require_dir(root / "rgb_anon" / cond / split, f"acdc {cond} {split} images")
            gt_dir = require_dir(root / "gt" / cond / split, f"acdc {cond} {split} labels")
            images = sorted(img_dir.glob(f"*/*{_IMG_SUFFIX}"))
            if not images:
                raise DatasetError(f"acdc: no *{_IMG_SUFFIX} images in {img_dir}/<sequence>/")

            def labels(img: Path, gt_dir: Path = gt_dir) -> list[tuple[Path, Any]]:
                stem = img.name[: -len(_IMG_SUFFIX)]
                folder = gt_dir / img.parent.name
                return [
                    (folder / f"{stem}_gt_labelTrainIds.png", None),
                    (folder / f"{stem}_gt_labelIds.png", CITYSCAPES_LUT),
                ]

            def name(img: Path, cond: str = cond) -> str:
                return f"{cond}/{img.parent.name}/{img.name[: -len(_IMG_SUFFIX)]}"

            samples += pair_files(images, labels, cond, name, self.dataset_name)
        super().__init__(samples, **kw)
