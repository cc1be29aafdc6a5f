"""Fixtures of the fleet tests: a tiny checkpoint, rendered scenes, an input archive, a local Ray instance."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fleet_support import SCENE_SIZE, write_archive

from causal_tune_ros.synthetic.bag import drive_frames


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
