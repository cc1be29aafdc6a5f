"""Confusion matrix, IoU / mIoU / pixel accuracy and the result tables."""

from __future__ import annotations

import csv
import math
import re

import numpy as np
import pytest
import torch

from causal_tune_ros.errors import CausalTuneError, ConfigError
from causal_tune_ros.training.metrics import (
    ConfusionMatrix,
    MetricError,
    format_markdown_table,
    per_class_rows,
    per_condition_rows,
    write_csv,
)

# Hand-worked 2x3 example (K = 3, 255 = ignore):
#   target  [[0, 1, 1],      pred [[0, 1, 0],
#            [2, 255, 0]]          [2, 2, 0]]
# Scored pixels: (t0,p0) (t1,p1) (t1,p0) (t2,p2) (t0,p0); the ignored pixel's prediction 2 does not count.
#   class 0: TP 2, FP 1 (the t1->p0 pixel), FN 0 -> IoU 2/3
#   class 1: TP 1, FP 0, FN 1 (t1->p0)              -> IoU 1/2
#   class 2: TP 1, FP 0, FN 0                        -> IoU 1
#   mIoU = (2/3 + 1/2 + 1) / 3 = 13/18; pixel accuracy = 4/5
TARGET = np.array([[0, 1, 1], [2, 255, 0]], np.uint8)
PRED = np.array([[0, 1, 0], [2, 2, 0]], np.uint8)


def test_hand_worked_example() -> None:
    cm = ConfusionMatrix(3).update(PRED, TARGET)
    np.testing.assert_array_equal(cm.matrix, [[2, 0, 0], [1, 1, 0], [0, 0, 1]])
    np.testing.assert_allclose(cm.iou(), [2 / 3, 1 / 2, 1.0])
    assert cm.miou() == pytest.approx(13 / 18)
    assert cm.pixel_accuracy() == pytest.approx(4 / 5)
    assert cm.total == 5
    np.testing.assert_allclose(cm.class_accuracy(), [1.0, 0.5, 1.0])


def test_absent_class_is_nan_and_left_out_of_the_mean() -> None:
    cm = ConfusionMatrix(4).update(PRED, TARGET)
    iou = cm.iou()
    assert math.isnan(iou[3])
    assert cm.miou() == pytest.approx(13 / 18)
    empty = ConfusionMatrix(4)
    assert math.isnan(empty.miou()) and math.isnan(empty.pixel_accuracy())


def _reference_iou(pred: np.ndarray, target: np.ndarray, k: int, ignore: int) -> np.ndarray:
    """IoU by set counting per class, independent of the matrix."""
    valid = target != ignore
    out = np.full(k, np.nan)
    for c in range(k):
        inter = np.sum((pred == c) & (target == c) & valid)
        union = np.sum(((pred == c) | (target == c)) & valid)
        if union:
            out[c] = inter / union
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_maps_match_independent_references(seed: int) -> None:
    rng = np.random.default_rng(seed)
    k = 19
    target = rng.integers(0, k, (3, 40, 50)).astype(np.uint8)
    target[rng.random(target.shape) < 0.2] = 255
    target[target == 7] = 255  # one class never labelled ...
    pred = rng.integers(0, k, target.shape).astype(np.uint8)
    pred[pred == 11] = 12  # ... and one never predicted
    cm = ConfusionMatrix(k, ignore_index=255)
    for p, t in zip(pred, target, strict=True):
        cm.update(p, t)
    valid = target != 255
    ref_matrix = np.bincount(target[valid].astype(np.int64) * k + pred[valid], minlength=k * k).reshape(k, k)
    np.testing.assert_array_equal(cm.matrix, ref_matrix)
    ref_iou = _reference_iou(pred, target, k, 255)
    np.testing.assert_allclose(cm.iou(), ref_iou, equal_nan=True)
    assert cm.miou() == pytest.approx(np.nanmean(ref_iou))
    assert cm.pixel_accuracy() == pytest.approx(np.mean(pred[valid] == target[valid]))


def test_torch_inputs_count_like_numpy() -> None:
    rng = np.random.default_rng(5)
    target = rng.integers(0, 5, (2, 9, 7))
    target[0, 0, :3] = 255
    pred = rng.integers(0, 5, (2, 9, 7))
    a = ConfusionMatrix(5).update(pred, target)
    b = ConfusionMatrix(5).update(torch.from_numpy(pred), torch.from_numpy(target).to(torch.uint8))
    np.testing.assert_array_equal(a.matrix, b.matrix)


def test_merge_and_add_equal_one_big_update() -> None:
    rng = np.random.default_rng(3)
    t1, t2 = rng.integers(0, 4, (2, 6, 6))
    p1, p2 = rng.integers(0, 4, (2, 6, 6))
    whole = ConfusionMatrix(4).update(np.concatenate([p1, p2]), np.concatenate([t1, t2]))
    a, b = ConfusionMatrix(4).update(p1, t1), ConfusionMatrix(4).update(p2, t2)
    summed = a + b
    np.testing.assert_array_equal(summed.matrix, whole.matrix)
    np.testing.assert_array_equal(a.matrix, ConfusionMatrix(4).update(p1, t1).matrix)  # + leaves a alone
    a.merge(b)
    np.testing.assert_array_equal(a.matrix, whole.matrix)
    rebuilt = ConfusionMatrix.from_matrix(torch.from_numpy(whole.matrix))
    assert rebuilt.miou() == pytest.approx(whole.miou())
    with pytest.raises(MetricError, match="4 classes"):
        a.merge(ConfusionMatrix(5))


def test_bad_inputs_raise_clear_errors() -> None:
    cm = ConfusionMatrix(3)
    with pytest.raises(MetricError, match="shape"):
        cm.update(np.zeros((2, 3), np.uint8), np.zeros((3, 2), np.uint8))
    with pytest.raises(MetricError, match=re.escape("label holds ids outside 0..2 or 255: 7")):
        cm.update(np.zeros((1, 2), np.uint8), np.array([[7, 0]], np.uint8))
    with pytest.raises(MetricError, match=re.escape("prediction holds ids outside 0..2: 9")):
        cm.update(np.array([[9, 0]]), np.array([[1, 0]]))
    with pytest.raises(MetricError, match="integer"):
        cm.update(np.zeros((1, 2), np.float32), np.zeros((1, 2), np.uint8))
    # A prediction out of range on an ignored pixel is not scored, so it is not an error.
    cm.update(np.array([[9, 0]]), np.array([[255, 0]]))
    assert cm.total == 1
    assert isinstance(MetricError("x"), CausalTuneError)
    with pytest.raises(ConfigError):
        ConfusionMatrix(0)
    with pytest.raises(ConfigError, match="is a class id"):
        ConfusionMatrix(19, ignore_index=3)


def test_markdown_and_csv_tables(tmp_path) -> None:
    snow = ConfusionMatrix(3).update(PRED, TARGET)
    night = ConfusionMatrix(3).update(np.array([[1, 1]]), np.array([[1, 0]]))  # class 0 IoU 0, 1: 1/2
    names = ["road", "sidewalk", "building"]
    rows = per_class_rows({"snow": snow, "night": night}, names)
    assert [r["class"] for r in rows] == [*names, "mIoU"]
    assert rows[0]["snow"] == pytest.approx(200 / 3) and rows[0]["night"] == 0.0
    assert math.isnan(rows[2]["night"])
    md = format_markdown_table(rows)
    lines = md.strip().splitlines()
    assert lines[0].split("|")[1:4] == [" class    ", "  snow ", " night "]
    assert lines[1].startswith("| --------") and lines[1].endswith("---: |")
    assert "| road     |  66.7 |   0.0 |" in md
    assert "| building | 100.0 |     - |" in md
    assert "| mIoU     |  72.2 |  25.0 |" in md

    cond = per_condition_rows({"snow": snow, "night": night})
    assert [r["condition"] for r in cond] == ["snow", "night", "mean"]
    assert cond[-1]["mIoU"] == pytest.approx((1300 / 18 + 25.0) / 2)
    assert cond[0]["pixels"] == 5 and cond[-1]["pixels"] == 7

    path = write_csv(tmp_path / "out" / "per_class.csv", rows)
    with path.open(newline="") as fh:
        back = list(csv.reader(fh))
    assert back[0] == ["class", "snow", "night"]
    assert back[1][0] == "road" and float(back[1][1]) == pytest.approx(66.6667, abs=1e-3)
    assert back[3] == ["building", "100", ""]
