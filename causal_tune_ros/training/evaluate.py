"""Evaluation: per-class IoU, mIoU and pixel accuracy per condition, for one or several band settings.

:func:`evaluate` scores a model on a data set under one band; :func:`evaluate_bands` scores several band
settings (and the no-band-pass ablation, ``None``) in one pass over the data, so each image is read and
decoded once. Inference is whole-image or sliding-window (the paper's window 512, stride 341, logits
averaged where windows overlap). Predictions are always scored at the label's resolution.

Under ``torchrun`` every rank evaluates a disjoint share of the samples and the confusion matrices are
summed with an all-reduce, so the result equals a single-process run.

Results (:mod:`~causal_tune_ros.training.eval_result`), inference (:mod:`~causal_tune_ros.training.inference`)
and tables (:mod:`~causal_tune_ros.training.eval_tables`) live beside this module; their public names are
importable from here too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from causal_tune_ros.classes import IGNORE_ID
from causal_tune_ros.errors import ConfigError, DatasetError
from causal_tune_ros.progress import progress_bar
from causal_tune_ros.training.distributed import DistInfo, all_gather_object, all_reduce_sum, shard_indices
from causal_tune_ros.training.eval_result import ALL, MEAN, UNKNOWN, BandSetting, EvalResult, band_label
from causal_tune_ros.training.eval_tables import (
    CSV_FIELDS,
    format_class_table,
    format_condition_table,
    format_csv,
    format_markdown,
    write_tables,
)
from causal_tune_ros.training.inference import model_logits, predict_logits, sliding_window_logits
from causal_tune_ros.training.metrics import ConfusionMatrix


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
        progress: Show progress (rank 0 only): a bar on a terminal, log lines otherwise.
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
    bar = progress_bar(
        len(indices), f"eval {dataset_name}".strip(), unit="img", enabled=progress and info.is_main
    )

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
        bar.update(len(pending))
        pending.clear()

    try:
        for index, item in _iterate(dataset, indices, num_workers):
            image, labels, cond = _check_item(item, index)
            if wanted is not None and cond not in wanted:
                bar.update(1)
                continue
            first_seen.setdefault(cond, index)
            if pending and (pending[0][0].shape != image.shape or len(pending) >= batch_size):
                flush()
            pending.append((image, labels, cond))
        flush()
    finally:
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


__all__ = [
    "ALL",
    "CSV_FIELDS",
    "MEAN",
    "UNKNOWN",
    "BandSetting",
    "EvalResult",
    "band_label",
    "evaluate",
    "evaluate_bands",
    "format_class_table",
    "format_condition_table",
    "format_csv",
    "format_markdown",
    "model_logits",
    "predict_logits",
    "sliding_window_logits",
    "write_tables",
]
