"""Test-wide setup: isolate ROS 2 traffic of this run and register markers."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

# Must happen before anything imports rclpy: loopback-only discovery, a domain of our own, logs in tmp.
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))
os.environ.setdefault("ROS_LOG_DIR", tempfile.mkdtemp(prefix="causal_tune_roslog_"))
os.environ.pop("RMW_IMPLEMENTATION", None)
# The artefact trust index (backends/cache.py) of this run: never the user's own.
os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="causal_tune_state_")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "ros: needs rclpy and the ROS 2 message packages")
    config.addinivalue_line("markers", "gpu: needs CUDA (skipped without it)")
    config.addinivalue_line("markers", "tensorrt: needs CUDA and torch_tensorrt (skipped without them)")
    config.addinivalue_line("markers", "slow: takes more than ~20 s on the 2-core CI machine")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    try:
        import torch_tensorrt  # noqa: F401

        has_trt = has_cuda
    except ImportError:
        has_trt = False
    try:
        import rclpy  # noqa: F401

        has_ros = True
    except ImportError:
        has_ros = False
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(pytest.mark.skip(reason="no CUDA device on this machine"))
        if "tensorrt" in item.keywords and not has_trt:
            item.add_marker(pytest.mark.skip(reason="torch_tensorrt or CUDA not available"))
        if "ros" in item.keywords and not has_ros:
            item.add_marker(pytest.mark.skip(reason="rclpy not installed (pip install '.[ros]')"))


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-contained (backbone embedded) random-init checkpoint: 2-block, 32-wide ViT, 19 classes.

    Shared by the replay and fleet tests; the node and backend tests define their own.
    """
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
        metadata={"purpose": "tests"},
        include_backbone=True,
        class_names=load_classes().names,
        band=(0.2, 0.7),
    )


#: Network input of :func:`tiny_pipeline`: small multiples of 14 keep a frame at a few milliseconds.
TINY_INPUT = (28, 42)


@pytest.fixture(scope="session")
def tiny_pipeline(tiny_checkpoint: Path) -> Any:
    """A :class:`SegmentationPipeline` on the eager backend of :func:`tiny_checkpoint`."""
    from causal_tune_ros.backends import BackendSpec, create_backend
    from causal_tune_ros.classes import load_classes
    from causal_tune_ros.pipeline import SegmentationPipeline

    backend = create_backend(BackendSpec(name="eager", checkpoint=tiny_checkpoint, input_size=TINY_INPUT))
    backend.load()
    return SegmentationPipeline(backend, load_classes())
