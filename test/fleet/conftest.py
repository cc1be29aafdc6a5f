"""Fixtures of the fleet tests: a tiny checkpoint, synthetic input bags, a local Ray instance, settings."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from itertools import cycle, islice
from pathlib import Path
from typing import Any

import pytest
from rosbags.rosbag2 import Reader

from causal_tune_ros.synthetic.bag import (
    COMPRESSED_TOPIC,
    IMAGE_TOPIC,
    PERIOD_NS,
    START_NS,
    DriveFrame,
    drive_frames,
    write_drive,
)

#: Network input of the tiny test model (multiples of 14: a few milliseconds a frame).
TINY_INPUT = (28, 42)
#: Camera topics of the synthetic bags (the only topics the fleet segments in them).
CAMERA_TOPICS = (IMAGE_TOPIC, COMPRESSED_TOPIC)
#: Image size of the synthetic scenes.
SCENE_SIZE = (42, 56)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-contained random-init checkpoint: 2-block, 32-wide ViT, the 19 Cityscapes classes."""
    import torch

    from causal_tune_ros.classes import load_classes
    from causal_tune_ros.model.causal_tune import CausalTuneSegmenter
    from causal_tune_ros.model.checkpoint import save_checkpoint
    from causal_tune_ros.model.dinov2 import DinoV2
    from causal_tune_ros.model.heads import LightHead

    torch.manual_seed(0)
    backbone = DinoV2("vits14", embed_dim=32, depth=2, num_heads=2, img_size=56)
    model = CausalTuneSegmenter(backbone, LightHead(32, 19, num_inputs=2, channels=16), num_tokens=8, rank=4)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    return save_checkpoint(
        path,
        model.eval(),
        metadata={"purpose": "fleet tests"},
        include_backbone=True,
        class_names=load_classes().names,
        band=(0.2, 0.7),
    )


@pytest.fixture(scope="session")
def scenes() -> list[Any]:
    """Ten rendered synthetic frames (two per weather condition), reused by every test bag."""
    from causal_tune_ros.weather import CONDITIONS

    return list(drive_frames(CONDITIONS, 2, *SCENE_SIZE))


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


@pytest.fixture(scope="session")
def archive(tmp_path_factory: pytest.TempPathFactory, scenes: list[Any]) -> tuple[Path, list[Path]]:
    """``(root, bags)``: the three synthetic drives (never written to by the tests)."""
    root = tmp_path_factory.mktemp("archive")
    return root, write_archive(root, scenes)


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


@pytest.fixture(scope="session")
def ray_local() -> Iterator[Any]:
    """A local Ray instance with 2 CPUs for the session (the fleet joins it instead of starting its own)."""
    ray = pytest.importorskip("ray", reason="ray not installed (pip install '.[fleet]')")
    pytest.importorskip("pyarrow", reason="pyarrow not installed (pip install '.[fleet]')")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=128 * 1024 * 1024,
        logging_level="WARNING",
        log_to_driver=False,
    )
    try:
        yield ray
    finally:
        ray.shutdown()


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
