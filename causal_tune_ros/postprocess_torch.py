"""Post-processing as torch ops on the backend's device (CUDA in production, CPU in tests).

The same outputs as the numpy path of :mod:`causal_tune_ros.pipeline`, computed where the logits already
are, so only the uint8 results (class ids, drivable mask, overlay) and a float16 confidence map cross to
the host instead of all K logit maps:

- class ids: the exact bilinear-logit argmax with the numpy path's arithmetic (same bilinear weights,
  same order of float32 operations, first index on ties), so the ids are identical; pixels whose four
  low-resolution cells share one class take that class, as in
  :func:`~causal_tune_ros.upsampling.upsample_argmax`;
- ``nearest`` mode: the source indices ``cv2.resize(..., INTER_NEAREST)`` uses;
- confidence: maximum softmax probability at the logits' resolution, upsampled bilinearly;
- overlay: ``rgb * (1 - alpha) + palette[class] * alpha`` rounded half to even (as ``cv2.addWeighted``);
- drivable mask: 255 where the class is drivable.

Imported only when a pipeline uses it (the pipeline module itself imports no torch).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from causal_tune_ros.errors import BackendError
from causal_tune_ros.upsampling import nearest_indices, sample_grid

#: Bytes of K-class float32 temporaries one chunk of output rows may hold (on the device).
DEVICE_CHUNK_BYTES = 256 * 1024 * 1024


def _bilinear_grid(out_len: int, in_len: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """``(i0, i1, w1)`` of the numpy path (computed there in float64, so the weights are identical)."""
    return tuple(torch.from_numpy(part).to(device) for part in sample_grid(out_len, in_len))


class TorchPostprocessor:
    """Class ids, confidence, overlay and drivable mask from one image's logits, on their device.

    Args:
        palette: (C, 3) uint8 RGB colours of the classes.
        drivable_ids: Class ids that count as drivable.
        overlay_alpha: Weight of the palette colour in the overlay, in [0, 1].
        upsample: ``bilinear`` (exact bilinear-logit argmax) or ``nearest``.
        device: Where the logits live (the backend's device).
        chunk_bytes: Budget of the K-class temporaries per chunk of rows (results do not depend on it).
    """

    def __init__(
        self,
        palette: np.ndarray,
        drivable_ids: Sequence[int],
        overlay_alpha: float,
        upsample: str,
        device: torch.device | str,
        chunk_bytes: int = DEVICE_CHUNK_BYTES,
    ) -> None:
        self.device = torch.device(device)
        self.palette = torch.from_numpy(np.ascontiguousarray(palette, dtype=np.uint8)).to(self.device)
        self.drivable_ids = torch.tensor(list(drivable_ids), dtype=torch.long, device=self.device)
        self.overlay_alpha = float(overlay_alpha)
        self.upsample = upsample
        self.chunk_bytes = int(chunk_bytes)

    def check_finite(self, logits: torch.Tensor) -> None:
        """Wait for the logits and refuse non-finite ones.

        Raises:
            BackendError: If any logit is NaN or infinite.
        """
        bad = int((~torch.isfinite(logits)).sum().item())  # .item() waits for the device
        if bad:
            raise BackendError(f"the model produced {bad} non-finite logits (NaN/Inf) of {logits.numel()}")

    def class_ids(self, logits: torch.Tensor, out_size: tuple[int, int]) -> torch.Tensor:
        """(H, W) uint8 class ids on the device from (K, h, w) logits (identical to the numpy path)."""
        logits = logits.float()
        k, h, w = logits.shape
        H, W = out_size
        low = logits.argmax(dim=0)
        if self.upsample == "nearest":
            ys = torch.from_numpy(nearest_indices(H, h)).to(self.device)
            xs = torch.from_numpy(nearest_indices(W, w)).to(self.device)
            return low[ys][:, xs].to(torch.uint8)
        y0, y1, wy = _bilinear_grid(H, h, self.device)
        x0, x1, wx = _bilinear_grid(W, w, self.device)
        next_x = torch.clamp(torch.arange(w, device=self.device) + 1, max=w - 1)
        next_y = torch.clamp(torch.arange(h, device=self.device) + 1, max=h - 1)
        down = low[next_y]
        disagree = (low != low[:, next_x]) | (low != down) | (low != down[:, next_x])
        out = low[y0][:, x0]  # right wherever the four source cells agree
        boundary = disagree[y0][:, x0]
        rows_per_chunk = max(1, self.chunk_bytes // max(1, 16 * k * W))
        for first in range(0, H, rows_per_chunk):
            rows = slice(first, min(H, first + rows_per_chunk))
            where = boundary[rows]
            if not bool(where.any()):
                continue
            top_rows, bottom_rows = logits[:, y0[rows]], logits[:, y1[rows]]  # (K, r, w)
            # The numpy path's operation order: c00 + fx * (c01 - c00), then (bottom - top) * fy + top.
            c00, c01 = top_rows[:, :, x0], top_rows[:, :, x1]
            top = c00 + wx * (c01 - c00)
            c10, c11 = bottom_rows[:, :, x0], bottom_rows[:, :, x1]
            bottom = c10 + wx * (c11 - c10)
            bottom = (bottom - top) * wy[rows, None] + top
            out[rows] = torch.where(where, bottom.argmax(dim=0), out[rows])
        return out.to(torch.uint8)

    def __call__(
        self, logits: torch.Tensor, rgb: np.ndarray, overlay: bool, confidence: bool
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray]:
        """One image's outputs on the host.

        Args:
            logits: (K, h, w) float32 or float16 on :attr:`device`, finite.
            rgb: The (H, W, 3) uint8 input image (host).
            overlay: Also render the palette overlay.
            confidence: Also compute the confidence map.

        Returns:
            ``(class_mask uint8, confidence float32 | None, overlay uint8 | None, drivable uint8)``, all at
            (H, W).
        """
        height, width = rgb.shape[:2]
        with torch.inference_mode():
            ids = self.class_ids(logits, (height, width))
            drivable = torch.isin(ids.long(), self.drivable_ids).to(torch.uint8) * 255
            conf = None
            if confidence:
                scores = logits.float()
                peak = scores.max(dim=0).values
                low = 1.0 / torch.exp(scores - peak).sum(dim=0)
                conf = F.interpolate(
                    low[None, None], size=(height, width), mode="bilinear", align_corners=False
                )[0, 0].half()
            blended = None
            if overlay:
                image = torch.from_numpy(np.ascontiguousarray(rgb)).to(self.device)
                colours = self.palette[ids.long()]
                alpha = self.overlay_alpha
                mixed = image.float() * (1.0 - alpha) + colours.float() * alpha
                blended = mixed.round_().clamp_(0, 255).to(torch.uint8)
            return (
                ids.cpu().numpy(),
                None if conf is None else conf.cpu().numpy().astype(np.float32),
                None if blended is None else blended.cpu().numpy(),
                drivable.cpu().numpy(),
            )
