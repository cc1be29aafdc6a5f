"""Exact bilinear-logit argmax and confidence on the host (numpy), used by the pipeline's CPU path.

Bilinear upsampling of all K logit maps then argmax (what mmseg does) touches K x H x W floats. Bilinear
weights are non-negative and sum to one, so if the four low-resolution cells around an output pixel share
the same argmax class c, then ``L_c - L_j`` is positive at all four and stays positive everywhere between
them: the upsampled argmax is c. Only pixels whose four source cells disagree (a thin band along class
boundaries) get the full K-class interpolation; the class ids are identical to the full computation. The
boundary pixels are interpolated a chunk at a time (``limits.UPSAMPLE_CHUNK_BYTES``), so even a frame
where every cell is a boundary costs a bounded amount of memory.

Confidence is the maximum softmax probability at the logits' resolution (upsampled by the caller).
"""

from __future__ import annotations

import numpy as np

from causal_tune_ros.limits import UPSAMPLE_CHUNK_BYTES

__all__ = ["max_probability", "nearest_indices", "sample_grid", "upsample_argmax"]


def sample_grid(out_len: int, in_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear source indices and weights along one axis (``align_corners=False``, edge clamped).

    Args:
        out_len: Output length.
        in_len: Input length.

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
    y0, _, wy = sample_grid(H, h)
    x0, _, wx = sample_grid(W, w)
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


def nearest_indices(out_len: int, in_len: int) -> np.ndarray:
    """Source index of every output index as ``cv2.resize(..., INTER_NEAREST)`` picks it.

    Args:
        out_len: Output length.
        in_len: Input length.

    Returns:
        (out_len,) intp indices in ``[0, in_len)``.
    """
    inverse = 1.0 / (out_len / in_len)
    return np.minimum(np.floor(np.arange(out_len) * inverse).astype(np.intp), in_len - 1)
