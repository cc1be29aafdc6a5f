"""Fixtures of the backend and pipeline tests: the tiny model (backend_support.py) saved and exported once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from .backend_support import INPUT_SIZE, build_tiny_model


@pytest.fixture(scope="session")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session-wide scratch folder."""
    return tmp_path_factory.mktemp("backends")


@pytest.fixture(scope="session")
def tiny_checkpoint(work_dir: Path) -> Path:
    """Self-contained checkpoint of the tiny model."""
    from causal_tune_ros.model.checkpoint import save_checkpoint

    return save_checkpoint(work_dir / "tiny.safetensors", build_tiny_model(), include_backbone=True)


@pytest.fixture(scope="session")
def onnx_fp32(work_dir: Path, tiny_checkpoint: Path) -> Path:
    """fp32 ONNX export of the tiny checkpoint (with sidecar)."""
    from causal_tune_ros.backends.export import export_artefact

    return export_artefact(
        tiny_checkpoint, work_dir / "exports" / "tiny_fp32.onnx", INPUT_SIZE, "onnx", "fp32"
    )


@pytest.fixture
def images() -> np.ndarray:
    """Two (3, 56, 112) images in [0, 1]: smooth structure plus noise, float32."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0 : INPUT_SIZE[0], 0 : INPUT_SIZE[1]]
    base = 0.5 + 0.4 * np.sin(xx / 9.0)[None] * np.cos(yy / 7.0)[None]
    stack = [np.clip(base + 0.1 * rng.standard_normal((3, *INPUT_SIZE)), 0, 1) for _ in range(2)]
    return np.stack(stack).astype(np.float32)
