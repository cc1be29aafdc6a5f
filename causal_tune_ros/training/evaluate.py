"""Evaluation: per-class IoU, mIoU and pixel accuracy per condition, for one or several band settings.

:func:`evaluate` scores a model on a data set under one band; :func:`evaluate_bands` scores several band
settings (and the no-band-pass ablation, ``None``) in one pass over the data, so each image is read and
decoded once. Inference is whole-image or sliding-window (the paper's window 512, stride 341, logits
averaged where windows overlap). Predictions are always scored at the label's resolution.

Under ``torchrun`` every rank evaluates a disjoint share of the samples and the confusion matrices are
summed with an all-reduce, so the result equals a single-process run.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from causal_tune_ros.band import Band
from causal_tune_ros.classes import IGNORE_ID
from causal_tune_ros.errors import ConfigError, DatasetError
from causal_tune_ros.training.augment import PATCH_SIZE, fit_size
from causal_tune_ros.training.distributed import DistInfo, all_gather_object, all_reduce_sum, shard_indices
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


# ---------------------------------------------------------------------------------------------- results


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


# ---------------------------------------------------------------------------------------------- inference


def _band_tensor(band: BandSetting, device: torch.device) -> torch.Tensor | None:
    return None if band is None else torch.tensor(band.as_tuple(), dtype=torch.float32, device=device)


def model_logits(model: nn.Module, images: torch.Tensor, band: BandSetting) -> torch.Tensor:
    """Logits at the input's resolution for any input size (padded to a multiple of 14 internally).

    Args:
        model: A ``CausalTuneSegmenter`` (or anything with ``forward(images, band)`` at 1/4 resolution).
        images: ``(B, 3, H, W)`` float in [0, 1].
        band: The band, or ``None`` to switch the band-pass off (the ablation).

    Returns:
        ``(B, K, H, W)`` float32 logits.
    """
    h, w = images.shape[-2:]
    ph, pw = (-h) % PATCH_SIZE, (-w) % PATCH_SIZE
    if ph or pw:
        # Bottom/right zero padding, cut off again below: the model needs sides that are multiples of 14.
        images = F.pad(images, (0, pw, 0, ph))
    # band None switches the model's band-pass off (the whole spectrum reaches the tokens).
    logits = model(images, _band_tensor(band, images.device))
    logits = F.interpolate(logits.float(), size=images.shape[-2:], mode="bilinear", align_corners=False)
    return logits[..., :h, :w]


def sliding_window_logits(
    model: nn.Module,
    images: torch.Tensor,
    band: BandSetting,
    window: tuple[int, int] = (512, 512),
    stride: tuple[int, int] = (341, 341),
) -> torch.Tensor:
    """Sliding-window inference with logits averaged over overlapping windows (mmseg ``slide`` mode).

    Windows start every ``stride`` pixels; the last row/column of windows is shifted back to end at the
    image border, and an image smaller than the window is one (padded) window.

    Args:
        model: See :func:`model_logits`.
        images: ``(B, 3, H, W)`` float in [0, 1].
        band: The band, or ``None`` (no band-pass).
        window: ``(h, w)`` window size.
        stride: ``(h, w)`` stride, at most the window.

    Returns:
        ``(B, K, H, W)`` float32 logits.

    Raises:
        ConfigError: For a non-positive window or stride.
    """
    (wh, ww), (sh, sw) = window, stride
    if min(wh, ww, sh, sw) <= 0:
        raise ConfigError(f"window {window} and stride {stride} must be positive")
    b, _, h, w = images.shape
    rows = max(h - wh + sh - 1, 0) // sh + 1
    cols = max(w - ww + sw - 1, 0) // sw + 1
    total: torch.Tensor | None = None
    count = torch.zeros((1, 1, h, w), dtype=torch.float32, device=images.device)
    for r in range(rows):
        for c in range(cols):
            y2, x2 = min(r * sh + wh, h), min(c * sw + ww, w)
            y1, x1 = max(y2 - wh, 0), max(x2 - ww, 0)
            logits = model_logits(model, images[:, :, y1:y2, x1:x2], band)
            if total is None:
                total = torch.zeros((b, logits.shape[1], h, w), dtype=torch.float32, device=images.device)
            total[:, :, y1:y2, x1:x2] += logits
            count[:, :, y1:y2, x1:x2] += 1
    assert total is not None  # at least one window always runs
    return total / count


def predict_logits(
    model: nn.Module,
    images: torch.Tensor,
    band: BandSetting,
    *,
    out_size: tuple[int, int] | None = None,
    input_size: tuple[int, int] | None = None,
    sliding_window: bool = False,
    window: tuple[int, int] = (512, 512),
    stride: tuple[int, int] = (341, 341),
) -> torch.Tensor:
    """Logits for a batch, resized to ``out_size`` (default: the input's size).

    Args:
        model: See :func:`model_logits`.
        images: ``(B, 3, H, W)`` float in [0, 1].
        band: The band, or ``None`` (no band-pass).
        out_size: ``(h, w)`` of the returned logits (the label size).
        input_size: Resize images into this ``(h, w)`` box, keeping the aspect ratio, before inference
            (``None``: native size).
        sliding_window: Sliding-window instead of whole-image inference.
        window: Sliding-window size.
        stride: Sliding-window stride.

    Returns:
        ``(B, K, *out_size)`` float32 logits.
    """
    out_size = tuple(out_size or images.shape[-2:])  # type: ignore[assignment]
    if input_size is not None:
        size = fit_size(tuple(images.shape[-2:]), tuple(input_size))
        if size != tuple(images.shape[-2:]):
            images = F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=True)
    if sliding_window:
        logits = sliding_window_logits(model, images, band, window, stride)
    else:
        logits = model_logits(model, images, band)
    if tuple(logits.shape[-2:]) != out_size:
        logits = F.interpolate(logits, size=out_size, mode="bilinear", align_corners=False)
    return logits


# ---------------------------------------------------------------------------------------------- evaluation


def _autocast(device: torch.device, amp: str) -> contextlib.AbstractContextManager[Any]:
    if amp == "off" or device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def _iterate(dataset: Any, indices: Sequence[int], num_workers: int) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(index, item)`` for the given indices, optionally loaded by worker processes."""
    if num_workers <= 0:
        for i in indices:
            yield i, dataset[i]
        return
    loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(dataset, list(indices)),
        batch_size=None,
        num_workers=num_workers,
        collate_fn=_identity,
    )
    yield from zip(indices, loader, strict=True)


def _identity(item: Any) -> Any:
    return item


def _check_item(item: Any, index: int) -> tuple[np.ndarray, np.ndarray, str]:
    try:
        image, labels = np.asarray(item["image"]), np.asarray(item["labels"])
        condition = str(item.get("condition") or UNKNOWN)
    except (KeyError, TypeError) as exc:
        raise DatasetError(f"sample {index}: expected dict(image, labels, condition), got {exc}") from exc
    if image.ndim != 3 or image.shape[2] != 3 or labels.shape != image.shape[:2]:
        raise DatasetError(f"sample {index}: image {image.shape} and labels {labels.shape} do not match")
    return image, labels, condition


@torch.no_grad()
def evaluate_bands(
    model: nn.Module,
    dataset: Any,
    bands: Sequence[BandSetting],
    *,
    class_names: Sequence[str] | None = None,
    num_classes: int | None = None,
    ignore_index: int = IGNORE_ID,
    sliding_window: bool = False,
    window: tuple[int, int] = (512, 512),
    stride: tuple[int, int] = (341, 341),
    input_size: tuple[int, int] | None = None,
    batch_size: int = 1,
    max_samples: int | None = None,
    conditions: Sequence[str] | None = None,
    device: torch.device | str | None = None,
    amp: str = "off",
    num_workers: int = 0,
    progress: bool = False,
    dist_info: DistInfo | None = None,
    dataset_name: str = "",
) -> list[EvalResult]:
    """Score a model under several band settings in one pass over the data.

    Args:
        model: A ``CausalTuneSegmenter`` (put in eval mode here and restored afterwards).
        dataset: Sized, indexable; items ``dict(image=(H, W, 3) uint8 RGB, labels=(H, W) uint8, condition)``.
        bands: Band settings; ``None`` is the no-band-pass ablation.
        class_names: Names in train-id order (default ``class_0 ...``).
        num_classes: Number of classes (default ``len(class_names)`` or the model's ``num_classes``).
        ignore_index: Label value that is not scored.
        sliding_window: Sliding-window inference (else whole image).
        window: Sliding-window ``(h, w)``.
        stride: Sliding-window stride ``(h, w)``.
        input_size: Resize images into this ``(h, w)`` box (aspect ratio kept) for inference (``None``:
            native size, padded to a multiple of 14).
        batch_size: Images per forward pass (consecutive images of equal size are batched).
        max_samples: Only the first N samples.
        conditions: Only these conditions, in this table order (default: all, in order of appearance).
        device: Compute device (default: the model's).
        amp: ``off``, ``bf16`` or ``fp16`` autocast on CUDA.
        num_workers: DataLoader worker processes reading samples.
        progress: Show a tqdm bar (rank 0 only).
        dist_info: Under ``torchrun``: this rank's :class:`DistInfo`; samples are sharded and the confusion
            matrices all-reduced (every rank returns the same results).
        dataset_name: Name shown in tables.

    Returns:
        One :class:`EvalResult` per band setting, in the order given.

    Raises:
        ConfigError: Empty ``bands`` or an impossible setting.
        DatasetError: An empty data set or a malformed sample.
    """
    if not bands:
        raise ConfigError("evaluate needs at least one band setting")
    info = dist_info or DistInfo()
    inner = getattr(model, "module", model)
    if device is None:
        device = next(inner.parameters()).device
    device = torch.device(device)
    if class_names is None:
        k = num_classes or int(getattr(inner, "num_classes", 0))
        if k <= 0:
            raise ConfigError("evaluate needs class_names or num_classes")
        class_names = [f"class_{i}" for i in range(k)]
    class_names = tuple(class_names)
    num_classes = num_classes or len(class_names)
    if num_classes != len(class_names):
        raise ConfigError(f"num_classes {num_classes} != {len(class_names)} class names")
    n = len(dataset)
    if max_samples is not None:
        n = min(n, max_samples)
    if n == 0:
        raise DatasetError(f"data set {dataset_name or ''} is empty: nothing to evaluate".replace("  ", " "))
    wanted = list(conditions) if conditions else None

    matrices: list[dict[str, ConfusionMatrix]] = [{} for _ in bands]
    counts: dict[str, int] = {}
    first_seen: dict[str, int] = {}
    was_training = inner.training
    model.eval()
    indices = shard_indices(n, info)
    bar = None
    if progress and info.is_main:
        from tqdm import tqdm

        bar = tqdm(total=len(indices), desc=f"eval {dataset_name}".strip(), unit="img", dynamic_ncols=True)

    pending: list[tuple[np.ndarray, np.ndarray, str]] = []

    def flush() -> None:
        if not pending:
            return
        images = np.stack([p[0] for p in pending])
        batch = torch.from_numpy(images).to(device).permute(0, 3, 1, 2).float().div_(255.0)
        label_size = pending[0][1].shape
        for b_idx, band in enumerate(bands):
            with _autocast(device, amp):
                logits = predict_logits(
                    model,
                    batch,
                    band,
                    out_size=label_size,
                    input_size=input_size,
                    sliding_window=sliding_window,
                    window=window,
                    stride=stride,
                )
            preds = logits.argmax(1).to(torch.uint8).cpu().numpy()
            for pred, (_, labels, cond) in zip(preds, pending, strict=True):
                cm = matrices[b_idx].get(cond)
                if cm is None:
                    cm = matrices[b_idx][cond] = ConfusionMatrix(num_classes, ignore_index=ignore_index)
                cm.update(pred, labels)  # the ALL matrix is the sum over conditions, formed below
        for _, _, cond in pending:
            counts[cond] = counts.get(cond, 0) + 1
        if bar is not None:
            bar.update(len(pending))
        pending.clear()

    try:
        for index, item in _iterate(dataset, indices, num_workers):
            image, labels, cond = _check_item(item, index)
            if wanted is not None and cond not in wanted:
                if bar is not None:
                    bar.update(1)
                continue
            first_seen.setdefault(cond, index)
            if pending and (pending[0][0].shape != image.shape or len(pending) >= batch_size):
                flush()
            pending.append((image, labels, cond))
        flush()
    finally:
        if bar is not None:
            bar.close()
        model.train(was_training)

    # Every rank must reduce the same conditions in the same order, whatever share of data it saw.
    seen_all: dict[str, int] = {}
    for part in all_gather_object(first_seen, info):
        for cond, idx in part.items():
            seen_all[cond] = min(idx, seen_all.get(cond, idx))
    if wanted is not None:
        order = [c for c in wanted if c in seen_all]
    else:
        order = sorted(seen_all, key=lambda c: seen_all[c])
    if ALL in seen_all:
        raise DatasetError(
            f"{dataset_name or 'the data set'}: a sample's condition is {ALL!r}, a reserved name"
        )
    if not order:
        raise DatasetError(
            f"no sample of {dataset_name or 'the data set'} has a condition in {', '.join(wanted or [])}"
        )
    keys = [*order, ALL]
    stacked = np.zeros((len(bands), len(keys), num_classes, num_classes), dtype=np.int64)
    image_counts = np.zeros(len(keys), dtype=np.int64)
    for k_idx, key in enumerate(keys[:-1]):
        image_counts[k_idx] = counts.get(key, 0)
        for b_idx in range(len(bands)):
            cm = matrices[b_idx].get(key)
            if cm is not None:
                stacked[b_idx, k_idx] = _matrix_of(cm)
    stacked[:, -1] = stacked[:, :-1].sum(axis=1)
    image_counts[-1] = image_counts[:-1].sum()
    stacked = all_reduce_sum(stacked, info)
    image_counts = all_reduce_sum(image_counts, info)

    results = []
    for b_idx, band in enumerate(bands):
        mats = {key: _matrix_from(stacked[b_idx, k_idx], ignore_index) for k_idx, key in enumerate(keys)}
        results.append(
            EvalResult(
                band=band,
                class_names=class_names,
                matrices=mats,
                num_images={key: int(image_counts[k_idx]) for k_idx, key in enumerate(keys)},
                conditions=[c for c in keys if c != ALL],
                dataset=dataset_name,
            )
        )
    return results


def evaluate(model: nn.Module, dataset: Any, band: BandSetting, **kwargs: Any) -> EvalResult:
    """Score a model on a data set under one band setting (see :func:`evaluate_bands` for arguments).

    Args:
        model: A ``CausalTuneSegmenter``.
        dataset: Items ``dict(image, labels, condition)``.
        band: The band, or ``None`` (no band-pass).
        **kwargs: Passed to :func:`evaluate_bands`.

    Returns:
        The :class:`EvalResult`.
    """
    return evaluate_bands(model, dataset, [band], **kwargs)[0]


def _matrix_of(cm: ConfusionMatrix) -> np.ndarray:
    return np.asarray(cm.matrix, dtype=np.int64)


def _matrix_from(matrix: np.ndarray, ignore_index: int) -> ConfusionMatrix:
    return ConfusionMatrix.from_matrix(matrix, ignore_index=ignore_index)


# ---------------------------------------------------------------------------------------------- tables


def _pct(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{100.0 * value:.1f}"


def format_condition_table(results: Sequence[EvalResult]) -> str:
    """Markdown table: one row per condition, ``mean`` (mean of the condition mIoUs) and ``all`` (pooled
    pixels), one column group (mIoU, pixel acc.) per band.

    Args:
        results: Results on the same data set (e.g. from :func:`evaluate_bands`).

    Returns:
        The table, values in percent.
    """
    keys = _condition_keys(results)
    header = ["condition", "images"]
    for r in results:
        header += [f"{r.label} mIoU", f"{r.label} aAcc"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key in keys:
        if key == MEAN:
            row = [MEAN, str(results[0].num_images.get(ALL, 0))]
            for r in results:
                row += [_pct(r.mean_miou()), "-"]
            lines.append("| " + " | ".join(row) + " |")
            continue
        row = [key, str(results[0].num_images.get(key, 0))]
        for r in results:
            if key in r.matrices:
                row += [_pct(r.miou(key)), _pct(r.pixel_accuracy(key))]
            else:
                row += ["-", "-"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def format_class_table(results: Sequence[EvalResult], condition: str = ALL) -> str:
    """Markdown table of per-class IoU (percent) for one condition, one column per band setting."""
    header = ["class", *(r.label for r in results)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    ious = [r.iou(condition) for r in results]
    for c, name in enumerate(results[0].class_names):
        lines.append("| " + " | ".join([name, *(_pct(iou[c]) for iou in ious)]) + " |")
    lines.append("| **mIoU** | " + " | ".join(_pct(r.miou(condition)) for r in results) + " |")
    return "\n".join(lines)


def _condition_keys(results: Sequence[EvalResult]) -> list[str]:
    return [*results[0].conditions, MEAN, ALL]


def format_markdown(results: Sequence[EvalResult], title: str | None = None) -> str:
    """A Markdown report: the per-condition table and the per-class table over all conditions."""
    name = title or results[0].dataset or "evaluation"
    parts = [
        f"## {name}",
        "",
        "Per condition (percent; aAcc = pixel accuracy):",
        "",
        format_condition_table(results),
        "",
        "Per-class IoU over all conditions (percent):",
        "",
        format_class_table(results),
        "",
    ]
    return "\n".join(parts)


CSV_FIELDS = ("dataset", "band", "r_low", "r_high", "condition", "images", "miou", "pixel_accuracy")


def format_csv(results: Sequence[EvalResult]) -> str:
    """CSV text: one row per (band setting, condition) with mIoU, pixel accuracy and every class IoU.

    Values are fractions in [0, 1] (empty for a class that never occurs). The ``mean`` row holds the mean
    of the condition mIoUs only (its pixel accuracy and class IoUs are empty); ``all`` pools the pixels.
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    class_names = results[0].class_names
    writer.writerow([*CSV_FIELDS, *(f"iou_{n.replace(' ', '_')}" for n in class_names)])
    for r in results:
        low, high = ("", "") if r.band is None else r.band.as_tuple()
        for key in _condition_keys([r]):
            if key == MEAN:
                mean = r.mean_miou()
                writer.writerow(
                    [
                        r.dataset,
                        r.label,
                        low,
                        high,
                        MEAN,
                        r.num_images[ALL],
                        "" if math.isnan(mean) else f"{mean:.6f}",
                    ]
                    + [""] * (1 + len(class_names))
                )
                continue
            ious = ["" if math.isnan(v) else f"{v:.6f}" for v in r.iou(key)]
            writer.writerow(
                [
                    r.dataset,
                    r.label,
                    low,
                    high,
                    key,
                    r.num_images[key],
                    f"{r.miou(key):.6f}",
                    f"{r.pixel_accuracy(key):.6f}",
                    *ious,
                ]
            )
    return buf.getvalue()


def write_tables(
    results: Sequence[EvalResult], out_dir: str | Path, stem: str = "results"
) -> dict[str, Path]:
    """Write ``<stem>.md`` and ``<stem>.csv`` into ``out_dir`` (created if needed).

    Returns:
        ``{"markdown": path, "csv": path}``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md, cs = out / f"{stem}.md", out / f"{stem}.csv"
    md.write_text(format_markdown(results), encoding="utf-8")
    cs.write_text(format_csv(results), encoding="utf-8")
    return {"markdown": md, "csv": cs}
