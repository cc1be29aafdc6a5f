"""Fixtures of the fleet tests: a tiny checkpoint, rendered scenes, an input archive, a local Ray instance."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from causal_tune_ros.synthetic.bag import drive_frames

from .fleet_support import SCENE_SIZE, write_archive


@pytest.fixture(scope="session")
def scenes() -> list[Any]:
    """Ten rendered synthetic frames (two per weather condition), reused by every test bag."""
    from causal_tune_ros.weather import CONDITIONS

    return list(drive_frames(CONDITIONS, 2, *SCENE_SIZE))


@pytest.fixture(scope="session")
def archive(tmp_path_factory: pytest.TempPathFactory, scenes: list[Any]) -> tuple[Path, list[Path]]:
    """``(root, bags)``: the three synthetic drives (never written to by the tests)."""
    root = tmp_path_factory.mktemp("archive")
    return root, write_archive(root, scenes)


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
