"""A fleet worker outside Ray: one index row per frame, skipped frames included; weather provenance."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from causal_tune_ros.fleet.inputs import find_bags
from causal_tune_ros.fleet.worker import BagProcessor, ModelSettings, WorkerConfig
from causal_tune_ros.replay.bag_io import (
    IMAGE_TYPE,
    STRING_TYPE,
    BagWriter,
    make_header,
    msg_class,
    serialize,
)
from causal_tune_ros.replay.replayer import ReplayOptions
from causal_tune_ros.weather import load_band_presets

from .fleet_support import TINY_INPUT

pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow not installed (pip install '.[fleet]')")

T0 = 1_700_000_000_000_000_000
STEP = 100_000_000


def _processor(checkpoint: Path, **options: Any) -> BagProcessor:
    h, w = TINY_INPUT
    model = ModelSettings(checkpoint=str(checkpoint), backend="eager", input_size=f"{h}x{w}", threads=1)
    return BagProcessor(WorkerConfig(model, ReplayOptions(progress=False, **options), load_band_presets()))


def _write_bag(path: Path, scenes: list[Any], weather_from: int | None = None) -> list[int]:
    """Five rgb8 frames on /cam/image_raw, the third one truncated; '/weather' = snow from frame
    ``weather_from`` on. Returns the frame stamps."""
    image_cls = msg_class(IMAGE_TYPE)
    stamps = [T0 + i * STEP for i in range(5)]
    with BagWriter(path, storage="mcap") as bag:
        bag.add_topic("/cam/image_raw", IMAGE_TYPE, qos="sensor")
        bag.add_topic("/weather", STRING_TYPE)
        for i, t in enumerate(stamps):
            if weather_from is not None and i >= weather_from:
                bag.write_message("/weather", t - 1, msg_class(STRING_TYPE)(data="snow"))
            rgb = scenes[i].frame.image
            h, w = rgb.shape[:2]
            msg = image_cls(
                header=make_header(t, "cam"),
                height=h,
                width=w,
                encoding="rgb8",
                is_bigendian=0,
                step=3 * w,
                data=rgb.reshape(-1),
            )
            data = bytes(serialize(msg))
            bag.write("/cam/image_raw", t, data[: len(data) // 3] if i == 2 else data)
    return stamps


def test_every_frame_gets_one_row_and_a_corrupt_frame_is_a_corrupt_row(
    tiny_checkpoint: Path, scenes: list[Any], tmp_path: Path
) -> None:
    stamps = _write_bag(tmp_path / "drive", scenes)
    job = find_bags([tmp_path / "drive"])[0]
    worker = _processor(tiny_checkpoint)
    assert worker.describe()["error"] is None

    result = worker.process(job, tmp_path / "attempt", {"settings": "x"})

    assert result.status == "done" and (result.processed, result.corrupt, result.rows) == (4, 1, 5)
    table = pq.read_table(tmp_path / "attempt" / "index.parquet")
    df = table.to_pandas()
    assert list(df["stamp"]) == stamps and set(df["topic"]) == {"/cam/image_raw"}
    assert list(df["status"]) == ["ok", "ok", "corrupt", "ok", "ok"]
    bad = df.iloc[2]
    assert (
        "corrupt" in bad["reason"] and bad[["condition", "drivable", "confidence", "share_road"]].isna().all()
    )
    ok = df[df["status"] == "ok"]
    assert ok[[c for c in df.columns if c.startswith("share_")]].sum(axis=1).between(0.999, 1.001).all()
    assert ok["confidence"].between(1 / 19, 1).all()
    assert (ok["band_low"] < ok["band_high"]).all()
    meta = json.loads(table.schema.metadata[b"causal_tune_fleet"])
    assert meta["settings"] == "x" and meta["summary"]["processed"] == 4
    assert (tmp_path / "attempt" / "bag" / "metadata.yaml").is_file()


def test_weather_from_the_bag_is_marked_topic_and_before_its_first_message_default(
    tiny_checkpoint: Path, scenes: list[Any], tmp_path: Path
) -> None:
    _write_bag(tmp_path / "drive", scenes, weather_from=3)
    job = find_bags([tmp_path / "drive"])[0]
    result = _processor(tiny_checkpoint, weather="topic").process(job, tmp_path / "attempt", {})
    df = pq.read_table(tmp_path / "attempt" / "index.parquet").to_pandas()
    assert result.status == "done"
    ok = df[df["status"] == "ok"]
    assert list(ok["condition_source"]) == ["default", "default", "topic", "topic"]
    assert list(ok["condition"]) == ["clear", "clear", "snow", "snow"]
    snow = load_band_presets()["snow"]
    assert ok["band_low"].iloc[-1] == pytest.approx(snow.low) and ok["band_high"].iloc[-1] == pytest.approx(
        snow.high
    )


def test_an_unreadable_bag_is_a_failed_result_and_leaves_nothing(
    tiny_checkpoint: Path, scenes: list[Any], tmp_path: Path
) -> None:
    _write_bag(tmp_path / "drive", scenes)
    mcap = next((tmp_path / "drive").glob("*.mcap"))
    mcap.write_bytes(mcap.read_bytes()[:200])
    job = find_bags([tmp_path / "drive"])[0]
    result = _processor(tiny_checkpoint).process(job, tmp_path / "attempt", {})
    assert result.status == "failed" and str(job.path) in result.error
    assert not (tmp_path / "attempt").exists()


def test_a_model_that_does_not_load_is_reported_not_raised(tmp_path: Path) -> None:
    worker = BagProcessor(
        WorkerConfig(ModelSettings(checkpoint=str(tmp_path / "missing.safetensors")), ReplayOptions())
    )
    assert "missing.safetensors" in worker.describe()["error"]
