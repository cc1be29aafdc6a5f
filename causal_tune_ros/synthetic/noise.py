"""Cached noise fields for textures and sensor noise.

Drawing fresh full-resolution Gaussian noise for every frame costs more than the rest of a weather rendering,
so each image size gets a few noise fields made once from a fixed seed, and a frame takes a window of them at
an offset drawn from its own generator. The result stays deterministic by seed and costs a view, not a copy.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from causal_tune_ros.errors import ConfigError

#: Extra rows/columns around each cached field, so that windows can start at random offsets.
_PAD = 96
_FIELD_SEED = 0x5EED


@lru_cache(maxsize=4)
def _fields(height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fine, coarse, fine RGB) noise for one image size; zero mean, unit-ish standard deviation."""
    rng = np.random.default_rng(_FIELD_SEED)
    h, w = height + _PAD, width + _PAD
    fine = rng.standard_normal((h, w), dtype=np.float32)
    # Coarse: a few octaves of upsampled random grids (value noise), smooth at the scale of blobs and leaves.
    coarse = np.zeros((h, w), np.float32)
    for cell, weight in ((48, 1.0), (16, 0.6), (5, 0.35)):
        grid = rng.standard_normal((h // cell + 2, w // cell + 2), dtype=np.float32)
        coarse += weight * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    coarse /= coarse.std() + 1e-6
    rgb = rng.standard_normal((h, w, 3), dtype=np.float32)
    for arr in (fine, coarse, rgb):
        arr.setflags(write=False)
    return fine, coarse, rgb


def noise_window(kind: str, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A read-only ``(height, width)`` (or ``(height, width, 3)`` for ``"rgb"``) window of a cached field.

    Args:
        kind: ``"fine"`` (per-pixel Gaussian), ``"coarse"`` (smooth blobs) or ``"rgb"`` (Gaussian per
            channel).
        height: Rows.
        width: Columns.
        rng: Generator that picks the window's offset.

    Returns:
        A float32 view; do not write to it.

    Raises:
        ConfigError: For an unknown ``kind``.
    """
    fine, coarse, rgb = _fields(height, width)
    field = {"fine": fine, "coarse": coarse, "rgb": rgb}.get(kind)
    if field is None:
        raise ConfigError(f"unknown noise kind {kind!r}; expected fine, coarse or rgb")
    oy, ox = (int(v) for v in rng.integers(0, _PAD, size=2))
    return field[oy : oy + height, ox : ox + width]
