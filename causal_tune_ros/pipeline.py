"""One object the node, replay and demo share: an RGB image in, class mask / confidence / overlay / drivable
mask out, at the input's resolution, given a backend and a band.

Post-processing choice (measurements: docs/PERFORMANCE.md, "Design measurements"):

- bilinear upsampling of all K logit maps to the image, then argmax (what mmseg does): the reference
  quality, but it touches K x H x W floats, the slowest;
- argmax at low resolution, then nearest upsampling: fast, but blocky edges (8-pixel steps at 1080p) and
  about 1 in 100 pixels differ from the reference;
- **chosen: exact bilinear argmax computed only where it can differ from the low-resolution answer.**
  Bilinear weights are non-negative and sum to one, so if the four low-resolution cells around an output
  pixel share the same argmax class c, then ``L_c - L_j`` is positive at all four and stays positive
  everywhere between them: the upsampled argmax is c. Only pixels whose four source cells disagree (a thin
  band along class boundaries) get the full K-class bilinear interpolation. The result is identical to
  the reference (bit-for-bit on the class ids) at a fraction of the cost. The boundary pixels are
  interpolated a chunk at a time (``limits.UPSAMPLE_CHUNK_BYTES``), so even a frame where every cell is
  a boundary costs a bounded amount of memory.

Confidence is the maximum softmax probability computed at the logits' resolution and upsampled
bilinearly (one channel instead of K): a smooth, cheap estimate for display and diagnostics.

This module imports no rclpy (ROS stays in ``node/``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from causal_tune_ros.backends.base import Backend, band_array
from causal_tune_ros.band import Band
from causal_tune_ros.classes import ClassSet, load_classes
from causal_tune_ros.drivable import drivable_mask
from causal_tune_ros.errors import BackendError, ConfigError, ImageConversionError
from causal_tune_ros.limits import UPSAMPLE_CHUNK_BYTES

#: Upsampling modes: ``bilinear`` (exact bilinear-logit argmax, see the module docstring) or ``nearest``.
UPSAMPLE_MODES = ("bilinear", "nearest")


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


def _sample_grid(out_len: int, in_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear source indices and weights along one axis (``align_corners=False``, edge clamped).

    Returns:
        ``(i0, i1, w1)``: for output index ``o`` the value is ``(1 - w1) * v[i0] + w1 * v[i1]``.
    """
    pos = (np.arange(out_len, dtype=np.float64) + 0.5) * (in_len / out_len) - 0.5
    pos = np.clip(pos, 0.0, in_len - 1)
    i0 = np.floor(pos).astype(np.intp)
    i1 = np.minimum(i0 + 1, in_len - 1)
    return i0, i1, (pos - i0).astype(np.float32)


def upsample_argmax(
    logits: np.ndarray, out_size: tuple[int, int], chunk_bytes: int = UPSAMPLE_CHUNK_BYTES
) -> np.ndarray:
    """Argmax of the bilinearly upsampled logits, computed exactly but only near class boundaries.

    Equal to ``argmax_k resize_bilinear(logits[k], out_size)`` (``align_corners=False``, as
    ``cv2.resize(..., INTER_LINEAR)``); see the module docstring for why the shortcut is exact.

    Output pixels are grouped by the low-resolution cell ``(y0, x0)`` they interpolate from: a cell
    whose 2 x 2 neighbourhood holds one class fills its block with that class; the "boundary" cells get
    their whole block interpolated at once (one (rows, cols, K) tensor per cell, no per-pixel gathers),
    a chunk of cells at a time so that the K-class temporaries stay within ``chunk_bytes`` however many
    boundary cells there are (blocks larger than that are split into slabs of rows and columns).
    Working memory beyond the (H, W) output is therefore about ``H * w + chunk_bytes`` bytes.

    Args:
        logits: (K, h, w) float32, K <= 255.
        out_size: Output ``(H, W)``.
        chunk_bytes: Memory budget of one chunk of boundary cells (results do not depend on it).

    Returns:
        (H, W) uint8 class ids.
    """
    k, h, w = logits.shape
    H, W = out_size
    low = logits.argmax(axis=0).astype(np.uint8)
    y0, _, wy = _sample_grid(H, h)
    x0, _, wx = _sample_grid(W, w)
    next_x = np.minimum(np.arange(w) + 1, w - 1)
    next_y = np.minimum(np.arange(h) + 1, h - 1)
    down = low[next_y]
    disagree = (low != low[:, next_x]) | (low != down) | (low != down[:, next_x])
    # Row then column gathers (np.take) are ~8x faster than one np.ix_ fancy index.
    out = np.take(np.take(low, y0, axis=0), x0, axis=1)  # right wherever the four source cells agree
    cy, cx = np.nonzero(disagree)
    if cy.size == 0:
        return out
    # Output rows / columns of each cell: contiguous runs, since y0 and x0 are non-decreasing.
    cells_y, cells_x = np.arange(h), np.arange(w)
    row_start = np.searchsorted(y0, cells_y, "left")
    row_count = np.searchsorted(y0, cells_y, "right") - row_start
    col_start = np.searchsorted(x0, cells_x, "left")
    col_count = np.searchsorted(x0, cells_x, "right") - col_start
    keep = (row_count[cy] > 0) & (col_count[cx] > 0)  # cells no output pixel samples from
    cy, cx = cy[keep], cx[keep]
    # Bytes per interpolated output pixel: two float32 K-vectors alive at once (the blend and its
    # sum), the int64 argmax, and the index / mask arrays of the write-back.
    per_pixel = 8 * k + 32
    max_pixels = max(1, int(chunk_bytes) // per_pixel)
    R, C = int(row_count.max()), int(col_count.max())
    slab_c = min(C, max_pixels)
    slab_r = min(R, max(1, max_pixels // slab_c))
    per_chunk = max(1, max_pixels // (slab_r * slab_c))
    cells = logits.transpose(1, 2, 0)  # (h, w, K) view
    for r_off in range(0, R, slab_r):
        r_idx = r_off + np.arange(min(slab_r, R - r_off))
        for c_off in range(0, C, slab_c):
            c_idx = c_off + np.arange(min(slab_c, C - c_off))
            for first in range(0, cy.size, per_chunk):
                _interpolate_block(
                    out,
                    cells,
                    cy[first : first + per_chunk],
                    cx[first : first + per_chunk],
                    (row_start, row_count, r_idx, wy, next_y),
                    (col_start, col_count, c_idx, wx, next_x),
                )
    return out


def _interpolate_block(
    out: np.ndarray,
    cells: np.ndarray,
    cy: np.ndarray,
    cx: np.ndarray,
    rows_of: tuple[np.ndarray, ...],
    cols_of: tuple[np.ndarray, ...],
) -> None:
    """Exact bilinear argmax of the output pixels ``rows x cols`` of the boundary cells ``(cy, cx)``.

    ``rows_of`` / ``cols_of`` are ``(start, count, offsets, weights, next)`` per axis: each cell's
    first output row and row count, the block rows to do in this call, the bilinear weights of every
    output row, and the next source row of each cell; columns likewise. Writes into ``out``.
    """
    row_start, row_count, r_idx, wy, next_y = rows_of
    col_start, col_count, c_idx, wx, next_x = cols_of
    H, W = out.shape
    r_valid = r_idx[None, :] < row_count[cy, None]  # (n, r): rows past this cell's block are padding
    c_valid = c_idx[None, :] < col_count[cx, None]  # (n, c)
    live = r_valid.any(axis=1) & c_valid.any(axis=1)
    if not live.all():
        cy, cx, r_valid, c_valid = cy[live], cx[live], r_valid[live], c_valid[live]
    if cy.size == 0:
        return
    rows = np.minimum(row_start[cy, None] + r_idx, H - 1)  # (n, r), padding clamped
    cols = np.minimum(col_start[cx, None] + c_idx, W - 1)  # (n, c)
    fy = wy[rows][:, :, None, None]
    fx = wx[cols][:, None, :, None]
    c00 = cells[cy, cx][:, None, None]
    c01 = cells[cy, next_x[cx]][:, None, None]
    c10 = cells[next_y[cy], cx][:, None, None]
    c11 = cells[next_y[cy], next_x[cx]][:, None, None]
    top = c00 + fx * (c01 - c00)
    bottom = c10 + fx * (c11 - c10)
    bottom -= top
    bottom = bottom * fy
    bottom += top
    classes = bottom.argmax(axis=-1).astype(np.uint8)  # (n, r, c)
    valid = r_valid[:, :, None] & c_valid[:, None, :]
    out[
        np.broadcast_to(rows[:, :, None], valid.shape)[valid],
        np.broadcast_to(cols[:, None, :], valid.shape)[valid],
    ] = classes[valid]


def max_probability(logits: np.ndarray) -> np.ndarray:
    """Maximum softmax probability per pixel.

    Args:
        logits: (K, h, w) float32.

    Returns:
        (h, w) float32 in (0, 1].
    """
    peak = logits.max(axis=0)
    # max softmax = 1 / sum_k exp(L_k - L_max): no need to normalise every class.
    return (1.0 / np.exp(logits - peak).sum(axis=0)).astype(np.float32)


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

    Raises:
        ConfigError: Unknown drivable class, alpha outside [0, 1], unknown upsample mode, an input size
            different from the backend's, or a class set that does not match the model's outputs.
    """

    def __init__(
        self,
        backend: Backend,
        classes: ClassSet | None = None,
        drivable_classes: Sequence[str] = ("road",),
        overlay_alpha: float = 0.5,
        input_size: tuple[int, int] | None = None,
        upsample: str = "bilinear",
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
        self._palette = self.classes.palette()
        self._checked_classes = False

    @property
    def input_size(self) -> tuple[int, int]:
        """Network input ``(H, W)`` (the backend's)."""
        return tuple(self.backend.input_size)  # type: ignore[return-value]

    def describe(self) -> dict[str, Any]:
        """The backend's description plus the pipeline settings."""
        info = dict(self.backend.describe())
        info.update(
            {
                "classes": len(self.classes),
                "drivable_classes": list(self.drivable_classes),
                "upsample": self.upsample,
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
        batch = np.empty((1, 3, h, w), dtype=np.float32)
        np.multiply(rgb.transpose(2, 0, 1), np.float32(1.0 / 255.0), out=batch[0], dtype=np.float32)
        return batch

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
        started = time.perf_counter()
        band = (
            band if isinstance(band, Band) else Band() if band is None else Band(*band_array(band).tolist())
        )
        height, width = rgb.shape[:2] if isinstance(rgb, np.ndarray) and rgb.ndim == 3 else (0, 0)
        batch = self.preprocess(rgb)
        model_started = time.perf_counter()
        logits = self.backend.infer(batch, band)
        model_seconds = time.perf_counter() - model_started
        if not self._checked_classes:
            self._check_classes()
        logits = logits[0]
        if not np.isfinite(logits).all():
            bad = int(logits.size - np.isfinite(logits).sum())
            raise BackendError(f"the model produced {bad} non-finite logits (NaN/Inf) of {logits.size}")
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
        return SegmentationResult(
            class_mask=class_mask,
            confidence=conf,
            overlay=blended,
            drivable_mask=drivable,
            model_seconds=model_seconds,
            total_seconds=time.perf_counter() - started,
            band=band,
        )
