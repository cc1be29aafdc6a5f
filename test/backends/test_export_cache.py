"""Artefact cache and sidecars; corrupt / mismatched artefacts and the fallback to eager."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from backend_support import INPUT_SIZE

from causal_tune_ros.backends import BackendSpec, create_backend, load_backend_with_fallback
from causal_tune_ros.backends.cache import (
    ArtefactCache,
    is_valid,
    model_hash,
    read_sidecar,
    sidecar_path,
    write_sidecar,
)
from causal_tune_ros.backends.eager import EagerBackend
from causal_tune_ros.band import Band
from causal_tune_ros.cli import main
from causal_tune_ros.errors import BackendError, CheckpointError


def _artefact(folder: Path, payload: bytes = b"graph bytes", **meta) -> Path:
    path = folder / "a.onnx"
    path.write_bytes(payload)
    write_sidecar(
        path, {"format": "onnx", "precision": "fp32", "input_size": [56, 112], "model_hash": "ab", **meta}
    )
    return path


def test_sidecar_round_trip_and_validity(tmp_path: Path) -> None:
    path = _artefact(tmp_path)
    meta = read_sidecar(path)
    assert meta["artefact_bytes"] == len(b"graph bytes") and len(meta["artefact_sha256"]) == 64
    assert sidecar_path(path).name == "a.onnx.json"
    expected = {"format": "onnx", "precision": "fp32", "input_size": (56, 112), "model_hash": "ab"}
    assert is_valid(path, expected) == (True, "ok")
    assert is_valid(path, {**expected, "model_hash": None}) == (True, "ok")  # None: not checked


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("input_size", (518, 1036), "input_size mismatch"),
        ("precision", "int8", "precision mismatch"),
        ("model_hash", "cd", "model_hash mismatch"),
        ("format", "tensorrt", "format mismatch"),
    ],
)
def test_mismatched_sidecar_is_invalid(tmp_path: Path, key: str, value: object, reason: str) -> None:
    path = _artefact(tmp_path)
    ok, why = is_valid(path, {key: value})
    assert not ok and reason in why


def test_damaged_artefacts_are_invalid(tmp_path: Path) -> None:
    path = _artefact(tmp_path)
    path.write_bytes(b"graph bytez")  # same size, other content
    ok, why = is_valid(path, {})
    assert not ok and "sha256" in why
    path.write_bytes(b"graph")  # truncated
    ok, why = is_valid(path, {})
    assert not ok and "truncated" in why
    sidecar_path(path).write_text("{not json")
    ok, why = is_valid(path, {})
    assert not ok and "cannot read sidecar" in why
    sidecar_path(path).unlink()
    ok, why = is_valid(path, {})
    assert not ok and "no sidecar" in why
    assert is_valid(tmp_path / "missing.onnx", {}) == (False, f"{tmp_path / 'missing.onnx'} does not exist")


def test_model_hash_follows_content_not_location(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for folder in ("a", "b"):
        (tmp_path / folder / "ckpt.safetensors").write_bytes(b"weights")
    same = model_hash(tmp_path / "a" / "ckpt.safetensors")
    assert same == model_hash(tmp_path / "b" / "ckpt.safetensors")
    (tmp_path / "backbone").mkdir()
    (tmp_path / "backbone" / "config.json").write_text("{}")
    (tmp_path / "backbone" / "model.safetensors").write_bytes(b"vit")
    with_backbone = model_hash(tmp_path / "a" / "ckpt.safetensors", tmp_path / "backbone")
    assert with_backbone != same
    (tmp_path / "backbone" / "model.safetensors").write_bytes(b"vit2")
    assert model_hash(tmp_path / "a" / "ckpt.safetensors", tmp_path / "backbone") != with_backbone
    with pytest.raises(BackendError, match="does not exist"):
        model_hash(tmp_path / "nope.safetensors")


def test_cache_paths_encode_the_key(tmp_path: Path) -> None:
    cache = ArtefactCache(tmp_path)
    path = cache.path_for("f" * 64, (518, 1036), "fp16", "tensorrt", "trt10.3.0")
    assert path == tmp_path / ("f" * 16 + "_518x1036_fp16_trt10.3.0.ep")
    assert cache.path_for("f" * 64, (518, 1036), "int8", "onnx").suffix == ".onnx"


@pytest.fixture
def broken_copy(tmp_path: Path, onnx_fp32: Path) -> Path:
    """A copy of the fp32 export (with its sidecar) that a test may damage."""
    path = tmp_path / "copy.onnx"
    shutil.copy(onnx_fp32, path)
    shutil.copy(sidecar_path(onnx_fp32), sidecar_path(path))
    return path


def _spec(checkpoint: Path, artefact: Path, **changes) -> BackendSpec:
    spec = BackendSpec(name="onnxruntime", checkpoint=checkpoint, artefact=artefact, input_size=INPUT_SIZE)
    return spec.with_changes(**changes)


def test_corrupt_artefact_with_rewritten_sidecar_fails_clearly(
    tiny_checkpoint: Path, broken_copy: Path
) -> None:
    """Even when the sidecar is regenerated for the damaged bytes, onnxruntime's refusal is a BackendError."""
    data = bytearray(broken_copy.read_bytes())
    broken_copy.write_bytes(bytes(data[: len(data) // 3]))
    write_sidecar(
        broken_copy, {k: v for k, v in read_sidecar(broken_copy).items() if not k.startswith("artefact")}
    )
    with pytest.raises(BackendError, match="onnxruntime cannot load"):
        create_backend(_spec(tiny_checkpoint, broken_copy)).load()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("truncate", "truncated or replaced"),
        ("size", "input_size mismatch"),
        ("precision", "precision mismatch"),
        ("hash", "model_hash mismatch"),
    ],
)
def test_bad_artefact_is_an_error_and_falls_back_to_eager(
    tiny_checkpoint: Path, broken_copy: Path, images: np.ndarray, damage: str, message: str
) -> None:
    if damage == "truncate":
        broken_copy.write_bytes(broken_copy.read_bytes()[:1000])
    else:
        meta = read_sidecar(broken_copy)
        meta.update(
            {
                "size": {"input_size": [112, 224]},
                "precision": {"precision": "int8"},
                "hash": {"model_hash": "0" * 64},
            }[damage]
        )
        write_sidecar(broken_copy, meta)
    spec = _spec(tiny_checkpoint, broken_copy)
    with pytest.raises(BackendError, match=message):
        create_backend(spec).load()

    backend, warning = load_backend_with_fallback(spec)
    assert isinstance(backend, EagerBackend) and backend.loaded
    assert warning is not None and "falling back to eager" in warning and message in warning
    assert backend.infer(images, Band()).shape == (2, 19, 14, 28)


def test_fallback_without_a_warning_when_the_backend_loads(tiny_checkpoint: Path, onnx_fp32: Path) -> None:
    backend, warning = load_backend_with_fallback(_spec(tiny_checkpoint, onnx_fp32))
    assert backend.name == "onnxruntime" and warning is None


def test_fallback_raises_when_eager_fails_too(tmp_path: Path, broken_copy: Path) -> None:
    missing = tmp_path / "missing.safetensors"
    with pytest.raises(CheckpointError, match="not found"):  # eager's own error, not the first one
        load_backend_with_fallback(_spec(missing, broken_copy))


def test_export_cli_reports_bad_input(tiny_checkpoint: Path, tmp_path: Path, capsys) -> None:
    argv = ["export", "--checkpoint", str(tiny_checkpoint), "-o", str(tmp_path / "x.onnx")]
    assert main([*argv, "--size", "50x112"]) == 2
    assert "multiples of 14" in capsys.readouterr().err
    assert main([*argv, "--size", "56x112", "--format", "tensorrt", "--precision", "int8"]) == 2
    assert "fp16 or fp32" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()
