"""Orthonormal 2-D DCT-II and its inverse as plain matrix products (the transform of docs/METHOD.md).

The transforms are written as ``matmul`` with cached DCT bases rather than FFT calls so that they run on
every backend, are differentiable, export to ONNX as ``MatMul`` nodes and compile in TensorRT.

Two layouts are offered:

- channel-first (``..., H, W``): :func:`dct_2d` / :func:`idct_2d`, matching
  ``scipy.fft.dctn(x, type=2, norm="ortho", axes=(-2, -1))`` and ``idctn`` respectively;
- channel-last (``B, H, W, C``): :func:`dct_2d_channels_last` / :func:`idct_2d_channels_last`, the layout
  ViT tokens already have (``B, N, C`` with ``N = H * W`` row by row), so the Causal-Tune refinement never
  permutes or copies the token tensor to change layout.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "dct_2d",
    "dct_2d_channels_last",
    "dct_matrix",
    "idct_2d",
    "idct_2d_channels_last",
]


def _build_dct_matrix(n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    # Built in float64 on the CPU for accuracy, then cast once. Created outside inference mode so a
    # basis first built under ``torch.inference_mode()`` can still be used by autograd later.
    with torch.inference_mode(False), torch.no_grad():
        k = torch.arange(n, dtype=torch.float64).unsqueeze(1)
        j = torch.arange(n, dtype=torch.float64).unsqueeze(0)
        basis = torch.cos(math.pi * (2.0 * j + 1.0) * k / (2.0 * n)) * math.sqrt(2.0 / n)
        basis[0] /= math.sqrt(2.0)
        return basis.to(dtype=dtype, device=device)


_BASES: dict[tuple[int, torch.dtype, torch.device], torch.Tensor] = {}


def _cached_dct_matrix(n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Cached :func:`_build_dct_matrix`; only plain tensors are cached.

    An exporter tracing with fake tensors (``torch.export``, the ONNX exporter) makes the builder return
    a ``FakeTensor``; caching that would poison later eager calls, so such results are rebuilt each time.
    ``_cached_dct_matrix.cache_clear()`` empties the cache.
    """
    key = (n, dtype, device)
    basis = _BASES.get(key)
    if basis is None:
        basis = _build_dct_matrix(n, dtype, device)
        if type(basis) is torch.Tensor:
            _BASES[key] = basis
    return basis


_cached_dct_matrix.cache_clear = _BASES.clear  # type: ignore[attr-defined]  # lru_cache-style API


def dct_matrix(
    n: int, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> torch.Tensor:
    """The ``n x n`` orthonormal DCT-II matrix ``D`` (``D @ x`` transforms a length-``n`` signal).

    ``D[k, j] = sqrt(2 / n) * c_k * cos(pi * (2 j + 1) * k / (2 n))`` with ``c_0 = 1 / sqrt(2)`` and
    ``c_k = 1`` otherwise, so ``D @ D.T == I`` and the inverse (DCT-III) is ``D.T``.

    The matrix is cached per ``(n, dtype, device)``; the returned tensor is shared, so do not modify it
    in place.

    Args:
        n: Signal length (> 0).
        dtype: Floating dtype of the result.
        device: Device of the result (default CPU).

    Returns:
        (n, n) tensor.

    Raises:
        ValueError: If ``n`` is not a positive integer or ``dtype`` is not floating point.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise ValueError(f"DCT size must be a positive integer, got {n!r}")
    if not dtype.is_floating_point:
        raise ValueError(f"DCT matrix needs a floating dtype, got {dtype}")
    return _cached_dct_matrix(n, dtype, torch.device(device if device is not None else "cpu"))


def _check_ndim(x: torch.Tensor, ndim: int, what: str) -> None:
    if x.ndim < ndim:
        raise ValueError(f"{what} needs at least {ndim} dimensions, got shape {tuple(x.shape)}")


def dct_2d(x: torch.Tensor) -> torch.Tensor:
    """2-D orthonormal DCT-II over the last two axes: ``X = D_H @ x @ D_W.T``.

    Equals ``scipy.fft.dctn(x, type=2, norm="ortho", axes=(-2, -1))``.

    Args:
        x: (..., H, W) floating tensor.

    Returns:
        (..., H, W) coefficients, frequency ``(u, v)`` at ``[..., u, v]``.

    Raises:
        ValueError: If ``x`` has fewer than two dimensions.
    """
    _check_ndim(x, 2, "dct_2d")
    d_h = dct_matrix(int(x.shape[-2]), x.dtype, x.device)
    d_w = dct_matrix(int(x.shape[-1]), x.dtype, x.device)
    return torch.matmul(torch.matmul(d_h, x), d_w.t())


def idct_2d(coefficients: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`dct_2d` over the last two axes: ``x = D_H.T @ X @ D_W``.

    Equals ``scipy.fft.idctn(X, type=2, norm="ortho", axes=(-2, -1))``.

    Args:
        coefficients: (..., H, W) floating tensor.

    Returns:
        (..., H, W) signal.

    Raises:
        ValueError: If ``coefficients`` has fewer than two dimensions.
    """
    _check_ndim(coefficients, 2, "idct_2d")
    d_h = dct_matrix(int(coefficients.shape[-2]), coefficients.dtype, coefficients.device)
    d_w = dct_matrix(int(coefficients.shape[-1]), coefficients.dtype, coefficients.device)
    return torch.matmul(torch.matmul(d_h.t(), coefficients), d_w)


def _row_matrices(m_w: torch.Tensor, batch: int, rows: int) -> torch.Tensor:
    """Expand (W, W) or per-row (H, W, W) matrices to the (B * H, W, W) batch ``bmm`` takes."""
    if m_w.ndim == 2:
        return m_w.expand(batch * rows, *m_w.shape)  # stride-0 batch: no copy
    if batch == 1:
        return m_w
    return m_w.expand(batch, *m_w.shape).reshape(batch * rows, *m_w.shape[1:])


def dct_2d_channels_last(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """2-D orthonormal DCT-II of a channel-last grid, over axes (1, 2) of (B, H, W, C), optionally masked.

    Returns ``mask[u, v] * X[b, u, v, c]`` with ``X = D_H x D_W^T`` per channel, i.e.
    ``dct_2d(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1) * mask[..., None]``, without ever permuting ``x``:

    1. the H contraction sees ``x`` as (B, H, W * C): one GEMM per image with a wide right operand;
    2. the W contraction sees the result as (B * H, W, C) rows: a batch of small GEMMs. The mask is folded
       into this step's matrices (row ``u`` uses ``diag(mask[u]) D_W``), so masking costs no extra pass
       over the (B, H, W, C) tensor.

    Args:
        x: (B, H, W, C) floating tensor. Any strides that make (B, H, W * C) a view are copy-free, e.g.
            the patch-token slice of a (B, 1 + R + H * W, C) token tensor viewed as (B, H, W, C).
        mask: Optional (H, W) weights of the spectrum (the band-pass ``G``) on ``x``'s device.

    Returns:
        (B, H, W, C) contiguous (masked) coefficients, frequency ``(u, v)`` at ``[:, u, v]``.

    Raises:
        ValueError: If ``x`` is not 4-D or ``mask`` is not (H, W).
    """
    if x.ndim != 4:
        raise ValueError(f"dct_2d_channels_last needs (B, H, W, C), got shape {tuple(x.shape)}")
    B, H, W, C = (int(n) for n in x.shape)  # int(): tracers may hand out sizes as tensors
    d_h = dct_matrix(H, x.dtype, x.device)
    d_w = dct_matrix(W, x.dtype, x.device)
    if mask is not None:
        if mask.shape != (H, W):
            raise ValueError(f"mask must be ({H}, {W}) for this grid, got {tuple(mask.shape)}")
        d_w = mask.to(d_w.dtype).unsqueeze(-1) * d_w  # (H, W, W): row u's W-transform, masked
    y = torch.bmm(d_h.expand(B, H, H), x.reshape(B, H, W * C))
    return torch.bmm(_row_matrices(d_w, B, H), y.view(B * H, W, C)).view(B, H, W, C)


def idct_2d_channels_last(
    coefficients: torch.Tensor, residual: torch.Tensor | None = None, *, inplace: bool = False
) -> torch.Tensor:
    """Inverse of :func:`dct_2d_channels_last` (unmasked), optionally added to a residual by the last GEMM.

    Computes ``residual + D_H^T X D_W`` per channel: the W contraction runs on (B * H, W, C) rows, then
    the H contraction on (B, H, W * C) accumulates straight into the residual (GEMM with beta = 1), so
    the addition costs no separate pass.

    Args:
        coefficients: (B, H, W, C) floating tensor.
        residual: Optional (B, H, W, C) tensor to add the result to (strides as for
            :func:`dct_2d_channels_last`'s input, e.g. a view of the patch tokens).
        inplace: Accumulate into ``residual`` itself (which must then be viewable as (B, H, W * C)) and
            return it: no new tensor. Not for tensors autograd needs unchanged; the Causal-Tune model uses
            it under ``torch.inference_mode`` only.

    Returns:
        (B, H, W, C) signal (plus residual): a new contiguous tensor, or ``residual`` when ``inplace``.

    Raises:
        ValueError: If a tensor is not 4-D, shapes differ, or ``inplace`` is set without a residual.
    """
    if coefficients.ndim != 4:
        raise ValueError(f"idct_2d_channels_last needs (B, H, W, C), got shape {tuple(coefficients.shape)}")
    B, H, W, C = (int(n) for n in coefficients.shape)
    d_h = dct_matrix(H, coefficients.dtype, coefficients.device)
    d_w = dct_matrix(W, coefficients.dtype, coefficients.device)
    z = torch.bmm(_row_matrices(d_w.t(), B, H), coefficients.reshape(B * H, W, C)).view(B, H, W * C)
    d_h_t = d_h.t().expand(B, H, H)
    if residual is None:
        if inplace:
            raise ValueError("idct_2d_channels_last(inplace=True) needs a residual to accumulate into")
        return torch.bmm(d_h_t, z).view(B, H, W, C)
    if residual.shape != coefficients.shape:
        raise ValueError(
            f"residual shape {tuple(residual.shape)} differs from coefficients {tuple(coefficients.shape)}"
        )
    if inplace:
        # view (not reshape): accumulating into a silent copy would lose the result.
        residual.view(B, H, W * C).baddbmm_(d_h_t, z)
        return residual
    return torch.baddbmm(residual.reshape(B, H, W * C), d_h_t, z).view(B, H, W, C)
