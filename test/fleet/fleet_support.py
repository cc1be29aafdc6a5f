"""Helpers of the fleet tests: synthetic archives, reading bags with plain rosbags, tiny-model settings."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from itertools import cycle, islice
from pathlib import Path
from typing import Any

from rosbags.rosbag2 import Reader

from causal_tune_ros.synthetic.bag import (
    COMPRESSED_TOPIC,
    IMAGE_TOPIC,
    PERIOD_NS,
    START_NS,
    DriveFrame,
    write_drive,
)

#: Network input of the tiny test model (multiples of 14: a few milliseconds a frame).
TINY_INPUT = (28, 42)
#: Camera topics of the synthetic bags (the only topics the fleet segments in them).
CAMERA_TOPICS = (IMAGE_TOPIC, COMPRESSED_TOPIC)
#: Image size of the synthetic scenes.
SCENE_SIZE = (42, 56)


def write_archive(root: Path, scenes: Sequence[Any], frames: int = 6) -> list[Path]:
    """Three synthetic drives of ``frames`` frames under ``root``: two mcap (one of them JPEG) in
    ``day1/``, one sqlite3 in ``day2/``; each starts at another scene of ``scenes`` and cycles through them.
    """
    specs = [
        ("day1/drive_a", False, "mcap"),
        ("day1/drive_b", True, "mcap"),
        ("day2/drive_c", False, "sqlite3"),
    ]
    conditions = sorted({s.frame.condition for s in scenes})
    bags = []
    for i, (name, compressed, storage) in enumerate(specs):
        order = islice(cycle(scenes[3 * i :] + scenes[: 3 * i]), frames)
        drive = [DriveFrame(k, START_NS + k * PERIOD_NS, s.seed, s.frame) for k, s in enumerate(order)]
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        write_drive(
            path, conditions, frames, size=SCENE_SIZE, compressed=compressed, storage=storage, drive=drive
        )
        bags.append(path)
    return bags


def input_frames(bag: Path, name: str) -> list[tuple[str, str, int]]:
    """``(name, topic, log time)`` of every camera frame of a bag, read with plain rosbags."""
    with Reader(bag) as reader:
        conns = [c for c in reader.connections if c.topic in CAMERA_TOPICS]
        return [(name, c.topic, int(t)) for c, t, _ in reader.messages(connections=conns)]


def bag_topics(bag: Path) -> dict[str, int]:
    """Topic -> message count of a bag, read with plain rosbags."""
    with Reader(bag) as reader:
        return {c.topic: c.msgcount for c in reader.connections}


def corrupt_copy(good: Path, dest: Path) -> Path:
    """A copy of a bag whose storage file is cut in half (as an interrupted copy leaves it)."""
    shutil.copytree(good, dest)
    for f in dest.iterdir():
        if f.suffix in (".mcap", ".db3"):
            data = f.read_bytes()
            f.write_bytes(data[: len(data) // 2])
    return dest


def tiny_settings(checkpoint: Path, **changes: Any) -> Any:
    """Fleet settings for the tiny model: eager, 1 thread per worker, 2 workers, quiet, fast polls."""
    from causal_tune_ros.fleet.runner import FleetSettings
    from causal_tune_ros.fleet.worker import ModelSettings

    h, w = TINY_INPUT
    values: dict[str, Any] = {
        "model": ModelSettings(checkpoint=str(checkpoint), backend="eager", input_size=f"{h}x{w}", threads=1),
        "workers": 2,
        "progress": False,
        "poll_interval": 0.05,
    }
    values.update(changes)
    return FleetSettings(**values)
