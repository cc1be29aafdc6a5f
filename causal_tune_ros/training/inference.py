"""Model logits for evaluation: whole image, resized into a box, or sliding window, at the label's size."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from causal_tune_ros.errors import ConfigError
from causal_tune_ros.sizes import PATCH_SIZE
from causal_tune_ros.training.augment import fit_size
from causal_tune_ros.training.eval_result import BandSetting


def _band_tensor(band: BandSetting, device: torch.device) -> torch.Tensor | None:
    return None if band is None else torch.tensor(band.as_tuple(), dtype=torch.float32, device=device)


def model_logits(model: nn.Module, images: torch.Tensor, band: BandSetting) -> torch.Tensor:
    """Logits at the input's resolution for any input size (padded to a multiple of 14 internally).

    Args:
        model: A ``CausalTuneSegmenter`` (or anything with ``forward(images, band)`` at 1/4 resolution).
        images: ``(B, 3, H, W)`` float in [0, 1].
        band: The band, or ``None`` to switch the band-pass off (the ablation).

    Returns:
        ``(B, K, H, W)`` float32 logits.
    """
    h, w = images.shape[-2:]
    ph, pw = (-h) % PATCH_SIZE, (-w) % PATCH_SIZE
    if ph or pw:
        # Bottom/right zero padding, cut off again below: the model needs sides that are multiples of 14.
        images = F.pad(images, (0, pw, 0, ph))
    # band None switches the model's band-pass off (the whole spectrum reaches the tokens).
    logits = model(images, _band_tensor(band, images.device))
    logits = F.interpolate(logits.float(), size=images.shape[-2:], mode="bilinear", align_corners=False)
    return logits[..., :h, :w]


def sliding_window_logits(
    model: nn.Module,
    images: torch.Tensor,
    band: BandSetting,
    window: tuple[int, int] = (512, 512),
    stride: tuple[int, int] = (341, 341),
) -> torch.Tensor:
    """Sliding-window inference with logits averaged over overlapping windows (mmseg ``slide`` mode).

    Windows start every ``stride`` pixels; the last row/column of windows is shifted back to end at the
    image border, and an image smaller than the window is one (padded) window.

    Args:
        model: See :func:`model_logits`.
        images: ``(B, 3, H, W)`` float in [0, 1].
        band: The band, or ``None`` (no band-pass).
        window: ``(h, w)`` window size.
        stride: ``(h, w)`` stride, at most the window.

    Returns:
        ``(B, K, H, W)`` float32 logits.

    Raises:
        ConfigError: For a non-positive window or stride.
    """
    (wh, ww), (sh, sw) = window, stride
    if min(wh, ww, sh, sw) <= 0:
        raise ConfigError(f"window {window} and stride {stride} must be positive")
    b, _, h, w = images.shape
    rows = max(h - wh + sh - 1, 0) // sh + 1
    cols = max(w - ww + sw - 1, 0) // sw + 1
    total: torch.Tensor | None = None
    count = torch.zeros((1, 1, h, w), dtype=torch.float32, device=images.device)
    for r in range(rows):
        for c in range(cols):
            y2, x2 = min(r * sh + wh, h), min(c * sw + ww, w)
            y1, x1 = max(y2 - wh, 0), max(x2 - ww, 0)
            logits = model_logits(model, images[:, :, y1:y2, x1:x2], band)
            if total is None:
                total = torch.zeros((b, logits.shape[1], h, w), dtype=torch.float32, device=images.device)
            total[:, :, y1:y2, x1:x2] += logits
            count[:, :, y1:y2, x1:x2] += 1
    assert total is not None  # at least one window always runs
    return total / count


def predict_logits(
    model: nn.Module,
    images: torch.Tensor,
    band: BandSetting,
    *,
    out_size: tuple[int, int] | None = None,
    input_size: tuple[int, int] | None = None,
    sliding_window: bool = False,
    window: tuple[int, int] = (512, 512),
    stride: tuple[int, int] = (341, 341),
) -> torch.Tensor:
    """Logits for a batch, resized to ``out_size`` (default: the input's size).

    Args:
        model: See :func:`model_logits`.
        images: ``(B, 3, H, W)`` float in [0, 1].
        band: The band, or ``None`` (no band-pass).
        out_size: ``(h, w)`` of the returned logits (the label size).
        input_size: Resize images into this ``(h, w)`` box, keeping the aspect ratio, before inference
            (``None``: native size).
        sliding_window: Sliding-window instead of whole-image inference.
        window: Sliding-window size.
        stride: Sliding-window stride.

    Returns:
        ``(B, K, *out_size)`` float32 logits.
    """
    out_size = tuple(out_size or images.shape[-2:])  # type: ignore[assignment]
    if input_size is not None:
        size = fit_size(tuple(images.shape[-2:]), tuple(input_size))
        if size != tuple(images.shape[-2:]):
            images = F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=True)
    if sliding_window:
        logits = sliding_window_logits(model, images, band, window, stride)
    else:
        logits = model_logits(model, images, band)
    if tuple(logits.shape[-2:]) != out_size:
        logits = F.interpolate(logits, size=out_size, mode="bilinear", align_corners=False)
    return logits
