"""TensorRT backend: clean import and fallback without it; engine build, cache and rebuild where it exists.

The ``tensorrt``-marked tests need CUDA and torch_tensorrt; test/conftest.py skips them cleanly elsewhere.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from causal_tune_ros.backends import BackendSpec, create_backend, load_backend_with_fallback
from causal_tune_ros.backends.cache import is_valid, read_sidecar, write_sidecar
from causal_tune_ros.band import Band
from causal_tune_ros.errors import BackendError

from .backend_support import INPUT_SIZE


def test_module_imports_without_torch_tensorrt() -> None:
    """Importing the backend must not import torch_tensorrt (it is optional and slow to import)."""
    code = (
        "import sys; import causal_tune_ros.backends.tensorrt_backend as t; "
        "print('torch_tensorrt' in sys.modules, t.TRT_PRECISIONS)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False ('fp32', 'fp16')"


@pytest.mark.skipif(
    torch.cuda.is_available() and importlib.util.find_spec("torch_tensorrt") is not None,
    reason="checks the behaviour without TensorRT",
)
def test_without_tensorrt_the_error_is_clear_and_eager_takes_over(tiny_checkpoint: Path, images) -> None:
    spec = BackendSpec(
        name="tensorrt", checkpoint=tiny_checkpoint, input_size=INPUT_SIZE, device="cuda", precision="fp16"
    )
    with pytest.raises(BackendError, match=r"CUDA|torch_tensorrt"):
        create_backend(spec).load()
    backend, warning = load_backend_with_fallback(spec)
    assert backend.name == "eager" and warning is not None and "tensorrt backend" in warning
    assert backend.spec.device in ("cpu", "cuda") and backend.infer(images, Band()).shape == (2, 19, 14, 28)


def test_int8_and_cpu_are_refused_before_anything_is_built(tiny_checkpoint: Path) -> None:
    spec = BackendSpec(name="tensorrt", checkpoint=tiny_checkpoint, input_size=INPUT_SIZE, device="cuda")
    with pytest.raises(BackendError, match="fp32 or fp16"):
        create_backend(spec.with_changes(precision="int8")).load()
    with pytest.raises(BackendError, match="cuda only"):
        create_backend(spec.with_changes(device="cpu", precision="fp16")).load()


def _file_identity(path: Path) -> tuple[int, int]:
    """Inode and modification time: a rebuild publishes a new file (renamed over the old one)."""
    info = path.stat()
    return info.st_ino, info.st_mtime_ns


@pytest.mark.tensorrt
def test_engine_build_cache_and_rebuild(tiny_checkpoint: Path, tmp_path: Path, images) -> None:
    spec = BackendSpec(
        name="tensorrt",
        checkpoint=tiny_checkpoint,
        input_size=INPUT_SIZE,
        device="cuda",
        precision="fp16",
        cache_dir=tmp_path,
    )
    assert not list(tmp_path.glob("*.ep"))
    first = create_backend(spec)
    first.load()  # nothing cached: builds
    engine = first.artefact
    assert engine is not None and engine.parent == tmp_path and engine.suffix == ".ep"
    built = _file_identity(engine)
    meta = read_sidecar(engine)
    assert meta["format"] == "tensorrt" and meta["precision"] == "fp16" and meta["tensorrt_version"]
    assert meta["input_size"] == list(INPUT_SIZE) and meta["gpu"]

    eager = create_backend("eager", checkpoint=tiny_checkpoint, input_size=INPUT_SIZE)
    for band in (Band(0.2, 0.7), Band(0.05, 0.3)):
        got, want = first.infer(images, band), eager.infer(images, band)
        assert np.abs(got - want).max() < 0.05 * np.abs(want).max() + 1e-2
        assert (got.argmax(1) == want.argmax(1)).mean() > 0.98
    assert np.abs(first.infer(images, Band(0.2, 0.7)) - first.infer(images, Band(0.05, 0.3))).max() > 1e-3

    second = create_backend(spec)
    second.load()  # the cache is reused: the very same file
    assert second.artefact == engine and _file_identity(engine) == built

    meta["tensorrt_version"] = "0.0.0"  # as if TensorRT had been upgraded: stale, must be rebuilt
    write_sidecar(engine, meta)
    third = create_backend(spec)
    third.load()
    rebuilt = _file_identity(engine)
    assert rebuilt != built  # a new file was built and published
    assert is_valid(engine, {"tensorrt_version": read_sidecar(engine)["tensorrt_version"]})[0]
    assert read_sidecar(engine)["tensorrt_version"] != "0.0.0"

    create_backend(spec.with_changes(force_rebuild=True)).load()
    assert _file_identity(engine) != rebuilt


@pytest.mark.tensorrt
def test_auto_picks_tensorrt_fp16(tiny_checkpoint: Path, tmp_path: Path) -> None:
    backend = create_backend("auto", checkpoint=tiny_checkpoint, input_size=INPUT_SIZE, cache_dir=tmp_path)
    assert backend.name == "tensorrt" and backend.spec.precision == "fp16" and backend.spec.device == "cuda"
