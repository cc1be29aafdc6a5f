"""`causal-tune calibrate`: the band sweep picks the band a hand-built case makes best, keeps the training
band on ties, and writes presets that the loaders read back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from causal_tune_ros.band import Band
from causal_tune_ros.cli import main
from causal_tune_ros.errors import ConfigError
from causal_tune_ros.training.calibrate import band_grid, calibrate_bands, choose_bands, presets_text
from causal_tune_ros.weather import CONDITIONS, load_band_presets

TRAIN = Band(0.2, 0.7)
#: The band each condition's images reward in the hand-built case (clear: none, every band scores equal).
BEST = {"snow": Band(0.1, 0.5), "rain": Band(0.2, 0.5), "fog": Band(0.3, 0.8), "night": TRAIN}
CODE = {c: i for i, c in enumerate(CONDITIONS)}


class BandScorer(nn.Module):
    """Reads the true class from pixel channel 0 and the condition from channel 1; gets a pixel right iff
    its difficulty (channel 2, uniform) is below ``1 - 4 * |band - the condition's best band|``.

    So on every condition but ``clear`` the accuracy falls off with the distance to that condition's
    :data:`BEST` band; on ``clear`` the band does not matter (every band ties).
    """

    num_classes = 3

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))  # gives the model a device

    def forward(self, images: torch.Tensor, band: torch.Tensor | None) -> torch.Tensor:
        label = (images[:, 0] * 255).round().long()
        cond = CONDITIONS[int((images[0, 1, 0, 0] * 255).round())]
        best = BEST.get(cond)
        dist = 0.0 if best is None else float((band - torch.tensor(best.as_tuple())).abs().sum())
        right = images[:, 2] < 1.0 - 4.0 * dist
        pred = torch.where(right, label, (label + 1) % self.num_classes)
        logits = nn.functional.one_hot(pred, self.num_classes).permute(0, 3, 1, 2).float()
        return logits[..., ::4, ::4]  # the segmenter's 1/4 resolution


def _dataset(per_condition: int = 2, size: int = 28) -> list[dict]:
    rng = np.random.default_rng(0)
    items = []
    for cond in CONDITIONS:
        for _ in range(per_condition):
            cells = np.ones((4, 4), dtype=np.uint8)  # constant 4x4 cells: the model's 1/4 resolution
            labels = np.kron(rng.integers(0, 3, (size // 4, size // 4), dtype=np.uint8), cells)
            difficulty = np.kron(rng.integers(0, 256, (size // 4, size // 4), dtype=np.uint8), cells)
            image = np.stack([labels, np.full_like(labels, CODE[cond]), difficulty], axis=-1)
            items.append({"image": image, "labels": labels, "condition": cond})
    return items


def test_calibration_picks_the_band_the_case_makes_best_and_keeps_ties(tmp_path: Path) -> None:
    grid = band_grid([0.1, 0.2, 0.3], [0.5, 0.7, 0.8], TRAIN)
    assert grid[0] == TRAIN and len(grid) == len(set(grid)) == 9
    calibration = calibrate_bands(BandScorer(), _dataset(), grid, TRAIN, num_classes=3)
    assert calibration.chosen["snow"] == BEST["snow"]
    assert calibration.chosen["rain"] == BEST["rain"]
    assert calibration.chosen["fog"] == BEST["fog"]
    assert calibration.chosen["night"] == TRAIN  # the training band is the best one
    assert calibration.chosen["clear"] == TRAIN  # every band ties: the training band stays
    assert len(set(calibration.scores["clear"].values())) == 1
    assert calibration.gain("snow") > 0.2 and calibration.gain("clear") == 0.0

    text = presets_text(calibration, source="hand-built case")
    path = tmp_path / "presets.yaml"
    path.write_text(text, encoding="utf-8")
    assert load_band_presets(path) == calibration.chosen
    snow_line = next(line for line in text.splitlines() if line.strip().startswith("snow:"))
    best, base = calibration.scores["snow"][BEST["snow"]], calibration.scores["snow"][TRAIN]
    assert f"mIoU {100 * best:.1f} % (training band {100 * base:.1f} %)" in snow_line
    assert "training band kept" in next(ln for ln in text.splitlines() if ln.strip().startswith("clear:"))


def test_choose_bands_needs_a_real_gain() -> None:
    scores = {"snow": {TRAIN: 0.30, Band(0.1, 0.5): 0.31}, "fog": {TRAIN: 0.30, Band(0.3, 0.8): 0.30}}
    assert choose_bands(scores, TRAIN)["snow"] == Band(0.1, 0.5)
    assert choose_bands(scores, TRAIN)["fog"] == TRAIN  # a tie keeps the training band
    assert choose_bands(scores, TRAIN, min_gain=0.02)["snow"] == TRAIN
    assert choose_bands(scores, TRAIN)["rain"] == TRAIN  # no images: the training band
    with pytest.raises(ConfigError, match="training band"):
        choose_bands({"snow": {Band(0.1, 0.5): 0.3}}, TRAIN)
    with pytest.raises(ConfigError, match="min_gain"):
        choose_bands(scores, TRAIN, min_gain=-1.0)


def test_calibrate_command_writes_presets_the_loader_reads(
    tmp_path: Path, tiny_checkpoint: Path, capsys
) -> None:
    out = tmp_path / "sub" / "bands.yaml"
    args = ["calibrate", "--checkpoint", str(tiny_checkpoint), "--data", "synthetic::val", "--out", str(out)]
    args += ["--data-option", "num_samples=5", "--data-option", "height=28", "--data-option", "width=42"]
    assert main([*args, "--lows", "0.1,0.2", "--highs", "0.7", "--quiet"]) == 0
    presets = load_band_presets(out)
    assert set(presets) == set(CONDITIONS)
    assert all(b in (TRAIN, Band(0.1, 0.7)) for b in presets.values())
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "training band" in printed
    assert not [p for p in out.parent.iterdir() if p.name != out.name]  # no temporary file left
    assert main([*args, "--lows", "0.9", "--highs", "1.5"]) == 2
    assert "band edges must lie in (0, 1]" in capsys.readouterr().err
