"""Fixtures of the node tests: one rclpy context per session and a tiny random model checkpoint."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

rclpy = pytest.importorskip("rclpy")


@pytest.fixture(scope="session")
def ros_context() -> Iterator[None]:
    """rclpy initialised once for all node tests (loopback, per-run domain: see test/conftest.py)."""
    rclpy.init()
    yield
    rclpy.try_shutdown()


@pytest.fixture(scope="session", autouse=True)
def _restore_torch_threads() -> Iterator[None]:
    """The test nodes set ``cpu_threads: 1`` (process wide in torch); give other tests their default back."""
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _tiny_model(seed: int) -> Any:
    import torch

    from causal_tune_ros.model.causal_tune import CausalTuneSegmenter
    from causal_tune_ros.model.dinov2 import DinoV2
    from causal_tune_ros.model.heads import LightHead

    torch.manual_seed(seed)
    backbone = DinoV2("vits14", embed_dim=32, depth=2, num_heads=2, img_size=56)
    head = LightHead(32, 19, num_inputs=2, channels=16)
    # A large refinement scale and classifier weights make the band visibly change the output.
    model = CausalTuneSegmenter(backbone, head, num_tokens=8, rank=4, scale_init=1.0)
    torch.nn.init.normal_(head.classifier.weight, std=1.0)
    return model


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-contained random Causal-Tune checkpoint (32-wide, 2-block ViT, 19 classes)."""
    from causal_tune_ros.classes import load_classes
    from causal_tune_ros.model.checkpoint import save_checkpoint

    path = tmp_path_factory.mktemp("node_model") / "tiny.safetensors"
    return save_checkpoint(path, _tiny_model(0), include_backbone=True, class_names=load_classes().names)


@pytest.fixture(scope="session")
def nan_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with a NaN classifier bias: every logit is NaN."""
    import torch

    from causal_tune_ros.model.checkpoint import save_checkpoint

    model = _tiny_model(0)
    with torch.no_grad():
        model.head.classifier.bias.fill_(float("nan"))
    path = tmp_path_factory.mktemp("node_model_nan") / "nan.safetensors"
    return save_checkpoint(path, model, include_backbone=True)


@pytest.fixture
def make_node(ros_context: None, tiny_checkpoint: Path) -> Iterator[Callable[..., Any]]:
    """Factory: ``make_node(suffix, **params)`` -> (node, probe, spinner), all torn down after the test.

    The node runs in namespace ``<NS_PREFIX>/<suffix>`` with the test overrides of
    :func:`node_support.node_overrides` (``__`` in keyword names stands for a dot).
    """
    from rclpy.node import Node

    from causal_tune_ros.node.segmentation_node import SegmentationNode

    from .node_support import NS_PREFIX, Probe, Spinner, node_overrides

    created: list[tuple[Any, Any, Any]] = []

    def factory(suffix: str, checkpoint: Path | None = None, **params: Any) -> tuple[Any, Any, Any]:
        ns = f"{NS_PREFIX}/{suffix}"
        node = SegmentationNode(
            namespace=ns, parameter_overrides=node_overrides(checkpoint or tiny_checkpoint, **params)
        )
        probe_node = Node(f"probe_{suffix}", namespace=ns)
        probe = Probe(probe_node, ns)
        spinner = Spinner(node, probe_node)
        created.append((node, probe_node, spinner))
        probe.wait_connected()
        return node, probe, spinner

    yield factory
    for node, probe_node, spinner in created:
        spinner.stop()
        node.destroy_node()
        probe_node.destroy_node()
