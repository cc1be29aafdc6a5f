"""Data set readers mapped to the 19 Cityscapes train ids (255 = ignore), and a factory.

Every reader is ``torch.utils.data.Dataset`` compatible (``__len__``, ``__getitem__``) and returns
``dict(image=(H, W, 3) uint8 RGB, labels=(H, W) uint8 train ids, condition=str, name=str)``; the training
loop converts to tensors. Layouts and label maps are documented in each reader's module.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from causal_tune_ros.errors import DatasetError
from causal_tune_ros.training.datasets.acdc import ACDC_CONDITIONS, ACDCDataset
from causal_tune_ros.training.datasets.base import SegmentationDataset, read_image, read_label
from causal_tune_ros.training.datasets.bdd100k import BDD100KDataset
from causal_tune_ros.training.datasets.cityscapes import CityscapesDataset
from causal_tune_ros.training.datasets.gtav import GTAVDataset
from causal_tune_ros.training.datasets.mapillary import MapillaryDataset
from causal_tune_ros.training.datasets.synthetic import SyntheticDataset

#: Factory names (and aliases) -> reader class.
DATASETS: dict[str, type] = {
    "cityscapes": CityscapesDataset,
    "acdc": ACDCDataset,
    "gtav": GTAVDataset,
    "gta5": GTAVDataset,
    "bdd100k": BDD100KDataset,
    "bdd": BDD100KDataset,
    "mapillary": MapillaryDataset,
    "vistas": MapillaryDataset,
    "synthetic": SyntheticDataset,
}


def build_dataset(name: str, root: str | Path | None = None, split: str | None = None, **kw: Any) -> Any:
    """Build a data set by name.

    Args:
        name: ``cityscapes``, ``acdc``, ``gtav`` (``gta5``), ``bdd100k`` (``bdd``), ``mapillary``
            (``vistas``) or ``synthetic``.
        root: Data set root folder (ignored by ``synthetic``).
        split: Split name (default: the reader's own default).
        **kw: Reader options, e.g. ``conditions`` (ACDC, synthetic), ``num_samples``, ``height``,
            ``width``, ``seed`` (synthetic), ``condition`` (tag), ``transform``, ``limit``.

    Returns:
        The data set.

    Raises:
        DatasetError: Unknown name, missing root, unknown option, or any reader error.
    """
    key = str(name).strip().lower()
    cls = DATASETS.get(key)
    if cls is None:
        raise DatasetError(f"unknown data set {name!r}; expected one of {', '.join(sorted(DATASETS))}")
    args: dict[str, Any] = dict(kw)
    if split:
        args["split"] = split
    if cls is not SyntheticDataset:
        if root is None or str(root) == "":
            raise DatasetError(f"data set {key!r} needs a root folder")
        args["root"] = root
    allowed = {
        n for n, p in inspect.signature(cls).parameters.items() if p.kind is not inspect.Parameter.VAR_KEYWORD
    }
    if issubclass(cls, SegmentationDataset):
        allowed |= {"transform", "limit"}
    unknown = sorted(set(args) - allowed)
    if unknown:
        raise DatasetError(f"{key}: unknown option(s) {unknown}; known: {', '.join(sorted(allowed))}")
    return cls(**args)


__all__ = [
    "ACDC_CONDITIONS",
    "DATASETS",
    "ACDCDataset",
    "BDD100KDataset",
    "CityscapesDataset",
    "GTAVDataset",
    "MapillaryDataset",
    "SegmentationDataset",
    "SyntheticDataset",
    "build_dataset",
    "read_image",
    "read_label",
]
