"""ONNX export and the onnxruntime backend: equality with eager, band as a graph input, fresh-process use."""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

import causal_tune_ros.backends.onnx_export as onnx_export
from causal_tune_ros.backends import BackendSpec, create_backend
from causal_tune_ros.backends.cache import (
    ArtefactCache,
    is_valid,
    model_hash,
    read_sidecar,
    record_trusted,
    sidecar_path,
    write_sidecar,
)
from causal_tune_ros.backends.export import DEFAULT_OPSET
from causal_tune_ros.backends.onnxruntime_backend import OnnxRuntimeBackend
from causal_tune_ros.band import Band
from causal_tune_ros.errors import BackendError

from .backend_support import INPUT_SIZE

BANDS = (Band(0.2, 0.7), Band(0.05, 0.3))


@pytest.fixture(scope="module")
def eager(tiny_checkpoint: Path):
    return create_backend("eager", checkpoint=tiny_checkpoint, input_size=INPUT_SIZE)


def test_onnxruntime_equals_eager_for_two_bands(
    eager, tiny_checkpoint: Path, onnx_fp32: Path, images
) -> None:
    spec = BackendSpec(
        name="onnxruntime", checkpoint=tiny_checkpoint, artefact=onnx_fp32, input_size=INPUT_SIZE
    )
    backend = create_backend(spec)
    assert isinstance(backend, OnnxRuntimeBackend)
    outputs = []
    for band in BANDS:
        want = eager.infer(images, band)
        got = backend.infer(images, band)  # batch of 2 through a batch-1 graph
        assert got.shape == want.shape == (2, 19, 14, 28)
        assert np.abs(got - want).max() < 1e-3
        assert (got.argmax(1) == want.argmax(1)).mean() > 0.999
        outputs.append(got)
    assert np.abs(outputs[0] - outputs[1]).max() > 1e-3, "the band must change the ONNX graph's output"
    info = backend.describe()
    assert info.name == "onnxruntime" and info.num_classes == 19 and info.precision == "fp32"
    assert info.artefact == str(onnx_fp32) and info.versions["onnxruntime"]
    assert info.model_hash and info.as_dict()["exporter"] == info.exporter and info.exporter


def test_graph_contract_and_sidecar(onnx_fp32: Path) -> None:
    model = onnx.load(str(onnx_fp32))
    onnx.checker.check_model(model)
    inputs = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    assert inputs == {"images": [1, 3, *INPUT_SIZE], "band": [2]}
    assert [o.name for o in model.graph.output] == ["logits"]
    assert any("band" in node.input for node in model.graph.node), "band must feed the graph, not be folded"
    assert min(op.version for op in model.opset_import if op.domain in ("", "ai.onnx")) >= 17
    ops = {node.op_type for node in model.graph.node}
    assert "MultiHeadAttention" in ops and "Gelu" in ops  # the fast forms (see backends/export.py)
    meta = read_sidecar(onnx_fp32)
    assert meta["format"] == "onnx" and meta["precision"] == "fp32" and meta["input_size"] == list(INPUT_SIZE)
    assert len(meta["model_hash"]) == 64 and meta["opset"] >= 17
    assert {"torch", "onnx", "onnxruntime"} <= set(meta["versions"])


def test_round_trip_in_a_fresh_process(eager, onnx_fp32: Path, images, tmp_path: Path) -> None:
    """Only the artefact and its sidecar: no checkpoint, no torch model in the child process."""
    np.save(tmp_path / "images.npy", images)
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        from causal_tune_ros.backends import BackendSpec, create_backend
        spec = BackendSpec(name="onnxruntime", artefact={str(onnx_fp32)!r}, input_size=(56, 112))
        backend = create_backend(spec)
        out = backend.infer(np.load({str(tmp_path / "images.npy")!r}), (0.05, 0.3))
        np.save({str(tmp_path / "out.npy")!r}, out)
        torch_code = "causal_tune_ros.model.causal_tune" in sys.modules or "torch" in sys.modules
        print("loaded:", torch_code, backend.describe().num_classes)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "loaded: False 19" in done.stdout  # neither the model code nor torch was imported
    got = np.load(tmp_path / "out.npy")
    assert np.abs(got - eager.infer(images, Band(0.05, 0.3))).max() < 1e-3


@pytest.fixture(scope="module")
def int8_via_cli(tiny_checkpoint: Path, work_dir: Path) -> tuple[int, str, Path]:
    """``causal-tune export ... --precision int8`` through the real CLI entry point."""
    from causal_tune_ros.cli import main

    out = work_dir / "exports" / "tiny_int8.onnx"
    argv = ["export", "--checkpoint", str(tiny_checkpoint), "--size", "56x112", "--format", "onnx"]
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main([*argv, "--precision", "int8", "-o", str(out)])
    return code, buffer.getvalue(), out


def test_cli_int8_export_quantises_backbone_only(eager, int8_via_cli, images) -> None:
    code, printed, path = int8_via_cli
    assert code == 0
    assert f"artefact: {path}" in printed and "precision: int8" in printed
    assert "class agreement" in printed  # the CLI checks the graph against PyTorch after export
    assert read_sidecar(path)["precision"] == "int8"
    graph = onnx.load(str(path)).graph
    quantised = [n for n in graph.node if n.op_type in ("MatMulInteger", "DynamicQuantizeMatMul")]
    assert len(quantised) == 2 * 4  # qkv, proj, fc1, fc2 in each of the 2 blocks; nothing else
    spec = BackendSpec(name="onnxruntime", precision="int8", artefact=path, input_size=INPUT_SIZE)
    got = create_backend(spec).infer(images, Band())
    want = eager.infer(images, Band())
    assert (got.argmax(1) == want.argmax(1)).mean() > 0.95
    assert np.abs(got - want).max() < 0.1 * np.abs(want).max()


def test_valid_cache_entry_is_reused(
    tiny_checkpoint: Path, onnx_fp32: Path, tmp_path: Path, images, monkeypatch
):
    spec = BackendSpec(
        name="onnxruntime", checkpoint=tiny_checkpoint, input_size=INPUT_SIZE, cache_dir=tmp_path
    )
    entry = ArtefactCache(tmp_path).path_for(
        model_hash(tiny_checkpoint), INPUT_SIZE, "fp32", "onnx", f"opset{DEFAULT_OPSET}"
    )
    shutil.copy(onnx_fp32, entry)
    shutil.copy(sidecar_path(onnx_fp32), sidecar_path(entry))
    record_trusted(entry)  # as if this user had built it here (what publish() records)

    def no_export(*args, **kwargs):
        raise AssertionError("a valid cache entry must be reused, not re-exported")

    monkeypatch.setattr(onnx_export, "export_checkpoint_onnx", no_export)
    backend = create_backend(spec)
    backend.load()
    assert backend.artefact == entry
    reference = create_backend(spec.with_changes(artefact=onnx_fp32))
    np.testing.assert_array_equal(backend.infer(images, Band()), reference.infer(images, Band()))


def test_stale_cache_entry_is_rebuilt_never_used(tiny_checkpoint: Path, onnx_fp32: Path, tmp_path: Path):
    """An entry whose sidecar names another model is replaced by a fresh export."""
    spec = BackendSpec(
        name="onnxruntime", checkpoint=tiny_checkpoint, input_size=INPUT_SIZE, cache_dir=tmp_path
    )
    entry = ArtefactCache(tmp_path).path_for(
        model_hash(tiny_checkpoint), INPUT_SIZE, "fp32", "onnx", f"opset{DEFAULT_OPSET}"
    )
    shutil.copy(onnx_fp32, entry)
    meta = read_sidecar(onnx_fp32)
    meta["model_hash"] = "0" * 64
    write_sidecar(entry, meta)
    assert not is_valid(entry, {"model_hash": model_hash(tiny_checkpoint)})[0]
    backend = create_backend(spec)
    backend.load()
    assert backend.artefact == entry
    assert is_valid(entry, {"model_hash": model_hash(tiny_checkpoint), "input_size": INPUT_SIZE}) == (
        True,
        "ok",
    )


def test_fp16_graph_keeps_float32_io(eager, tiny_checkpoint: Path, tmp_path: Path, images) -> None:
    """fp16 weights and activations inside, float32 images/band/logits at the boundary (meant for CUDA)."""
    from causal_tune_ros.backends.export import export_onnx, load_segmenter

    model = load_segmenter(tiny_checkpoint)
    path = export_onnx(
        model, tmp_path / "fp16.onnx", INPUT_SIZE, "fp16", model_id=model_hash(tiny_checkpoint)
    )
    assert next(model.parameters()).dtype == torch.float32  # the caller's model is left alone
    graph = onnx.load(str(path)).graph
    assert {i.type.tensor_type.elem_type for i in (*graph.input, *graph.output)} == {onnx.TensorProto.FLOAT}
    assert sum(t.data_type == onnx.TensorProto.FLOAT16 for t in graph.initializer) > 10
    spec = BackendSpec(
        name="onnxruntime", checkpoint=tiny_checkpoint, artefact=path, input_size=INPUT_SIZE, precision="fp16"
    )
    got = create_backend(spec).infer(images, Band())  # onnxruntime's CPU kernels run it too
    want = eager.infer(images, Band())
    assert np.abs(got - want).max() < 0.02 * np.abs(want).max() + 1e-3


def test_no_artefact_and_no_checkpoint_is_explained() -> None:
    with pytest.raises(BackendError, match="needs an ONNX artefact or a checkpoint"):
        create_backend(BackendSpec(name="onnxruntime", input_size=INPUT_SIZE)).load()
