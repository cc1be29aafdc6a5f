"""Eager backend, the backend spec and backend selection."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from causal_tune_ros.backends import BackendSpec, create_backend, parse_size, resolve_spec
from causal_tune_ros.backends.eager import EagerBackend
from causal_tune_ros.band import Band
from causal_tune_ros.errors import BackendError, ConfigError

from .backend_support import INPUT_SIZE, build_tiny_model


def test_spec_normalises_and_validates(tmp_path: Path) -> None:
    spec = BackendSpec(name="ONNXRuntime", checkpoint=str(tmp_path / "m.safetensors"), input_size="56x112")
    assert spec.name == "onnxruntime"
    assert spec.input_size == (56, 112)
    assert isinstance(spec.checkpoint, Path)
    assert parse_size([518, 1036]) == (518, 1036)
    with pytest.raises(ConfigError, match="multiples of 14"):
        BackendSpec(input_size=(50, 112))
    with pytest.raises(ConfigError, match="unknown backend"):
        BackendSpec(name="openvino")
    with pytest.raises(ConfigError, match="unknown precision"):
        BackendSpec(precision="bf16")
    with pytest.raises(ConfigError, match="unknown device"):
        BackendSpec(device="tpu")


def test_eager_matches_model_and_reports(tiny_checkpoint: Path, images: np.ndarray) -> None:
    backend = create_backend("eager", checkpoint=tiny_checkpoint, input_size=INPUT_SIZE)
    assert isinstance(backend, EagerBackend) and not backend.loaded
    logits = backend.infer(images, Band())  # loads lazily
    assert logits.shape == (2, 19, INPUT_SIZE[0] // 4, INPUT_SIZE[1] // 4)
    assert logits.dtype == np.float32
    with torch.inference_mode():
        want = build_tiny_model()(torch.from_numpy(images), torch.tensor([0.2, 0.7])).numpy()
    np.testing.assert_allclose(logits, want, rtol=0, atol=1e-5)
    info = backend.describe()
    assert info.name == "eager" and info.num_classes == 19
    assert info.input_size == INPUT_SIZE and info.versions["torch"] == torch.__version__
    assert info.artefact == str(tiny_checkpoint)


def test_band_is_a_runtime_input(tiny_checkpoint: Path, images: np.ndarray) -> None:
    backend = create_backend("eager", checkpoint=tiny_checkpoint, input_size=INPUT_SIZE)
    clear = backend.infer(images, Band(0.2, 0.7))
    snow = backend.infer(images, (0.05, 0.3))
    assert np.abs(clear - snow).max() > 1e-3
    np.testing.assert_array_equal(backend.infer(images, Band(0.2, 0.7)), clear)  # switching back restores it


def test_eager_rejects_bad_input(tiny_checkpoint: Path, images: np.ndarray) -> None:
    backend = create_backend("eager", checkpoint=tiny_checkpoint, input_size=INPUT_SIZE)
    with pytest.raises(BackendError, match="float32"):
        backend.infer(images.astype(np.float64), Band())
    with pytest.raises(BackendError, match=r"\(B, 3, 56, 112\)"):
        backend.infer(images[:, :, :42], Band())
    with pytest.raises(BackendError, match="numpy"):
        backend.infer(torch.from_numpy(images), Band())  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        backend.infer(images, (0.7, 0.2))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"precision": "int8"}, "int8"),
        ({"precision": "fp16"}, "fp16 eager inference needs CUDA"),
        ({"checkpoint": None}, "needs a checkpoint"),
    ],
)
def test_eager_refuses_what_it_cannot_run(tiny_checkpoint: Path, changes: dict, message: str) -> None:
    spec = BackendSpec(name="eager", checkpoint=tiny_checkpoint, input_size=INPUT_SIZE).with_changes(
        **changes
    )
    with pytest.raises(BackendError, match=message):
        create_backend(spec).load()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_eager_cuda_without_cuda_is_a_backend_error(tiny_checkpoint: Path) -> None:
    with pytest.raises(BackendError, match="no CUDA"):
        create_backend("eager", checkpoint=tiny_checkpoint, input_size=INPUT_SIZE, device="cuda").load()


def test_auto_resolves_to_what_this_machine_runs(tiny_checkpoint: Path) -> None:
    spec = BackendSpec(name="auto", checkpoint=tiny_checkpoint, input_size=INPUT_SIZE)
    resolved = resolve_spec(spec)
    try:
        import torch_tensorrt  # noqa: F401

        has_trt = torch.cuda.is_available()
    except ImportError:
        has_trt = False
    if has_trt:
        assert (resolved.name, resolved.device, resolved.precision) == ("tensorrt", "cuda", "fp16")
    else:
        assert (resolved.name, resolved.device, resolved.precision) == ("eager", "cpu", "fp32")
        assert create_backend(spec).name == "eager"


def test_given_model_is_used_and_batches_are_independent(images: np.ndarray) -> None:
    model = build_tiny_model(seed=3)
    backend = EagerBackend(BackendSpec(name="eager", input_size=INPUT_SIZE), model=model)
    both = backend.infer(images, Band())
    one = backend.infer(images[1:], Band())
    np.testing.assert_allclose(both[1:], one, atol=1e-5)


@pytest.mark.gpu
def test_eager_cuda_fp16_close_to_fp32(tiny_checkpoint: Path, images: np.ndarray) -> None:
    fp32 = create_backend("eager", checkpoint=tiny_checkpoint, input_size=INPUT_SIZE).infer(images, Band())
    spec = BackendSpec(name="eager", checkpoint=tiny_checkpoint, input_size=INPUT_SIZE, device="cuda")
    cuda32 = create_backend(spec).infer(images, Band())
    cuda16 = create_backend(spec.with_changes(precision="fp16")).infer(images, Band())
    np.testing.assert_allclose(cuda32, fp32, atol=1e-3)
    assert (cuda16.argmax(1) == fp32.argmax(1)).mean() > 0.98


def test_describe_is_typed_and_keeps_its_json_form() -> None:
    from causal_tune_ros.backends import BackendInfo

    backend = create_backend("eager", input_size=(28, 56))
    info = backend.describe()
    assert isinstance(info, BackendInfo)
    assert info.name == "eager" and info.input_size == (28, 56) and info.precision == "fp32"
    assert info.as_dict() == {
        "name": "eager",
        "device": info.device,
        "precision": "fp32",
        "input_size": [28, 56],
        "num_classes": 0,
        "artefact": None,
        "versions": info.versions,
    }
    json.dumps(info.as_dict())  # JSON-able as the node diagnostics and fleet metadata use it
