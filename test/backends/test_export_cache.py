"""Artefact cache and sidecars; corrupt / mismatched artefacts and the fallback to eager; the trust model
(permissions, per-user trust index): planted or swapped artefacts are never run."""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import causal_tune_ros.backends.onnx_export as onnx_export
from causal_tune_ros.backends import BackendSpec, create_backend, load_backend_with_fallback
from causal_tune_ros.backends.cache import (
    ArtefactCache,
    UntrustedArtefactError,
    is_valid,
    model_hash,
    publish,
    read_sidecar,
    record_trusted,
    sidecar_path,
    temporary_path,
    trust_index_path,
    trusted_record,
    write_sidecar,
)
from causal_tune_ros.backends.eager import EagerBackend
from causal_tune_ros.backends.export import DEFAULT_OPSET
from causal_tune_ros.band import Band
from causal_tune_ros.cli import main
from causal_tune_ros.errors import BackendError, CheckpointError

from .backend_support import INPUT_SIZE


def _artefact(folder: Path, payload: bytes = b"graph bytes", **meta) -> Path:
    path = folder / "a.onnx"
    path.write_bytes(payload)
    write_sidecar(
        path, {"format": "onnx", "precision": "fp32", "input_size": [56, 112], "model_hash": "ab", **meta}
    )
    record_trusted(path)  # as publish() does for what this user builds
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


# ---------------------------------------------------------------------------------------------- trust model


def _forged_graph(path: Path, num_classes: int = 19) -> bytes:
    """A valid ONNX graph with the real inputs and output whose logits say "class 0 (road)" everywhere."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    h, w = INPUT_SIZE
    logits = np.zeros((1, num_classes, h // 4, w // 4), np.float32)
    logits[:, 0] = 10.0
    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["logits"], value=numpy_helper.from_array(logits))],
        "forged",
        [
            helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, h, w]),
            helper.make_tensor_value_info("band", TensorProto.FLOAT, [2]),
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, list(logits.shape))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path.read_bytes()


def _plant(path: Path, checkpoint: Path) -> bytes:
    """What an attacker with write access to the folder does: a forged graph and a recomputed sidecar."""
    forged = _forged_graph(path)
    identity = {"format": "onnx", "precision": "fp32", "input_size": list(INPUT_SIZE)}
    write_sidecar(path, {**identity, "model_hash": model_hash(checkpoint), "opset": DEFAULT_OPSET})
    return forged


def test_forged_cache_entry_with_recomputed_sidecar_is_rebuilt_not_run(
    tiny_checkpoint: Path,
    onnx_fp32: Path,
    tmp_path: Path,
    images: np.ndarray,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rebuilt: list[Path] = []

    def export_copy(checkpoint, output, *args, **kwargs) -> Path:
        """The rebuild, without a second minute-long export: publish the session's real export."""
        rebuilt.append(Path(output))
        tmp = temporary_path(output)
        shutil.copy(onnx_fp32, tmp)
        meta = {k: v for k, v in read_sidecar(onnx_fp32).items() if not k.startswith("artefact")}
        return publish(tmp, output, meta)

    monkeypatch.setattr(onnx_export, "export_checkpoint_onnx", export_copy)
    cache = tmp_path / "cache"
    spec = BackendSpec(name="onnxruntime", checkpoint=tiny_checkpoint, input_size=INPUT_SIZE, cache_dir=cache)
    entry = ArtefactCache(cache).path_for(
        model_hash(tiny_checkpoint), INPUT_SIZE, "fp32", "onnx", f"opset{DEFAULT_OPSET}"
    )
    forged = _plant(entry, tiny_checkpoint)
    assert read_sidecar(entry)["artefact_sha256"]  # the sidecar alone vouches for the forged bytes
    caplog.set_level(logging.WARNING, logger="causal_tune_ros.backends")
    backend = create_backend(spec)
    backend.load()
    assert "not in your trust index" in caplog.text and rebuilt == [entry]
    assert backend.artefact == entry and entry.read_bytes() != forged  # rebuilt in place
    eager = create_backend("eager", checkpoint=tiny_checkpoint, input_size=INPUT_SIZE)
    got, want = backend.infer(images, Band()), eager.infer(images, Band())
    assert (got.argmax(1) == want.argmax(1)).mean() > 0.98
    assert trusted_record(entry) is not None  # the rebuilt entry is recorded, and reused next time
    assert is_valid(entry, {"model_hash": model_hash(tiny_checkpoint)}) == (True, "ok")


def test_planted_tensorrt_program_is_never_valid(tmp_path: Path) -> None:
    """A `.ep` is unpickled on load: a planted one with a matching sidecar must not pass the check."""
    program = tmp_path / "cache" / ("0" * 16 + "_56x112_fp16_trt10.3.0.ep")
    program.parent.mkdir()
    program.write_bytes(b"PK\x03\x04 a pickle that runs code")
    meta = {"format": "tensorrt", "precision": "fp16", "input_size": [56, 112], "model_hash": "0" * 64}
    write_sidecar(program, meta)
    ok, why = is_valid(program, meta)
    assert not ok and "not in your trust index" in why


def test_swapped_named_artefact_is_refused(
    tiny_checkpoint: Path, broken_copy: Path, images: np.ndarray
) -> None:
    record_trusted(broken_copy)  # as if this user had exported it here
    spec = _spec(tiny_checkpoint, broken_copy)
    assert create_backend(spec).infer(images, Band()).shape == (2, 19, 14, 28)
    _plant(broken_copy, tiny_checkpoint)  # swapped afterwards, sidecar recomputed
    with pytest.raises(BackendError, match="differs from the digest your trust index recorded"):
        create_backend(spec).load()


def test_named_artefact_without_record_is_used_with_a_warning(
    tiny_checkpoint: Path, broken_copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="causal_tune_ros.backends")
    backend = create_backend(_spec(tiny_checkpoint, broken_copy))
    backend.load()
    assert backend.artefact == broken_copy
    assert "not in your trust index" in caplog.text and "named explicitly" in caplog.text


def test_group_writable_cache_folder_is_refused(tiny_checkpoint: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    os.chmod(cache, 0o770)
    spec = BackendSpec(name="onnxruntime", checkpoint=tiny_checkpoint, input_size=INPUT_SIZE, cache_dir=cache)
    fix = re.escape(f"chmod 700 {cache}")
    with pytest.raises(UntrustedArtefactError, match=rf"writable by group .*{fix}"):
        create_backend(spec).load()
    assert list(cache.iterdir()) == []  # nothing exported into it
    backend, warning = load_backend_with_fallback(spec)  # the node keeps running, on eager
    assert isinstance(backend, EagerBackend) and warning is not None and "chmod 700" in warning
    os.chmod(cache, 0o700)
    assert ArtefactCache(cache).prepare() == cache


def test_writable_artefact_file_or_index_is_refused(tmp_path: Path) -> None:
    path = _artefact(tmp_path)
    os.chmod(path, 0o666)
    fix = re.escape(f"chmod go-w {path}")
    with pytest.raises(UntrustedArtefactError, match=rf"writable by group and others .*{fix}"):
        is_valid(path, {})
    os.chmod(path, 0o644)
    assert is_valid(path, {}) == (True, "ok")
    os.chmod(trust_index_path(), 0o622)
    try:
        with pytest.raises(UntrustedArtefactError, match=r"trust index .* writable"):
            is_valid(path, {})
    finally:
        os.chmod(trust_index_path(), 0o600)


def test_sticky_shared_folder_accepts_your_own_named_file(tmp_path: Path) -> None:
    """Like /tmp: others may create files there but not replace yours; a cache root must be private."""
    shared = tmp_path / "shared"
    shared.mkdir()
    path = _artefact(shared)
    os.chmod(shared, 0o1777)
    assert is_valid(path, {}) == (True, "ok")
    with pytest.raises(UntrustedArtefactError, match="chmod 700"):
        ArtefactCache(shared).prepare()


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="giving a file to another user needs root"
)
def test_foreign_owned_artefact_or_cache_is_refused(tiny_checkpoint: Path, tmp_path: Path) -> None:
    path = _artefact(tmp_path)
    os.chown(path, 54321, 54321)
    with pytest.raises(UntrustedArtefactError, match="owned by uid 54321, not by you"):
        is_valid(path, {})
    os.chown(path, 0, 0)
    os.chown(sidecar_path(path), 54321, 54321)
    with pytest.raises(UntrustedArtefactError, match=r"sidecar .* owned by uid 54321"):
        is_valid(path, {})
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    os.chown(cache, 54321, 54321)
    spec = BackendSpec(name="onnxruntime", checkpoint=tiny_checkpoint, input_size=INPUT_SIZE, cache_dir=cache)
    with pytest.raises(UntrustedArtefactError, match=r"cache folder .* owned by uid 54321"):
        create_backend(spec).load()
