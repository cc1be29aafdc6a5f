"""Segmentation metrics: a confusion matrix (IoU, mIoU, pixel accuracy) and Markdown / CSV result tables.

The matrix counts ``matrix[target, prediction]`` over labelled pixels (target != ``ignore_index``). It adds
up by ``+`` / :meth:`ConfusionMatrix.merge`, so per-process matrices can be summed (e.g. with
``torch.distributed.all_reduce`` on ``torch.from_numpy(cm.matrix)``) before the scores are computed.
No torch import: torch tensors are accepted duck-typed and counted on their own device.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from causal_tune_ros.errors import ConfigError, MetricError


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


class ConfusionMatrix:
    """Accumulates a ``(num_classes, num_classes)`` confusion matrix over labelled pixels.

    Attributes:
        num_classes: Number of classes ``K`` (ids ``0 .. K-1``).
        ignore_index: Label value that is skipped (``None``: every target pixel must be a class id).
        matrix: ``(K, K)`` int64 counts, ``matrix[target, prediction]``; may be added to in place.

    Raises:
        ConfigError: ``num_classes < 1`` or an ``ignore_index`` inside ``0 .. K-1``.
    """

    def __init__(self, num_classes: int, ignore_index: int | None = 255) -> None:
        if int(num_classes) < 1:
            raise ConfigError(f"num_classes must be >= 1, got {num_classes}")
        if ignore_index is not None and 0 <= int(ignore_index) < int(num_classes):
            raise ConfigError(f"ignore_index {ignore_index} is a class id (0..{int(num_classes) - 1})")
        self.num_classes = int(num_classes)
        self.ignore_index = None if ignore_index is None else int(ignore_index)
        self.matrix = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    # ------------------------------------------------------------------------------------------ counting
    def update(self, pred: Any, target: Any) -> ConfusionMatrix:
        """Count one batch of predictions against labels.

        Args:
            pred: Predicted class ids, any shape, integer numpy array or torch tensor.
            target: Labels of the same shape (``ignore_index`` where unlabelled).

        Returns:
            ``self`` (for chaining).

        Raises:
            MetricError: Shapes differ, non-integer arrays, or ids outside ``0 .. K-1`` (predictions are
                checked only where the label is valid).
        """
        if _is_torch(pred) or _is_torch(target):
            counts = self._counts_torch(pred, target)
        else:
            counts = self._counts_numpy(np.asarray(pred), np.asarray(target))
        self.matrix += counts.reshape(self.num_classes, self.num_classes)
        return self

    def _validate(self, pred_shape, target_shape, pred_kind: str, target_kind: str) -> None:
        if tuple(pred_shape) != tuple(target_shape):
            raise MetricError(f"prediction shape {tuple(pred_shape)} != label shape {tuple(target_shape)}")
        for what, kind in (("prediction", pred_kind), ("label", target_kind)):
            if kind not in "uib":
                raise MetricError(f"{what} must hold integer class ids, got a {kind!r}-kind array")

    def _range_error(self, what: str, values: Sequence[int]) -> MetricError:
        shown = ", ".join(str(int(v)) for v in list(values)[:8])
        extra = "" if self.ignore_index is None or what == "prediction" else f" or {self.ignore_index}"
        return MetricError(f"{what} holds ids outside 0..{self.num_classes - 1}{extra}: {shown}")

    def _counts_numpy(self, pred: np.ndarray, target: np.ndarray) -> np.ndarray:
        self._validate(pred.shape, target.shape, pred.dtype.kind, target.dtype.kind)
        k = self.num_classes
        t = target.reshape(-1).astype(np.int64, copy=False)
        p = pred.reshape(-1).astype(np.int64, copy=False)
        if self.ignore_index is not None:
            valid = t != self.ignore_index
            if not valid.all():
                t, p = t[valid], p[valid]
        if t.size and (t.min() < 0 or t.max() >= k):
            raise self._range_error("label", np.unique(t[(t < 0) | (t >= k)]))
        if p.size and (p.min() < 0 or p.max() >= k):
            raise self._range_error("prediction", np.unique(p[(p < 0) | (p >= k)]))
        return np.bincount(t * k + p, minlength=k * k)

    def _counts_torch(self, pred: Any, target: Any) -> np.ndarray:
        import torch

        pred = torch.as_tensor(pred)
        target = torch.as_tensor(target, device=pred.device)
        floating = (
            pred.is_floating_point() or pred.is_complex(),
            target.is_floating_point() or target.is_complex(),
        )
        self._validate(pred.shape, target.shape, "f" if floating[0] else "i", "f" if floating[1] else "i")
        k = self.num_classes
        t = target.reshape(-1).long()
        p = pred.reshape(-1).long()
        if self.ignore_index is not None:
            valid = t != self.ignore_index
            t, p = t[valid], p[valid]
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= k):
            raise self._range_error("label", torch.unique(t[(t < 0) | (t >= k)]).tolist())
        if p.numel() and (int(p.min()) < 0 or int(p.max()) >= k):
            raise self._range_error("prediction", torch.unique(p[(p < 0) | (p >= k)]).tolist())
        return torch.bincount(t * k + p, minlength=k * k).cpu().numpy().astype(np.int64)

    # ------------------------------------------------------------------------------------------ combining
    def _check_compatible(self, other: ConfusionMatrix) -> None:
        if not isinstance(other, ConfusionMatrix):
            raise MetricError(f"cannot combine a ConfusionMatrix with {type(other).__name__}")
        if (other.num_classes, other.ignore_index) != (self.num_classes, self.ignore_index):
            raise MetricError(
                f"cannot combine matrices of {self.num_classes} classes (ignore {self.ignore_index}) and "
                f"{other.num_classes} classes (ignore {other.ignore_index})"
            )

    def merge(self, other: ConfusionMatrix) -> ConfusionMatrix:
        """Add another matrix's counts to this one in place.

        Returns:
            ``self``.

        Raises:
            MetricError: Different ``num_classes`` or ``ignore_index``.
        """
        self._check_compatible(other)
        self.matrix += other.matrix
        return self

    def __add__(self, other: ConfusionMatrix) -> ConfusionMatrix:
        self._check_compatible(other)
        return self.copy().merge(other)

    def __iadd__(self, other: ConfusionMatrix) -> ConfusionMatrix:
        return self.merge(other)

    def copy(self) -> ConfusionMatrix:
        """An independent copy."""
        out = ConfusionMatrix(self.num_classes, self.ignore_index)
        out.matrix[...] = self.matrix
        return out

    def reset(self) -> None:
        """Zero every count."""
        self.matrix[...] = 0

    @classmethod
    def from_matrix(cls, matrix: Any, ignore_index: int | None = 255) -> ConfusionMatrix:
        """Wrap existing ``(K, K)`` counts (e.g. after an all-reduce).

        Raises:
            MetricError: Not a square matrix of non-negative integers.
        """
        m = np.asarray(matrix.detach().cpu().numpy() if _is_torch(matrix) else matrix)
        if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] < 1:
            raise MetricError(f"expected a square (K, K) matrix, got shape {m.shape}")
        if m.dtype.kind not in "ui" and not np.all(np.mod(m, 1) == 0):
            raise MetricError("confusion matrix counts must be whole numbers")
        if (m < 0).any():
            raise MetricError("confusion matrix counts must be >= 0")
        out = cls(m.shape[0], ignore_index)
        out.matrix[...] = m.astype(np.int64)
        return out

    # ------------------------------------------------------------------------------------------ scores
    @property
    def total(self) -> int:
        """Number of labelled pixels counted."""
        return int(self.matrix.sum())

    def iou(self) -> np.ndarray:
        """Per-class intersection over union ``TP / (TP + FP + FN)``.

        Returns:
            ``(K,)`` float64; NaN for classes absent from both labels and predictions.
        """
        tp = np.diag(self.matrix).astype(np.float64)
        denom = self.matrix.sum(0) + self.matrix.sum(1) - tp
        out = np.full(self.num_classes, np.nan)
        np.divide(tp, denom, out=out, where=denom > 0)
        return out

    def miou(self) -> float:
        """Mean IoU over the classes that occur (NaN when nothing was counted)."""
        iou = self.iou()
        present = ~np.isnan(iou)
        return float(iou[present].mean()) if present.any() else math.nan

    def pixel_accuracy(self) -> float:
        """Share of labelled pixels predicted correctly (NaN when nothing was counted)."""
        total = self.total
        return float(np.trace(self.matrix)) / total if total else math.nan

    def class_accuracy(self) -> np.ndarray:
        """Per-class recall ``TP / (TP + FN)``; NaN for classes without labelled pixels."""
        tp = np.diag(self.matrix).astype(np.float64)
        support = self.matrix.sum(1)
        out = np.full(self.num_classes, np.nan)
        np.divide(tp, support, out=out, where=support > 0)
        return out

    def __repr__(self) -> str:
        return f"ConfusionMatrix(num_classes={self.num_classes}, pixels={self.total}, miou={self.miou():.4f})"


# --------------------------------------------------------------------------------------------- tables
def per_class_rows(
    results: Mapping[str, ConfusionMatrix], class_names: Sequence[str], percent: bool = True
) -> list[dict[str, Any]]:
    """One row per class (IoU in each condition's column), then an ``mIoU`` row.

    Args:
        results: Condition (or data set) name -> matrix, in column order.
        class_names: Names in train-id order (length ``K``).
        percent: Scale scores to 0..100, as papers report them.

    Returns:
        Rows ``{"class": name, <condition>: IoU, ...}`` for :func:`format_markdown_table` / :func:`write_csv`.

    Raises:
        MetricError: A matrix's class count differs from ``len(class_names)``.
    """
    scale = 100.0 if percent else 1.0
    for name, cm in results.items():
        if cm.num_classes != len(class_names):
            raise MetricError(f"{name}: {cm.num_classes} classes but {len(class_names)} class names")
    ious = {name: cm.iou() * scale for name, cm in results.items()}
    rows: list[dict[str, Any]] = [
        {"class": cls, **{name: float(iou[k]) for name, iou in ious.items()}}
        for k, cls in enumerate(class_names)
    ]
    rows.append({"class": "mIoU", **{name: cm.miou() * scale for name, cm in results.items()}})
    return rows


def per_condition_rows(
    results: Mapping[str, ConfusionMatrix], percent: bool = True, mean_row: bool = True
) -> list[dict[str, Any]]:
    """One row per condition: mIoU, pixel accuracy and labelled pixels; then the mean over conditions.

    Args:
        results: Condition name -> matrix.
        percent: Scale scores to 0..100.
        mean_row: Append a ``mean`` row (average of the conditions' scores, as papers average ACDC's four
            conditions) when there is more than one condition.

    Returns:
        Rows ``{"condition", "mIoU", "pixel acc", "pixels"}``.
    """
    scale = 100.0 if percent else 1.0
    rows: list[dict[str, Any]] = [
        {
            "condition": name,
            "mIoU": cm.miou() * scale,
            "pixel acc": cm.pixel_accuracy() * scale,
            "pixels": cm.total,
        }
        for name, cm in results.items()
    ]
    if mean_row and len(rows) > 1:
        rows.append(
            {
                "condition": "mean",
                "mIoU": _nanmean([r["mIoU"] for r in rows]),
                "pixel acc": _nanmean([r["pixel acc"] for r in rows]),
                "pixels": sum(r["pixels"] for r in rows),
            }
        )
    return rows


def _nanmean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if finite else math.nan


def _columns(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None) -> list[str]:
    if columns is not None:
        return list(columns)
    out: list[str] = []
    for row in rows:
        out.extend(k for k in row if k not in out)
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def format_markdown_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str] | None = None,
    digits: int = 1,
    missing: str = "-",
) -> str:
    """A GitHub Markdown table; numeric columns right-aligned.

    Args:
        rows: One mapping per row (e.g. from :func:`per_class_rows`).
        columns: Column order (default: keys in first-seen order).
        digits: Decimals for floats.
        missing: Text for NaN and absent cells.

    Returns:
        The table, one line per row, ending with a newline.
    """
    cols = _columns(rows, columns)
    if not cols:
        return ""

    def cell(v: Any) -> str:
        if v is None or (isinstance(v, (float, np.floating)) and math.isnan(v)):
            return missing
        if isinstance(v, (float, np.floating)):
            return f"{float(v):.{digits}f}"
        return str(v).replace("|", "\\|")

    numeric = {c: any(_is_number(r.get(c)) for r in rows) for c in cols}
    body = [[cell(r.get(c)) for c in cols] for r in rows]
    header = [str(c).replace("|", "\\|") for c in cols]
    widths = [max([len(header[i]), 3, *(len(b[i]) for b in body)]) for i in range(len(cols))]

    def line(cells: Sequence[str]) -> str:
        parts = [
            cells[i].rjust(widths[i]) if numeric[cols[i]] else cells[i].ljust(widths[i])
            for i in range(len(cols))
        ]
        return "| " + " | ".join(parts) + " |"

    rule = (
        "| "
        + " | ".join(
            "-" * (w - 1) + ":" if numeric[c] else "-" * w for w, c in zip(widths, cols, strict=True)
        )
        + " |"
    )
    return "\n".join([line(header), rule, *(line(b) for b in body)]) + "\n"


def write_csv(
    path: str | Path, rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None
) -> Path:
    """Write rows as CSV (parent folders created); NaN and absent cells are left empty.

    Args:
        path: Output file.
        rows: One mapping per row.
        columns: Column order (default: keys in first-seen order).

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = _columns(rows, columns)

    def cell(v: Any) -> Any:
        if v is None or (isinstance(v, (float, np.floating)) and math.isnan(v)):
            return ""
        if isinstance(v, (float, np.floating)):
            return f"{float(v):.6g}"
        return v

    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(cols)
        for r in rows:
            writer.writerow([cell(r.get(c)) for c in cols])
    return path


__all__ = [
    "ConfusionMatrix",
    "MetricError",
    "format_markdown_table",
    "per_class_rows",
    "per_condition_rows",
    "write_csv",
]
