"""`causal-tune fleet` options, `causal-tune fleet query`, the missing-extra message, progress output."""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import pytest

from causal_tune_ros.cli import main
from causal_tune_ros.errors import ConfigError, FleetError
from causal_tune_ros.fleet import command as fleet_command
from causal_tune_ros.fleet.extra import require
from causal_tune_ros.fleet.progress import FleetProgress
from causal_tune_ros.replay import command as replay_command

#: Replay options the fleet does not take, or takes with another default (and why).
NOT_SHARED = {
    "in_bag",  # the fleet takes many inputs
    "out",  # an output folder for many bags
    "video",  # one video per bag is not what an archive run wants
    "video_fps",
    "device",  # default follows --gpus-per-worker
    "threads",  # default follows --cpus-per-worker
}


def _parse(add_arguments, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_every_replay_option_is_a_fleet_option_with_the_same_default() -> None:
    fleet = vars(_parse(fleet_command.add_arguments, ["in", "-o", "out"]))
    replay = vars(_parse(replay_command.add_arguments, ["in", "-o", "out"]))
    shared = sorted(set(replay) - NOT_SHARED)
    assert [k for k in shared if k not in fleet] == []
    assert {k: fleet[k] for k in shared} == {k: replay[k] for k in shared}


def test_replay_options_reach_the_workers() -> None:
    args = _parse(
        fleet_command.add_arguments,
        ["in", "-o", "out", "--weather-min-seconds", "1.5", "--bag-version", "9", "--weather-every", "2"],
    )
    options = fleet_command.settings_from_args(args).options
    assert (options.weather_min_seconds, options.bag_version, options.weather_every) == (1.5, 9, 2)


def test_settings_from_arguments(tmp_path: Path) -> None:
    args = _parse(
        fleet_command.add_arguments,
        [
            "in",
            "-o",
            "out",
            "--gpus-per-worker",
            "0.5",
            "--band",
            "0.1,0.6",
            "--every",
            "2",
            "--workers",
            "4",
        ],
    )
    settings = fleet_command.settings_from_args(args)
    assert settings.model.device == "cuda" and settings.resources.gpus == 0.5 and settings.model.threads == 1
    assert settings.options.band.as_tuple() == (0.1, 0.6) and settings.options.every == 2
    assert settings.workers == 4 and settings.address is None and settings.retries == 2
    for bad in (["--device", "cuda"], ["--workers", "0"], ["--band", "0.5"], ["--retries", "-1"]):
        with pytest.raises(ConfigError):
            fleet_command.settings_from_args(_parse(fleet_command.add_arguments, ["in", "-o", "out", *bad]))


def test_a_missing_extra_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` sees when it is not installed
    with pytest.raises(FleetError, match=r"pip install 'causal_tune_ros\[fleet\]'"):
        require("ray")
    (tmp_path / "drive.mcap").write_bytes(b"x")
    assert main(["fleet", str(tmp_path / "drive.mcap"), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "causal-tune fleet: error:" in err and "ray" in err and "[fleet]" in err
    assert not (tmp_path / "out").exists()


def test_query_prints_the_matching_frames(tmp_path: Path, capsys) -> None:
    pytest.importorskip("pandas", reason="pandas not installed (pip install '.[fleet]')")
    pytest.importorskip("pyarrow", reason="pyarrow not installed (pip install '.[fleet]')")
    from causal_tune_ros.fleet.index import FrameRecorder, write_table
    from causal_tune_ros.fleet.state import Layout

    class Result:
        def __init__(self, road: int, conf: float) -> None:
            import numpy as np

            from causal_tune_ros.band import Band

            self.class_mask = np.array([[0] * road + [1] * (10 - road)], dtype=np.uint8)
            self.drivable_mask = (self.class_mask == 0).astype(np.uint8) * 255
            self.confidence = np.full((1, 10), conf, dtype=np.float32)
            self.band = Band(0.2, 0.7)

    rec = FrameRecorder("day1/drive", ["road", "sidewalk"], "auto")
    rec.on_frame("/cam/image_raw", 30, None, Result(2, 0.9), "snow")
    rec.on_frame("/cam/image_raw", 10, None, Result(8, 0.8), "snow")
    rec.on_frame("/cam/image_raw", 20, None, Result(1, 0.7), "clear")
    rec.on_skip("/cam/image_raw", 40, "corrupt sensor_msgs/msg/Image message: short")
    out = tmp_path / "out"
    out.mkdir()
    write_table(rec.table(), Layout(out).index)

    assert main(["fleet", "query", str(out), "--where", "condition == 'snow' and drivable < 0.3"]) == 0
    captured = capsys.readouterr()
    assert captured.out.split() == ["bag", "topic", "stamp", "day1/drive", "/cam/image_raw", "30"]
    assert "1 frames match" in captured.err

    assert (
        main(
            ["fleet", "query", str(out), "--where", "status != 'ok'", "--columns", "stamp", "reason", "--csv"]
        )
        == 0
    )
    assert capsys.readouterr().out.splitlines() == [
        "stamp,reason",
        "40,corrupt sensor_msgs/msg/Image message: short",
    ]

    assert main(["fleet", "query", str(out), "--where", "snowiness > 1"]) == 2
    assert "the index has: bag, topic, stamp" in capsys.readouterr().err
    assert main(["fleet", "query", str(tmp_path / "nowhere")]) == 2
    assert "no fleet index" in capsys.readouterr().err


def test_progress_writes_log_lines_off_a_terminal_and_a_bar_on_one() -> None:
    stream = io.StringIO()
    progress = FleetProgress(40, 4, stream=stream, tty=False, log_interval=0.0)
    progress.set(10, 1, 0)
    progress.set(25, 2, 1)
    progress.close()
    lines = stream.getvalue().splitlines()
    assert any(line.startswith("fleet 10/40") and line.endswith("bags 1/4") for line in lines)
    assert lines[-1].startswith("fleet 25/40") and "ETA" in lines[-1]
    assert lines[-1].endswith("bags 2/4, 1 failed")
    assert "\r" not in stream.getvalue()

    tty = io.StringIO()
    bar = FleetProgress(40, 4, stream=tty, tty=True)
    bar.set(20, 2, 0)
    bar.close()
    assert "\r" in tty.getvalue() and "20/40" in tty.getvalue() and "bags 2/4" in tty.getvalue()
