"""SegmentationPipeline: resolutions, dtypes, drivable mask, non-finite output, exact upsampling."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from causal_tune_ros.backends import BackendSpec, create_backend
from causal_tune_ros.backends.eager import EagerBackend
from causal_tune_ros.band import Band
from causal_tune_ros.classes import ClassSet, load_classes
from causal_tune_ros.errors import BackendError, ConfigError, ImageConversionError
from causal_tune_ros.pipeline import SegmentationPipeline, max_probability, upsample_argmax

from .backends.backend_support import INPUT_SIZE, build_tiny_model

# The backend tests' fixtures: the tiny model of backend_support saved once, and two test images.
from .backends.conftest import images as images
from .backends.conftest import tiny_checkpoint as tiny_checkpoint
from .backends.conftest import work_dir as work_dir


@pytest.fixture(scope="module")
def pipeline(tiny_checkpoint: Path) -> SegmentationPipeline:
    backend = create_backend("eager", checkpoint=tiny_checkpoint, input_size=INPUT_SIZE)
    return SegmentationPipeline(backend, load_classes(), drivable_classes=("road", "sidewalk"))


def _rgb(height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 8 + 2, width // 8 + 2, 3), dtype=np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


@pytest.mark.parametrize("size", [(37, 61), (101, 203), (56, 112), (241, 97)])
def test_outputs_at_input_resolution(pipeline: SegmentationPipeline, size: tuple[int, int]) -> None:
    rgb = _rgb(*size)
    result = pipeline.process(rgb, Band())
    assert result.class_mask.shape == size and result.class_mask.dtype == np.uint8
    assert result.class_mask.max() < 19
    assert result.confidence is not None and result.confidence.shape == size
    assert result.confidence.dtype == np.float32
    assert result.confidence.min() >= 1.0 / 19 - 1e-4 and result.confidence.max() <= 1.0
    assert (
        result.overlay is not None and result.overlay.shape == (*size, 3) and result.overlay.dtype == np.uint8
    )
    assert result.drivable_mask.shape == size and result.drivable_mask.dtype == np.uint8
    assert set(np.unique(result.drivable_mask)) <= {0, 255}
    drivable = np.isin(result.class_mask, [0, 1])  # road, sidewalk
    np.testing.assert_array_equal(result.drivable_mask == 255, drivable)
    assert 0 < result.model_seconds <= result.total_seconds
    assert result.band == Band()


def test_overlay_blends_palette_over_input(pipeline: SegmentationPipeline) -> None:
    rgb = _rgb(70, 130)
    result = pipeline.process(rgb, Band(), confidence=False)
    colours = load_classes().palette()[result.class_mask].astype(np.float64)
    want = 0.5 * rgb.astype(np.float64) + 0.5 * colours
    assert np.abs(result.overlay.astype(np.float64) - want).max() <= 1.0
    assert result.confidence is None
    assert pipeline.process(rgb, Band(), overlay=False).overlay is None


def test_mask_matches_full_resolution_bilinear_argmax(pipeline: SegmentationPipeline) -> None:
    rgb = _rgb(90, 170, seed=4)
    result = pipeline.process(rgb, Band(0.1, 0.5))
    batch = pipeline.preprocess(rgb)
    logits = pipeline.backend.infer(batch, Band(0.1, 0.5))[0]
    up = cv2.resize(
        np.ascontiguousarray(logits.transpose(1, 2, 0)), (170, 90), interpolation=cv2.INTER_LINEAR
    )
    np.testing.assert_array_equal(result.class_mask, up.argmax(axis=2))


def test_band_changes_the_result(pipeline: SegmentationPipeline) -> None:
    rgb = _rgb(112, 224, seed=2)
    a = pipeline.process(rgb, Band(0.2, 0.7)).confidence
    b = pipeline.process(rgb, Band(0.05, 0.3)).confidence
    assert np.abs(a - b).max() > 1e-4


def test_preprocess_is_scaled_chw(pipeline: SegmentationPipeline) -> None:
    rgb = _rgb(*INPUT_SIZE)
    batch = pipeline.preprocess(rgb)
    assert batch.shape == (1, 3, *INPUT_SIZE) and batch.dtype == np.float32 and batch.flags.c_contiguous
    np.testing.assert_allclose(batch[0], rgb.transpose(2, 0, 1) / 255.0, atol=1e-6)
    big = pipeline.preprocess(_rgb(560, 1120))  # shrinks with area interpolation
    assert big.shape == (1, 3, *INPUT_SIZE) and big.min() >= 0.0 and big.max() <= 1.0


def test_nan_logits_raise_backend_error(images) -> None:
    model = build_tiny_model()
    with torch.no_grad():
        model.head.classifier.bias.fill_(float("nan"))  # poisoned weights
    backend = EagerBackend(BackendSpec(name="eager", input_size=INPUT_SIZE), model=model)
    pipe = SegmentationPipeline(backend)
    with pytest.raises(BackendError, match="non-finite"):
        pipe.process(_rgb(64, 128), Band())


def test_bad_inputs_and_settings_are_refused(pipeline: SegmentationPipeline) -> None:
    with pytest.raises(ImageConversionError, match="uint8"):
        pipeline.process(_rgb(50, 60).astype(np.float32), Band())
    with pytest.raises(ImageConversionError, match=r"\(H, W, 3\)"):
        pipeline.process(np.zeros((50, 60), np.uint8), Band())
    with pytest.raises(ImageConversionError, match="empty"):
        pipeline.process(np.zeros((0, 60, 3), np.uint8), Band())
    with pytest.raises(ConfigError, match="unknown class"):
        SegmentationPipeline(pipeline.backend, drivable_classes=("runway",))
    with pytest.raises(ConfigError, match="overlay_alpha"):
        SegmentationPipeline(pipeline.backend, overlay_alpha=1.5)
    with pytest.raises(ConfigError, match="input_size"):
        SegmentationPipeline(pipeline.backend, input_size=(112, 224))


def test_class_set_smaller_than_model_is_refused(pipeline: SegmentationPipeline) -> None:
    five = ClassSet(names=tuple("abcde"), colors=np.zeros((5, 3), np.uint8))
    pipe = SegmentationPipeline(pipeline.backend, five, drivable_classes=("a",))
    with pytest.raises(ConfigError, match="19 classes but the class set has 5"):
        pipe.process(_rgb(56, 112), Band())


def test_describe_passes_backend_facts(pipeline: SegmentationPipeline) -> None:
    info = pipeline.describe()
    assert info["name"] == "eager" and info["input_size"] == list(INPUT_SIZE)
    assert info["drivable_classes"] == ["road", "sidewalk"] and info["upsample"] == "bilinear"


@pytest.mark.parametrize("out_size", [(480, 640), (131, 263), (40, 70), (7, 5)])
def test_upsample_argmax_is_exact(out_size: tuple[int, int]) -> None:
    """Equal to resizing every logit map bilinearly and taking the argmax, up- and downsampling."""
    rng = np.random.default_rng(7)
    blobs = rng.normal(size=(6, 8, 12)).astype(np.float32)
    logits = np.stack([cv2.resize(b, (50, 30), interpolation=cv2.INTER_CUBIC) for b in blobs])
    logits += 0.05 * rng.normal(size=logits.shape).astype(np.float32)
    up = cv2.resize(
        np.ascontiguousarray(logits.transpose(1, 2, 0)), out_size[::-1], interpolation=cv2.INTER_LINEAR
    )
    np.testing.assert_array_equal(upsample_argmax(logits, out_size), up.argmax(axis=2))


def test_nearest_mode_and_max_probability() -> None:
    logits = np.array([[[2.0, 0.0]], [[0.0, 0.0]]], dtype=np.float32)  # (K=2, 1, 2)
    np.testing.assert_allclose(max_probability(logits), [[1 / (1 + np.exp(-2.0)), 0.5]], rtol=1e-6)
    backend = create_backend("eager", input_size=INPUT_SIZE)
    assert SegmentationPipeline(backend, upsample="nearest").upsample == "nearest"
    with pytest.raises(ConfigError, match="upsample"):
        SegmentationPipeline(backend, upsample="cubic")


def test_pipeline_imports_no_ros_and_no_torch() -> None:
    """No rclpy ever; no torch until a torch backend loads (fast start for onnxruntime replay)."""
    code = "import sys, causal_tune_ros.pipeline; print('rclpy' in sys.modules, 'torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False False"


def test_upsample_argmax_chunks_give_the_same_answer() -> None:
    """Every boundary cell (random logits) and budgets from a few pixels to everything at once."""
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((7, 9, 13)).astype(np.float32)
    reference = upsample_argmax(logits, (157, 203), chunk_bytes=1 << 40)
    up = cv2.resize(
        np.ascontiguousarray(logits.transpose(1, 2, 0)), (203, 157), interpolation=cv2.INTER_LINEAR
    )
    np.testing.assert_array_equal(reference, up.argmax(axis=2))
    for budget in (1_000, 20_000, 300_000):  # slabs of a cell's block, a few cells, many cells
        np.testing.assert_array_equal(upsample_argmax(logits, (157, 203), chunk_bytes=budget), reference)


def test_upsample_argmax_working_memory_is_bounded() -> None:
    """Worst case (every low-resolution cell a class boundary): memory stays near the output's size.

    Before chunking, 1920 x 1080 from 19 x 129 x 259 logits traced ~0.8 GB of temporaries.
    """
    import tracemalloc

    from causal_tune_ros.limits import UPSAMPLE_CHUNK_BYTES

    logits = np.random.default_rng(5).standard_normal((19, 129, 259)).astype(np.float32)
    height, width = 1080, 1920
    tracemalloc.start()
    try:
        out = upsample_argmax(logits, (height, width))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.shape == (height, width)
    # Output + the row-gathered low-resolution map + one chunk (with slack for small index arrays).
    assert peak < height * width + height * 259 + 2 * UPSAMPLE_CHUNK_BYTES, peak


class _CountingBackend:
    """The pipeline's backend, recording the batch size of every ``infer`` call."""

    def __init__(self, backend: object) -> None:
        self._backend = backend
        self.batch_sizes: list[int] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self._backend, name)

    def infer(self, images: np.ndarray, band: Band) -> np.ndarray:
        self.batch_sizes.append(images.shape[0])
        return self._backend.infer(images, band)


def test_process_batch_is_one_backend_call_with_per_image_results(pipeline: SegmentationPipeline) -> None:
    """Images of different sizes in one forward; each result equals process() on that image alone."""
    rgbs = [_rgb(90, 170, seed=1), _rgb(56, 112, seed=2), _rgb(241, 97, seed=3)]
    band = Band(0.1, 0.5)
    alone = [pipeline.process(rgb, band) for rgb in rgbs]
    counting = _CountingBackend(pipeline.backend)
    together = SegmentationPipeline(counting, pipeline.classes).process_batch(rgbs, band)  # type: ignore[arg-type]
    batch_sizes = counting.batch_sizes
    assert batch_sizes == [3]
    assert len(together) == 3
    for rgb, one, many in zip(rgbs, alone, together, strict=True):
        assert many.class_mask.shape == rgb.shape[:2]
        np.testing.assert_array_equal(many.class_mask, one.class_mask)
        np.testing.assert_array_equal(many.drivable_mask, one.drivable_mask)
        np.testing.assert_array_equal(many.overlay, one.overlay)
        np.testing.assert_allclose(many.confidence, one.confidence, atol=1e-5)
        assert many.band == band and 0 < many.model_seconds <= many.total_seconds


def test_process_batch_refuses_empty_and_names_the_bad_image(pipeline: SegmentationPipeline) -> None:
    with pytest.raises(ImageConversionError, match="non-empty"):
        pipeline.process_batch([], Band())
    with pytest.raises(ImageConversionError, match="image 1"):
        pipeline.process_batch([_rgb(56, 112), np.zeros((5, 5), np.uint8)], Band())
    results = pipeline.process_batch([_rgb(56, 112)], Band(), overlay=False, confidence=False)
    assert results[0].overlay is None and results[0].confidence is None
