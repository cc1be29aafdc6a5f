"""Post-processing as torch ops (on the CPU here, on CUDA under the ``gpu`` marker) against the numpy path."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from causal_tune_ros.backends import BackendSpec, create_backend
from causal_tune_ros.backends.onnxruntime_backend import OnnxRuntimeBackend
from causal_tune_ros.band import Band
from causal_tune_ros.classes import load_classes
from causal_tune_ros.errors import BackendError, ConfigError
from causal_tune_ros.pipeline import SegmentationPipeline
from causal_tune_ros.postprocess_torch import TorchPostprocessor
from causal_tune_ros.upsampling import nearest_indices, upsample_argmax

from .backends.backend_support import INPUT_SIZE

# The backend tests' fixture: the tiny model of backend_support saved once.
from .backends.conftest import tiny_checkpoint as tiny_checkpoint
from .backends.conftest import work_dir as work_dir

SIZES = [(37, 61), (90, 170), (241, 97), (14, 28)]  # up- and downsampling, odd sizes


def _rgb(height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 8 + 2, width // 8 + 2, 3), dtype=np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def _pipelines(checkpoint: Path, device: str, precision: str, upsample: str = "bilinear"):
    backend = create_backend(
        "eager", checkpoint=checkpoint, input_size=INPUT_SIZE, device=device, precision=precision
    )
    kwargs = {"drivable_classes": ("road", "sidewalk"), "upsample": upsample}
    return (
        SegmentationPipeline(backend, postprocess="numpy", **kwargs),
        SegmentationPipeline(backend, postprocess="torch", **kwargs),
    )


def _assert_same(numpy_pipe: SegmentationPipeline, torch_pipe: SegmentationPipeline) -> None:
    rgbs = [_rgb(*size, seed=i) for i, size in enumerate(SIZES)]
    for band in (Band(), Band(0.05, 0.3)):
        want = numpy_pipe.process_batch(rgbs, band)
        got = torch_pipe.process_batch(rgbs, band)
        for a, b in zip(want, got, strict=True):
            np.testing.assert_array_equal(b.class_mask, a.class_mask)
            np.testing.assert_array_equal(b.drivable_mask, a.drivable_mask)
            np.testing.assert_array_equal(b.overlay, a.overlay)
            assert b.confidence.dtype == np.float32 and b.confidence.shape == a.confidence.shape
            np.testing.assert_allclose(b.confidence, a.confidence, atol=2e-3)  # float16 transfer


@pytest.mark.parametrize("upsample", ["bilinear", "nearest"])
def test_torch_postprocessing_on_cpu_equals_numpy(tiny_checkpoint: Path, upsample: str) -> None:
    numpy_pipe, torch_pipe = _pipelines(tiny_checkpoint, "cpu", "fp32", upsample)
    assert numpy_pipe.postprocess_device is None and torch_pipe.postprocess_device == "cpu"
    assert torch_pipe.describe()["postprocess"] == "cpu"
    _assert_same(numpy_pipe, torch_pipe)


def test_class_ids_exact_on_noisy_logits_in_small_chunks() -> None:
    """Every cell a class boundary (noise), chunks of a few rows, fp32 and fp16 logits."""
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((7, 9, 13)).astype(np.float32)
    palette = load_classes().palette()
    for chunk_bytes in (1, 4_000, 1 << 30):
        post = TorchPostprocessor(palette, [0], 0.5, "bilinear", "cpu", chunk_bytes=chunk_bytes)
        for size in [(157, 203), (5, 7), (9, 13)]:
            got = post.class_ids(torch.from_numpy(logits), size).numpy()
            np.testing.assert_array_equal(got, upsample_argmax(logits, size))
    half = logits.astype(np.float16)
    got = post.class_ids(torch.from_numpy(half), (100, 120)).numpy()
    np.testing.assert_array_equal(got, upsample_argmax(half.astype(np.float32), (100, 120)))


def test_nearest_indices_are_opencv_nearest() -> None:
    for out_len, in_len in [(1080, 129), (1920, 259), (7, 13), (100, 100), (37, 14)]:
        row = np.arange(in_len, dtype=np.uint8 if in_len < 256 else np.uint16)[None]
        want = cv2.resize(row, (out_len, 1), interpolation=cv2.INTER_NEAREST)[0]
        np.testing.assert_array_equal(nearest_indices(out_len, in_len), want)


def test_non_finite_logits_refused_on_the_device_path() -> None:
    post = TorchPostprocessor(load_classes().palette(), [0], 0.5, "bilinear", "cpu")
    logits = torch.zeros(1, 19, 4, 4)
    logits[0, 3, 1, 1] = float("nan")
    with pytest.raises(BackendError, match="1 non-finite"):
        post.check_finite(logits)


def test_auto_chooses_numpy_on_cpu_and_torch_needs_a_torch_backend() -> None:
    eager = create_backend("eager", input_size=INPUT_SIZE)
    assert SegmentationPipeline(eager).postprocess_device is None  # auto: CPU -> numpy
    ort = OnnxRuntimeBackend(BackendSpec(name="onnxruntime", input_size=INPUT_SIZE))  # never loaded
    assert SegmentationPipeline(ort, postprocess="auto").postprocess_device is None
    with pytest.raises(ConfigError, match="needs a torch backend"):
        SegmentationPipeline(ort, postprocess="torch")
    with pytest.raises(ConfigError, match="postprocess"):
        SegmentationPipeline(eager, postprocess="gpu")
    with pytest.raises(BackendError, match="host arrays only"):
        ort.infer_device(np.zeros((1, 3, *INPUT_SIZE), np.float32), Band())


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_gpu_postprocessing_equals_numpy(tiny_checkpoint: Path, precision: str) -> None:
    numpy_pipe, torch_pipe = _pipelines(tiny_checkpoint, "cuda", precision)
    auto = SegmentationPipeline(torch_pipe.backend)
    assert auto.postprocess_device == "cuda"  # auto picks the GPU for a CUDA backend
    _assert_same(numpy_pipe, torch_pipe)
