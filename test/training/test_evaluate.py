"""Evaluation: sliding window vs whole image, several bands in one pass, tables, the eval command."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from causal_tune_ros import cli
from causal_tune_ros.band import Band, parse_band
from causal_tune_ros.classes import load_classes
from causal_tune_ros.errors import ConfigError
from causal_tune_ros.model.checkpoint import save_checkpoint
from causal_tune_ros.training.config import config_from_dict
from causal_tune_ros.training.datasets import SyntheticDataset
from causal_tune_ros.training.eval_command import parse_data_spec
from causal_tune_ros.training.evaluate import (
    ALL,
    MEAN,
    evaluate,
    evaluate_bands,
    format_markdown,
    predict_logits,
    sliding_window_logits,
    write_tables,
)
from causal_tune_ros.training.trainer import build_model

from .training_support import H, W, tiny_model

NAMES = load_classes().names

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model() -> nn.Module:
    cfg = config_from_dict({"model": tiny_model()})
    m = build_model(cfg.model, len(NAMES), seed=0).eval()
    with torch.no_grad():
        # A visible refinement, so that band settings change the output (init is 1e-3: nearly the backbone).
        m.tuner.scale.fill_(2.0)
    return m


@pytest.fixture(scope="module")
def dataset() -> SyntheticDataset:
    return SyntheticDataset(
        num_samples=4, conditions=["clear", "fog"], seed=0, height=H, width=W, split="val"
    )


def test_sliding_window_equals_whole_image_when_the_window_is_the_image(
    model: nn.Module, dataset: SyntheticDataset
) -> None:
    images = torch.rand(2, 3, H, W)
    band = Band()
    with torch.no_grad():
        whole = predict_logits(model, images, band)
        slid = predict_logits(model, images, band, sliding_window=True, window=(H, W), stride=(H, W))
    assert whole.shape == (2, len(NAMES), H, W)
    assert torch.equal(whole, slid)
    a = evaluate(model, dataset, band, class_names=NAMES)
    c = evaluate(model, dataset, band, class_names=NAMES, sliding_window=True, window=(H, W), stride=(H, W))
    assert np.array_equal(a.matrices[ALL].matrix, c.matrices[ALL].matrix)


class _Recorder(nn.Module):
    """Constant logits; records the window shapes it is called with."""

    def __init__(self, k: int = 3) -> None:
        super().__init__()
        self.k = k
        self.calls: list[tuple[int, int]] = []
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, images: torch.Tensor, band: torch.Tensor | None) -> torch.Tensor:
        self.calls.append(tuple(images.shape[-2:]))
        b, _, h, w = images.shape
        return torch.ones(b, self.k, h // 4, w // 4) * 2.0


def test_sliding_window_tiles_the_image_and_averages_overlaps() -> None:
    probe = _Recorder()
    logits = sliding_window_logits(probe, torch.rand(1, 3, 70, 100), Band(), window=(56, 56), stride=(28, 28))
    # rows: ceil((70 - 56) / 28) + 1 = 2, cols: ceil((100 - 56) / 28) + 1 = 3.
    assert probe.calls == [(56, 56)] * 6
    assert logits.shape == (1, 3, 70, 100)
    assert torch.allclose(logits, torch.full_like(logits, 2.0))  # every pixel covered, sums divided by counts
    probe.calls.clear()
    small = sliding_window_logits(probe, torch.rand(1, 3, 30, 40), Band(), window=(56, 56), stride=(28, 28))
    assert probe.calls == [(42, 42)]  # one window, padded up to a multiple of 14
    assert small.shape == (1, 3, 30, 40)


def test_scores_match_an_independent_confusion_matrix(model: nn.Module, dataset: SyntheticDataset) -> None:
    band = Band()
    result = evaluate(model, dataset, band, class_names=NAMES)
    k = len(NAMES)
    expected = np.zeros((k, k), np.int64)
    for i in range(len(dataset)):
        item = dataset[i]
        x = torch.from_numpy(item["image"]).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            out = model(x, torch.tensor(band.as_tuple()))
        pred = F.interpolate(out, size=(H, W), mode="bilinear", align_corners=False).argmax(1)[0].numpy()
        lab = item["labels"].astype(np.int64)
        valid = lab != 255
        expected += np.bincount(lab[valid] * k + pred[valid], minlength=k * k).reshape(k, k)
    assert np.array_equal(result.matrices[ALL].matrix, expected)
    assert result.num_images == {"clear": 2, "fog": 2, ALL: 4}
    assert result.conditions == ["clear", "fog"]
    merged = result.matrices["clear"].matrix + result.matrices["fog"].matrix
    assert np.array_equal(merged, expected)
    # Batched forward passes and a reader process give the same counts.
    batched = evaluate(model, dataset, band, class_names=NAMES, batch_size=3, num_workers=1)
    assert np.array_equal(batched.matrices[ALL].matrix, expected)


def test_several_bands_give_one_result_each(model: nn.Module, dataset: SyntheticDataset) -> None:
    bands = [Band(0.2, 0.7), Band(0.05, 0.3), None]
    results = evaluate_bands(model, dataset, bands, class_names=NAMES)
    assert [r.band for r in results] == bands
    assert [r.label for r in results] == ["band 0.2-0.7", "band 0.05-0.3", "no band-pass"]
    single = evaluate(model, dataset, Band(0.05, 0.3), class_names=NAMES)
    assert np.array_equal(single.matrices[ALL].matrix, results[1].matrices[ALL].matrix)
    images = torch.from_numpy(dataset[0]["image"]).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        outs = [predict_logits(model, images, b) for b in bands]
    assert not torch.allclose(outs[0], outs[1]) and not torch.allclose(outs[0], outs[2])
    for r in results:
        assert set(r.matrices) == {"clear", "fog", ALL}
        assert 0.0 <= r.miou() <= 1.0 and 0.0 <= r.pixel_accuracy() <= 1.0


def test_condition_filter_and_order(model: nn.Module, dataset: SyntheticDataset) -> None:
    r = evaluate(model, dataset, Band(), class_names=NAMES, conditions=["fog"])
    assert r.conditions == ["fog"] and r.num_images == {"fog": 2, ALL: 2}
    assert np.array_equal(r.matrices["fog"].matrix, r.matrices[ALL].matrix)
    r2 = evaluate(model, dataset, Band(), class_names=NAMES, conditions=["fog", "clear"])
    assert r2.conditions == ["fog", "clear"]


def test_tables_are_written(model: nn.Module, dataset: SyntheticDataset, tmp_path: Path) -> None:
    results = evaluate_bands(
        model, dataset, [Band(), None], class_names=NAMES, dataset_name="synthetic (val)"
    )
    paths = write_tables(results, tmp_path / "out", stem="synthetic_val")
    md = paths["markdown"].read_text()
    assert "## synthetic (val)" in md
    assert "band 0.2-0.7 mIoU" in md and "no band-pass mIoU" in md
    for cond in ("clear", "fog", "mean", "all"):
        assert f"| {cond} |" in md
    with paths["csv"].open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["band"], r["condition"]) for r in rows] == [
        (b, c) for b in ("band 0.2-0.7", "no band-pass") for c in ("clear", "fog", "mean", "all")
    ]
    rows = [r for r in rows if r["condition"] != MEAN]  # checked in test_mean_row_is_the_mean_of_conditions
    for row, (res, cond) in zip(rows, [(r, c) for r in results for c in ("clear", "fog", ALL)], strict=True):
        assert float(row["miou"]) == pytest.approx(res.miou(cond), abs=1e-6)
        assert float(row["pixel_accuracy"]) == pytest.approx(res.pixel_accuracy(cond), abs=1e-6)
        assert float(row["iou_road"]) == pytest.approx(res.iou(cond)[0], abs=1e-6)
    assert format_markdown(results) == md


def test_mean_row_is_the_mean_of_the_condition_rows(
    model: nn.Module, dataset: SyntheticDataset, tmp_path: Path
) -> None:
    results = evaluate_bands(model, dataset, [Band(), Band(0.1, 0.5), None], class_names=NAMES)
    paths = write_tables(results, tmp_path, stem="t")
    with paths["csv"].open(newline="") as f:
        rows = list(csv.DictReader(f))
    md_rows = {
        line.split("|")[1].strip(): [c.strip() for c in line.split("|")[3:-1]]
        for line in paths["markdown"].read_text().splitlines()
        if line.startswith("| ") and line.split("|")[1].strip() in ("clear", "fog", "mean", "all")
    }
    for k, r in enumerate(results):
        by_cond = {row["condition"]: row for row in rows if row["band"] == r.label}
        conditions = [float(by_cond[c]["miou"]) for c in ("clear", "fog")]
        assert float(by_cond["mean"]["miou"]) == pytest.approx(sum(conditions) / 2, abs=2e-6)
        assert r.summary()["mean"]["miou"] == pytest.approx((r.miou("clear") + r.miou("fog")) / 2, abs=1e-12)
        # Markdown (percent, one decimal): the mean row is the mean of the condition rows.
        mean_pct = float(md_rows["mean"][2 * k])
        assert mean_pct == pytest.approx(100 * (r.miou("clear") + r.miou("fog")) / 2, abs=0.051)
    # Pooling pixels ("all") is a different number from the mean of conditions here.
    assert any(abs(r.mean_miou() - r.miou(ALL)) > 1e-6 for r in results)


def test_eval_command_end_to_end(
    model: nn.Module, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = save_checkpoint(
        tmp_path / "model.safetensors", model, include_backbone=True, class_names=NAMES, band=Band(0.2, 0.7)
    )
    out = tmp_path / "eval"
    code = cli.main(
        [
            "eval",
            "--checkpoint",
            str(ckpt),
            "--data",
            "synthetic::val",
            "--data-option",
            "num_samples=3",
            "--data-option",
            f"height={H}",
            "--data-option",
            f"width={W}",
            "--data-option",
            "conditions=[clear, night, snow]",
            "--band",
            "0.2,0.7",
            "--band",
            "0.1,0.5",
            "--no-band-pass",
            "--conditions",
            "night",
            "clear",
            "--sliding-window",
            "--window",
            "56",
            "--stride",
            "42",
            "-o",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "| night |" in printed and "no band-pass aAcc" in printed
    assert (out / "synthetic_val.md").is_file() and (out / "synthetic_val.csv").is_file()
    summary = json.loads((out / "summary.json").read_text())
    (entries,) = summary["datasets"].values()
    assert [e["label"] for e in entries] == ["band 0.2-0.7", "band 0.1-0.5", "no band-pass"]
    assert all(e["all"]["images"] == 3 for e in entries)
    for e in entries:  # the paper's "mean": the mean of the condition mIoUs, beside each condition
        assert e["mean"]["miou"] == pytest.approx((e["night"]["miou"] + e["clear"]["miou"]) / 2, abs=1e-12)
    # --conditions reaches the reader: only night and clear are rendered (night first, as asked).
    assert [k for k in entries[0] if k not in ("band", "label")] == ["night", "clear", "all", "mean"]
    assert (entries[0]["night"]["images"], entries[0]["clear"]["images"]) == (2, 1)
    assert summary["sliding_window"] == {"window": [56, 56], "stride": [42, 42]}


def test_eval_command_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["eval", "--checkpoint", str(tmp_path / "none.safetensors"), "--data", "synthetic"]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="r_low,r_high"):
        parse_band("0.2")
    with pytest.raises(ConfigError, match="0 < low < high"):
        parse_band("0.7,0.2")
    assert parse_data_spec("acdc:/data/acdc:val") == ("acdc", "/data/acdc", "val")
    assert parse_data_spec("synthetic") == ("synthetic", None, "val")
    assert parse_data_spec("synthetic::test") == ("synthetic", None, "test")
    assert parse_data_spec("cityscapes:/d/cs") == ("cityscapes", "/d/cs", "val")
