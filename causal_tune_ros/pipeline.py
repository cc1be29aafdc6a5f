"""One object the node, replay and demo share: an RGB image in, class mask / confidence / overlay / drivable
mask out, at the input's resolution, given a backend and a band.

Post-processing runs where the logits are: with numpy on the host (:mod:`causal_tune_ros.upsampling`) for
CPU backends, or as torch ops on the backend's device (:mod:`causal_tune_ros.postprocess_torch`) when the
backend runs on CUDA, so only uint8 / float16 results cross to the host. Both give the same class ids:
the exact argmax of the bilinearly upsampled logits. docs/PERFORMANCE.md has the measurements behind the
choice.

This module imports no rclpy (ROS stays in ``node/``) and no torch (the torch post-processor is imported
only when used).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from causal_tune_ros.backends.base import Backend, band_array
from causal_tune_ros.band import Band
from causal_tune_ros.classes import ClassSet, load_classes
from causal_tune_ros.drivable import drivable_mask
from causal_tune_ros.errors import BackendError, ConfigError, ImageConversionError
from causal_tune_ros.upsampling import max_probability, upsample_argmax

#: Upsampling modes: ``bilinear`` (exact bilinear-logit argmax, see the module docstring) or ``nearest``.
UPSAMPLE_MODES = ("bilinear", "nearest")
#: Where post-processing runs: ``auto`` (torch on the device for CUDA backends that keep their logits
#: there, else numpy), ``numpy`` (host) or ``torch`` (the backend's device, CPU included).
POSTPROCESS_MODES = ("auto", "numpy", "torch")


@dataclass
class SegmentationResult:
    """Outputs for one image, all at the input resolution.

    Attributes:
        class_mask: (H, W) uint8 train ids.
        confidence: (H, W) float32 maximum class probability in [0, 1], or ``None`` when not asked for.
        overlay: (H, W, 3) uint8 RGB palette blended over the input, or ``None`` when not asked for.
        drivable_mask: (H, W) uint8, 255 where the class is drivable, else 0.
        model_seconds: Time spent in the backend.
        total_seconds: Time of the whole :meth:`SegmentationPipeline.process` call.
        band: The band the model ran with.
    """

    class_mask: np.ndarray
    confidence: np.ndarray | None
    overlay: np.ndarray | None
    drivable_mask: np.ndarray
    model_seconds: float
    total_seconds: float
    band: Band


class SegmentationPipeline:
    """Image in, segmentation outputs out, at the input's resolution.

    ``process`` keeps no per-call state, but backends are not made for concurrent calls: run one
    pipeline (and backend) per worker thread.

    Args:
        backend: A :class:`~causal_tune_ros.backends.Backend` (loaded lazily on first use).
        classes: The class set (default: the packaged Cityscapes 19 classes).
        drivable_classes: Names of the classes that count as drivable.
        overlay_alpha: Weight of the palette colour in the overlay, in [0, 1].
        input_size: Optional check: must equal ``backend.input_size`` (kept for callers that pass it).
        upsample: ``bilinear`` (exact bilinear-logit argmax, default) or ``nearest`` (argmax at low
            resolution, nearest upsampling: fastest, blocky edges).
        postprocess: ``auto`` (default: on the GPU for CUDA backends with device output, numpy
            otherwise), ``numpy`` or ``torch``; the class ids are the same either way.

    Raises:
        ConfigError: Unknown drivable class, alpha outside [0, 1], unknown upsample or postprocess mode,
            ``torch`` post-processing with a backend that has no device output, an input size different
            from the backend's, or a class set that does not match the model's outputs.
    """

    def __init__(
        self,
        backend: Backend,
        classes: ClassSet | None = None,
        drivable_classes: Sequence[str] = ("road",),
        overlay_alpha: float = 0.5,
        input_size: tuple[int, int] | None = None,
        upsample: str = "bilinear",
        postprocess: str = "auto",
    ) -> None:
        self.backend = backend
        self.classes = classes if classes is not None else load_classes()
        if isinstance(drivable_classes, str):
            drivable_classes = (drivable_classes,)
        self.drivable_classes = tuple(drivable_classes)
        self.drivable_ids = [self.classes.index(name) for name in self.drivable_classes]
        if not 0.0 <= float(overlay_alpha) <= 1.0:
            raise ConfigError(f"overlay_alpha must be in [0, 1], got {overlay_alpha}")
        self.overlay_alpha = float(overlay_alpha)
        if upsample not in UPSAMPLE_MODES:
            raise ConfigError(f"upsample must be one of {', '.join(UPSAMPLE_MODES)}, got {upsample!r}")
        self.upsample = upsample
        if input_size is not None and tuple(input_size) != tuple(backend.input_size):
            raise ConfigError(
                f"input_size {tuple(input_size)} differs from the backend's {backend.input_size}"
            )
        if postprocess not in POSTPROCESS_MODES:
            raise ConfigError(
                f"postprocess must be one of {', '.join(POSTPROCESS_MODES)}, got {postprocess!r}"
            )
        if postprocess == "torch" and not backend.device_output:
            raise ConfigError(
                f"postprocess 'torch' needs a torch backend; {backend.name} returns host arrays"
            )
        self.postprocess = postprocess
        self._palette = self.classes.palette()
        self._checked_classes = False
        self._device_post: Any = None
        self._pool: ThreadPoolExecutor | None = None

    @property
    def postprocess_device(self) -> str | None:
        """Device the torch post-processor runs on, or ``None`` for the numpy path."""
        if self.postprocess == "numpy" or not self.backend.device_output:
            return None
        device = self.backend.torch_device
        if self.postprocess == "auto" and device != "cuda":
            return None
        return device

    @property
    def input_size(self) -> tuple[int, int]:
        """Network input ``(H, W)`` (the backend's)."""
        return tuple(self.backend.input_size)  # type: ignore[return-value]

    def describe(self) -> dict[str, Any]:
        """The backend's description plus the pipeline settings."""
        info = self.backend.describe().as_dict()
        info.update(
            {
                "classes": len(self.classes),
                "drivable_classes": list(self.drivable_classes),
                "upsample": self.upsample,
                "postprocess": self.postprocess_device or "numpy",
            }
        )
        return info

    # ------------------------------------------------------------------ steps

    def preprocess(self, rgb: np.ndarray) -> np.ndarray:
        """Resize to the network input and convert to (1, 3, H, W) float32 in [0, 1].

        Area interpolation when shrinking (anti-aliased), bilinear when enlarging; the HWC -> CHW
        transpose and the scaling to [0, 1] happen in one pass into a fresh array.

        Args:
            rgb: (H, W, 3) uint8 RGB.

        Returns:
            (1, 3, h, w) float32, C-contiguous.

        Raises:
            ImageConversionError: For anything but a non-empty (H, W, 3) uint8 array.
        """
        h, w = self.input_size
        batch = np.empty((1, 3, h, w), dtype=np.float32)
        self._preprocess_into(rgb, batch[0])
        return batch

    def _preprocess_into(self, rgb: np.ndarray, out: np.ndarray) -> None:
        """Validate ``rgb``, resize it to the network input and write it scaled to [0, 1] into ``out``."""
        if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            shape = getattr(rgb, "shape", None)
            raise ImageConversionError(
                f"expected an (H, W, 3) uint8 RGB image, got {type(rgb).__name__} {shape}"
            )
        if rgb.shape[0] == 0 or rgb.shape[1] == 0:
            raise ImageConversionError(f"empty image {rgb.shape}")
        h, w = self.input_size
        if rgb.shape[:2] != (h, w):
            shrinking = rgb.shape[0] * rgb.shape[1] > h * w
            rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
        np.multiply(rgb.transpose(2, 0, 1), np.float32(1.0 / 255.0), out=out, dtype=np.float32)

    def _check_classes(self) -> None:
        num = int(getattr(self.backend, "num_classes", 0) or 0)
        if num and num > len(self.classes):
            raise ConfigError(
                f"the model predicts {num} classes but the class set has {len(self.classes)}; "
                "pass the class file the model was trained with"
            )
        self._checked_classes = bool(num)

    def process(
        self,
        rgb: np.ndarray,
        band: Band | Sequence[float] | None = None,
        overlay: bool = True,
        confidence: bool = True,
    ) -> SegmentationResult:
        """Segment one image.

        Args:
            rgb: (H, W, 3) uint8 RGB, any size.
            band: The band to run with (default: the paper's ``Band()``).
            overlay: Also render the palette overlay.
            confidence: Also compute the confidence map.

        Returns:
            A :class:`SegmentationResult` at (H, W).

        Raises:
            ImageConversionError: Bad image array.
            BackendError: Inference failure or non-finite (NaN / Inf) model output.
            ConfigError: Bad band, or a class set smaller than the model's outputs.
        """
        return self.process_batch([rgb], band, overlay=overlay, confidence=confidence)[0]

    def process_batch(
        self,
        rgbs: Sequence[np.ndarray],
        band: Band | Sequence[float] | None = None,
        overlay: bool = True,
        confidence: bool = True,
    ) -> list[SegmentationResult]:
        """Segment several images (e.g. one per camera) with ONE backend call of batch ``len(rgbs)``.

        The images may have different sizes: each is resized to the network input, and each result is
        at its own image's resolution, with the same class ids as :meth:`process` on that image alone.
        Every result's ``model_seconds`` is the time of the shared backend call and ``total_seconds``
        the time of the whole batch.

        Args:
            rgbs: (H_i, W_i, 3) uint8 RGB images, at least one.
            band: The band all images run with (default: the paper's ``Band()``).
            overlay: Also render the palette overlays.
            confidence: Also compute the confidence maps.

        Returns:
            One :class:`SegmentationResult` per image, in order.

        Raises:
            ImageConversionError: No images, or a bad image array (naming its position).
            BackendError: Inference failure or non-finite (NaN / Inf) model output.
            ConfigError: Bad band, or a class set smaller than the model's outputs.
        """
        started = time.perf_counter()
        band = (
            band if isinstance(band, Band) else Band() if band is None else Band(*band_array(band).tolist())
        )
        if isinstance(rgbs, np.ndarray) or len(rgbs) == 0:
            raise ImageConversionError("process_batch needs a non-empty sequence of (H, W, 3) images")
        h, w = self.input_size
        batch = np.empty((len(rgbs), 3, h, w), dtype=np.float32)
        for index, rgb in enumerate(rgbs):
            try:
                self._preprocess_into(rgb, batch[index])
            except ImageConversionError as exc:
                if len(rgbs) == 1:
                    raise
                raise ImageConversionError(f"image {index}: {exc}") from exc
        device = self.postprocess_device
        model_started = time.perf_counter()
        if device is None:
            logits = self.backend.infer(batch, band)
            model_seconds = time.perf_counter() - model_started
            if not np.isfinite(logits).all():
                bad = int(logits.size - np.isfinite(logits).sum())
                raise BackendError(f"the model produced {bad} non-finite logits (NaN/Inf) of {logits.size}")
            post = self._postprocess
        else:
            post = self._torch_postprocessor(device)
            logits = self.backend.infer_device(batch, band)
            post.check_finite(logits)  # waits for the device, so the model time is complete
            model_seconds = time.perf_counter() - model_started
        if not self._checked_classes:
            self._check_classes()
        if device is None and len(rgbs) > 1:
            # numpy and OpenCV release the GIL: the images of a batch are post-processed side by side.
            pool = self._host_pool()
            jobs = [pool.submit(post, logits[i], rgb, overlay, confidence) for i, rgb in enumerate(rgbs)]
            outputs = [job.result() for job in jobs]
        else:
            outputs = [post(logits[i], rgb, overlay, confidence) for i, rgb in enumerate(rgbs)]
        total_seconds = time.perf_counter() - started
        return [
            SegmentationResult(
                class_mask=class_mask,
                confidence=conf,
                overlay=blended,
                drivable_mask=drivable,
                model_seconds=model_seconds,
                total_seconds=total_seconds,
                band=band,
            )
            for class_mask, conf, blended, drivable in outputs
        ]

    def _host_pool(self) -> ThreadPoolExecutor:
        """Threads for host post-processing of a batch (one per CPU core), made on first use."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=max(1, os.cpu_count() or 1), thread_name_prefix="causal-tune-post"
            )
        return self._pool

    def _torch_postprocessor(self, device: str) -> Any:
        """The torch post-processor for ``device``, built on first use (imports torch)."""
        if self._device_post is None or str(self._device_post.device.type) != device:
            from causal_tune_ros.postprocess_torch import TorchPostprocessor

            self._device_post = TorchPostprocessor(
                self._palette, self.drivable_ids, self.overlay_alpha, self.upsample, device
            )
        return self._device_post

    def _postprocess(
        self, logits: np.ndarray, rgb: np.ndarray, overlay: bool, confidence: bool
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray]:
        """One image's ``(class_mask, confidence, overlay, drivable)`` from its (K, h, w) logits (numpy)."""
        height, width = rgb.shape[:2]
        if self.upsample == "bilinear":
            class_mask = upsample_argmax(logits, (height, width))
        else:
            low = logits.argmax(axis=0).astype(np.uint8)
            class_mask = cv2.resize(low, (width, height), interpolation=cv2.INTER_NEAREST)
        conf = None
        if confidence:
            conf = cv2.resize(max_probability(logits), (width, height), interpolation=cv2.INTER_LINEAR)
        drivable = drivable_mask(class_mask, self.drivable_ids)
        blended = None
        if overlay:
            colours = self._palette[class_mask]  # blended in place: one (H, W, 3) array, not two
            blended = cv2.addWeighted(
                rgb, 1.0 - self.overlay_alpha, colours, self.overlay_alpha, 0.0, dst=colours
            )
        return class_mask, conf, blended, drivable
