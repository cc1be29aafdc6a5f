"""The result of an evaluation: confusion matrices of one band setting, per condition and over all."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from causal_tune_ros.band import Band
from causal_tune_ros.training.metrics import ConfusionMatrix

#: Key of the all-conditions aggregate in :attr:`EvalResult.matrices`.
ALL = "all"
#: Row of the mean of the per-condition mIoUs (the paper's "mean"; :data:`ALL` pools the pixels instead).
MEAN = "mean"
#: Condition of samples that name none.
UNKNOWN = "unknown"

BandSetting = Band | None
"""A band, or ``None`` for the no-band-pass ablation (the whole spectrum reaches the tokens)."""


def band_label(band: BandSetting) -> str:
    """Human-readable name of a band setting (table column group)."""
    return "no band-pass" if band is None else f"band {band.low:g}-{band.high:g}"


@dataclass
class EvalResult:
    """Confusion matrices of one band setting, per condition and over all conditions.

    Attributes:
        band: The band setting (``None``: no band-pass).
        class_names: Class names in train-id order.
        matrices: Condition -> confusion matrix; :data:`ALL` aggregates every condition.
        num_images: Condition -> number of images scored (:data:`ALL` included).
        conditions: Conditions in table order (without :data:`ALL`).
        dataset: Name of the data set, for tables.
    """

    band: BandSetting
    class_names: tuple[str, ...]
    matrices: dict[str, ConfusionMatrix]
    num_images: dict[str, int]
    conditions: list[str] = field(default_factory=list)
    dataset: str = ""

    @property
    def label(self) -> str:
        """Column-group name of the band setting."""
        return band_label(self.band)

    def iou(self, condition: str = ALL) -> np.ndarray:
        """Per-class IoU (NaN for classes absent from both labels and predictions)."""
        return np.asarray(self.matrices[condition].iou(), dtype=np.float64)

    def miou(self, condition: str = ALL) -> float:
        """Mean IoU over the classes that occur."""
        return float(self.matrices[condition].miou())

    def pixel_accuracy(self, condition: str = ALL) -> float:
        """Share of labelled pixels predicted correctly."""
        return float(self.matrices[condition].pixel_accuracy())

    def mean_miou(self) -> float:
        """Mean of the per-condition mIoUs (how the paper reports "mean"); NaN without conditions."""
        values = [self.miou(c) for c in self.conditions]
        return float(np.mean(values)) if values else math.nan

    def summary(self) -> dict[str, Any]:
        """JSON-able summary: per condition mIoU, pixel accuracy, images and per-class IoU;
        ``"mean": {"miou": ...}`` (mean of the condition mIoUs) and :data:`ALL` (pooled pixels)."""
        out: dict[str, Any] = {"band": None if self.band is None else list(self.band.as_tuple())}
        for cond in [*self.conditions, ALL]:
            out[cond] = {
                "miou": self.miou(cond),
                "pixel_accuracy": self.pixel_accuracy(cond),
                "images": self.num_images[cond],
                "iou": {n: _nan_to_none(v) for n, v in zip(self.class_names, self.iou(cond), strict=True)},
            }
        out[MEAN] = {"miou": _nan_to_none(self.mean_miou()), "conditions": list(self.conditions)}
        return out


def _nan_to_none(value: float) -> float | None:
    return None if math.isnan(value) else float(value)
