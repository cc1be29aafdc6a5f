"""Training augmentation: random scale, crop, flip and photometric distortion (numpy + OpenCV).

The recipe is mmseg's (which Rein and Causal-Tune train with): resize into a base box keeping the aspect
ratio, random scale, random crop (re-drawn while one class dominates it), horizontal flip, and a
photometric distortion (brightness, contrast, saturation, hue, each with probability 0.5).

Everything random is drawn from a ``numpy.random.Generator`` the caller passes in. The trainer seeds it
from ``(seed, epoch, sample index)``, so a sample's augmentation does not depend on the worker, the rank
or on whether the run was resumed, which is what makes resume exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from causal_tune_ros.classes import IGNORE_ID
from causal_tune_ros.sizes import PATCH_SIZE


@dataclass(frozen=True)
class AugmentParams:
    """Augmentation settings (see :class:`causal_tune_ros.training.config.AugmentConfig`)."""

    crop_size: tuple[int, int] = (512, 512)
    base_size: tuple[int, int] | None = None
    scale_range: tuple[float, float] = (0.5, 2.0)
    cat_max_ratio: float = 0.75
    hflip_prob: float = 0.5
    photometric: bool = True
    brightness_delta: float = 32.0
    contrast_range: tuple[float, float] = (0.5, 1.5)
    saturation_range: tuple[float, float] = (0.5, 1.5)
    hue_delta: float = 18.0
    ignore_index: int = IGNORE_ID
    short_edge: tuple[int, ...] | None = None
    max_long_edge: int | None = None


def resize_pair(
    image: np.ndarray, labels: np.ndarray, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Resize an image (bilinear) and its labels (nearest) to ``size = (h, w)``."""
    h, w = size
    if image.shape[:2] == (h, w):
        return image, labels
    # INTER_AREA avoids aliasing when shrinking a lot; labels must never be interpolated.
    interp = cv2.INTER_AREA if h * w < image.shape[0] * image.shape[1] else cv2.INTER_LINEAR
    image = cv2.resize(image, (w, h), interpolation=interp)
    labels = cv2.resize(labels, (w, h), interpolation=cv2.INTER_NEAREST)
    return image, labels


def fit_size(shape: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """The largest ``(h, w)`` with ``shape``'s aspect ratio inside ``box`` (mmseg ``keep_ratio``).

    The box is read orientation-free (long side against long side), as mmseg does with ``(2048, 512)``.
    """
    h, w = shape
    long_box, short_box = max(box), min(box)
    factor = min(long_box / max(h, w), short_box / min(h, w))
    return max(1, round(h * factor)), max(1, round(w * factor))


def random_scale(
    image: np.ndarray, labels: np.ndarray, params: AugmentParams, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Resize into ``base_size`` (if any), then by a factor drawn from ``scale_range``; or, with
    ``short_edge``, the short edge to a length drawn from it (long edge at most ``max_long_edge``)."""
    h, w = image.shape[:2]
    if params.short_edge:
        factor = float(params.short_edge[int(rng.integers(len(params.short_edge)))]) / min(h, w)
        if params.max_long_edge is not None:
            factor = min(factor, params.max_long_edge / max(h, w))
        return resize_pair(image, labels, (max(1, round(h * factor)), max(1, round(w * factor))))
    if params.base_size is not None:
        h, w = fit_size((h, w), params.base_size)
    lo, hi = params.scale_range
    factor = float(rng.uniform(lo, hi)) if hi > lo else float(lo)
    size = (max(1, round(h * factor)), max(1, round(w * factor)))
    return resize_pair(image, labels, size)


def pad_pair(
    image: np.ndarray, labels: np.ndarray, size: tuple[int, int], ignore_index: int = IGNORE_ID
) -> tuple[np.ndarray, np.ndarray]:
    """Pad bottom/right to at least ``size`` (image with 0, labels with ``ignore_index``)."""
    h, w = image.shape[:2]
    ph, pw = max(0, size[0] - h), max(0, size[1] - w)
    if ph == 0 and pw == 0:
        return image, labels
    image = np.pad(image, ((0, ph), (0, pw), (0, 0)), constant_values=0)
    labels = np.pad(labels, ((0, ph), (0, pw)), constant_values=ignore_index)
    return image, labels


def random_crop(
    image: np.ndarray, labels: np.ndarray, params: AugmentParams, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Crop ``crop_size`` (padding first if the image is smaller), avoiding crops one class dominates."""
    ch, cw = params.crop_size
    image, labels = pad_pair(image, labels, (ch, cw), params.ignore_index)
    h, w = labels.shape
    y0 = x0 = 0
    for _ in range(10):
        y0 = int(rng.integers(0, h - ch + 1))
        x0 = int(rng.integers(0, w - cw + 1))
        if params.cat_max_ratio >= 1.0:
            break
        crop = labels[y0 : y0 + ch, x0 : x0 + cw]
        counts = np.bincount(crop.ravel(), minlength=256)
        counts[params.ignore_index] = 0
        valid = counts[counts > 0]
        if len(valid) > 1 and valid.max() / valid.sum() < params.cat_max_ratio:
            break
    return image[y0 : y0 + ch, x0 : x0 + cw], labels[y0 : y0 + ch, x0 : x0 + cw]


def photometric_distortion(image: np.ndarray, params: AugmentParams, rng: np.random.Generator) -> np.ndarray:
    """Brightness, contrast, saturation and hue jitter, each applied with probability 0.5.

    Contrast goes before or after the HSV changes (chosen at random), as in mmseg.
    """
    img = image.astype(np.float32)
    if rng.random() < 0.5 and params.brightness_delta > 0:
        img += float(rng.uniform(-params.brightness_delta, params.brightness_delta))
        img = np.clip(img, 0, 255)
    contrast_first = rng.random() < 0.5

    def contrast(x: np.ndarray) -> np.ndarray:
        if rng.random() < 0.5:
            x = np.clip(x * float(rng.uniform(*params.contrast_range)), 0, 255)
        return x

    if contrast_first:
        img = contrast(img)
    do_sat = rng.random() < 0.5
    sat = float(rng.uniform(*params.saturation_range))
    do_hue = rng.random() < 0.5 and params.hue_delta > 0
    hue = float(rng.uniform(-params.hue_delta, params.hue_delta)) if params.hue_delta > 0 else 0.0
    if do_sat or do_hue:
        # OpenCV float HSV: H in [0, 360), S in [0, 1], V in [0, 255].
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
        if do_sat:
            hsv[..., 1] = np.clip(hsv[..., 1] * sat, 0, 1)
        if do_hue:
            # mmseg's delta is in OpenCV uint8 hue units (0..180), i.e. 2 degrees each.
            hsv[..., 0] = np.mod(hsv[..., 0] + 2.0 * hue, 360.0)
        img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if not contrast_first:
        img = contrast(img)
    return np.clip(img, 0, 255).astype(np.uint8)


def augment(
    image: np.ndarray, labels: np.ndarray, params: AugmentParams, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The full training augmentation of one sample.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        labels: ``(H, W)`` uint8 train ids (``ignore_index`` for unlabelled).
        params: Augmentation settings.
        rng: Source of every random draw (same generator state -> same output).

    Returns:
        ``(image, labels)`` of size ``params.crop_size`` (uint8, contiguous).

    Raises:
        ValueError: If the image and label shapes disagree.
    """
    if image.ndim != 3 or image.shape[2] != 3 or labels.shape != image.shape[:2]:
        raise ValueError(
            f"image {image.shape} and labels {labels.shape} do not form an (H, W, 3)/(H, W) pair"
        )
    image, labels = random_scale(image, labels, params, rng)
    image, labels = random_crop(image, labels, params, rng)
    if rng.random() < params.hflip_prob:
        image, labels = image[:, ::-1], labels[:, ::-1]
    if params.photometric:
        image = photometric_distortion(image, params, rng)
    return np.ascontiguousarray(image), np.ascontiguousarray(labels)


def padded_size(size: tuple[int, int], multiple: int = PATCH_SIZE) -> tuple[int, int]:
    """``size`` rounded up to a multiple of ``multiple`` on each side."""
    return (-(-size[0] // multiple) * multiple, -(-size[1] // multiple) * multiple)
