"""`causal-tune replay --weather auto` follows a real change of weather within a fraction of a second.

The drive is the one `causal-tune synth` writes: 20 snow frames then 20 night frames at 10 Hz. With a
hysteresis of 10 frames the replay applied the right condition to 17 of 40 frames (and to 1 of 20 with
``--every 2``); with the hysteresis in seconds of message time it must be right on at least 85 %.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rosbags.rosbag2 import Reader

from causal_tune_ros.bags import deserialize
from causal_tune_ros.cli import main


@pytest.fixture(scope="module")
def snow_night_drive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("weather") / "drive.mcap"
    assert main(["synth", "-o", str(path), "--conditions", "snow,night", "--frames", "20"]) == 0
    return path


def _applied_vs_truth(bag: Path) -> list[tuple[str, str]]:
    """``(condition the replay applied, true condition)`` per processed frame, matched by log time."""
    truth: dict[int, str] = {}
    applied: dict[int, str] = {}
    with Reader(bag) as reader:
        wanted = [c for c in reader.connections if c.topic in ("/weather", "/camera/weather")]
        for conn, t, raw in reader.messages(wanted):
            (truth if conn.topic == "/weather" else applied)[t] = deserialize(raw, conn.msgtype).data
    return [(applied[t], truth[t]) for t in sorted(applied)]


@pytest.mark.parametrize(("every", "frames"), [(1, 40), (2, 20)])
def test_auto_weather_applies_the_right_condition_on_85_percent_of_frames(
    snow_night_drive: Path, tmp_path: Path, tiny_checkpoint: Path, every: int, frames: int, capsys
) -> None:
    out = tmp_path / "seg.mcap"
    args = ["replay", str(snow_night_drive), "-o", str(out), "--checkpoint", str(tiny_checkpoint)]
    args += ["--backend", "eager", "--input-size", "28x42", "--weather", "auto", "--every", str(every)]
    assert main([*args, "--quiet"]) == 0
    pairs = _applied_vs_truth(out)
    assert len(pairs) == frames
    right = sum(applied == truth for applied, truth in pairs)
    assert right >= 0.85 * frames, (right, pairs)
    # Both conditions are reached, and the summary's per-condition counts are what was applied.
    applied = [a for a, _ in pairs]
    assert applied[-1] == "night" and "snow" in applied
    printed = capsys.readouterr().out
    assert f"night: {applied.count('night')}" in printed and f"snow: {applied.count('snow')}" in printed
