"""`causal-tune replay --bands FILE` takes the presets `causal-tune calibrate` writes; refuses a bad one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from causal_tune_ros.band import Band
from causal_tune_ros.cli import main
from causal_tune_ros.replay import Replayer, ReplayOptions
from causal_tune_ros.training.calibrate import Calibration, choose_bands, write_presets
from causal_tune_ros.weather import load_band_presets

TRAIN = Band(0.2, 0.7)


@pytest.fixture(scope="module")
def snow_fog_drive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("presets") / "drive.mcap"
    assert (
        main(["synth", "-o", str(path), "--conditions", "snow,fog", "--frames", "2", "--size", "56x84"]) == 0
    )
    return path


@pytest.fixture
def calibrated(tmp_path: Path) -> Path:
    scores = {"snow": {TRAIN: 0.10, Band(0.1, 0.5): 0.20}, "fog": {TRAIN: 0.3, Band(0.3, 0.8): 0.35}}
    bands = [TRAIN, Band(0.1, 0.5), Band(0.3, 0.8)]
    calibration = Calibration(TRAIN, bands, scores, {"snow": 4, "fog": 4}, choose_bands(scores, TRAIN))
    return write_presets(tmp_path / "calibrated.yaml", calibration, source="test")


class _Recorder:
    """Wraps a pipeline and records the band of every frame it processes."""

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline
        self.bands: list[Band] = []

    def process(self, rgb: Any, band: Band, **kwargs: Any) -> Any:
        self.bands.append(band)
        return self.pipeline.process(rgb, band, **kwargs)


def test_replay_applies_calibrated_presets(
    snow_fog_drive: Path, calibrated: Path, tiny_pipeline: Any, tmp_path: Path, tiny_checkpoint: Path
) -> None:
    presets = load_band_presets(calibrated)
    recorder = _Recorder(tiny_pipeline)
    options = ReplayOptions(weather="topic", progress=False, topics=["/camera/image_raw"])
    Replayer(recorder, options, band_presets=presets).run(snow_fog_drive, tmp_path / "a.mcap")
    assert recorder.bands == [Band(0.1, 0.5)] * 2 + [Band(0.3, 0.8)] * 2

    args = [
        "replay",
        str(snow_fog_drive),
        "-o",
        str(tmp_path / "b.mcap"),
        "--checkpoint",
        str(tiny_checkpoint),
    ]
    args += ["--backend", "eager", "--input-size", "28x42", "--weather", "topic", "--quiet"]
    assert main([*args, "--bands", str(calibrated)]) == 0


def test_replay_rejects_a_malformed_presets_file(
    snow_fog_drive: Path, calibrated: Path, tmp_path: Path, tiny_checkpoint: Path, capsys
) -> None:
    bad = tmp_path / "bad.yaml"
    hail = "      bands:\n        hail: {low: 0.1, high: 0.2}\n"
    bad.write_text(calibrated.read_text().replace("      bands:\n", hail))
    args = [
        "replay",
        str(snow_fog_drive),
        "-o",
        str(tmp_path / "c.mcap"),
        "--checkpoint",
        str(tiny_checkpoint),
    ]
    assert main([*args, "--bands", str(bad), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "unknown condition(s) hail" in err and str(bad) in err
    assert not (tmp_path / "c.mcap").exists()
