"""The node takes the presets `causal-tune calibrate` writes as its --params-file, and refuses a bad one."""

from __future__ import annotations

from pathlib import Path

import pytest

from causal_tune_ros.band import Band
from causal_tune_ros.errors import ConfigError
from causal_tune_ros.training.calibrate import Calibration, choose_bands, write_presets

from .node_support import NS_PREFIX, node_overrides

TRAIN = Band(0.2, 0.7)


def _calibrated(path: Path) -> Path:
    """A presets file as the calibration writes it: snow gains from a narrower band, the rest ties."""
    scores = {"snow": {TRAIN: 0.10, Band(0.1, 0.5): 0.20}, "fog": {TRAIN: 0.3, Band(0.3, 0.8): 0.3}}
    chosen = choose_bands(scores, TRAIN)
    bands = [TRAIN, Band(0.1, 0.5), Band(0.3, 0.8)]
    calibration = Calibration(TRAIN, bands, scores, {"snow": 4, "fog": 4}, chosen)
    return write_presets(path, calibration, source="test")


@pytest.mark.ros
def test_node_loads_calibrated_presets_and_rejects_a_malformed_file(
    ros_context, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    from causal_tune_ros.node.segmentation_node import SegmentationNode

    good = _calibrated(tmp_path / "bands.yaml")
    node = SegmentationNode(
        namespace=f"{NS_PREFIX}/presets",
        cli_args=["--ros-args", "--params-file", str(good)],
        parameter_overrides=node_overrides(tiny_checkpoint),
    )
    try:
        assert node.get_parameter("weather.bands.snow.low").value == 0.1
        assert node.core.settings.band_for("snow") == Band(0.1, 0.5)
        assert node.core.settings.band_for("fog") == TRAIN  # a tie kept the training band
    finally:
        node.destroy_node()

    bad = tmp_path / "bad.yaml"
    bad.write_text(good.read_text().replace("snow: {low: 0.1, high: 0.5}", "snow: {low: 0.6, high: 0.5}"))
    with pytest.raises(ConfigError, match=r"weather\.bands\.snow"):
        SegmentationNode(
            namespace=f"{NS_PREFIX}/presets_bad",
            cli_args=["--ros-args", "--params-file", str(bad)],
            parameter_overrides=node_overrides(tiny_checkpoint),
        )
