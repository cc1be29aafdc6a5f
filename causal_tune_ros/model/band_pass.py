"""Spectrum weights of Causal-Tune: the Gaussian band-pass (the paper) and the released code's piecewise mask.

With the normalised frequency radius ``rho(u, v) = sqrt((u / H)^2 + (v / W)^2) / sqrt(2)`` in [0, 1],

    ``G(u, v) = exp(-rho^2 / (2 r_high^2)) - exp(-rho^2 / (2 r_low^2))``

so the DC term gets weight 0, the mid band passes and the finest frequencies are attenuated.

The band ``(r_low, r_high)`` is a *run-time tensor*: every function here computes the mask from it inside
the graph (a handful of element-wise ops on H + W values), never from a constant baked at build time, so
an exported ONNX graph / TensorRT engine keeps the band as an input and weather presets switch bands
without recompiling.

Each Gaussian low-pass is separable, ``exp(-rho^2 / (2 r^2)) = exp(-(u/H)^2 / (4 r^2)) *
exp(-(v/W)^2 / (4 r^2))``, so the mask is the difference of two rank-one outer products:
:func:`gaussian_band_pass_factors` returns the four 1-D factors.
"""

from __future__ import annotations

import torch

__all__ = ["gaussian_band_pass", "gaussian_band_pass_factors", "released_causal_weight"]


def _check_band(band: torch.Tensor) -> None:
    if not isinstance(band, torch.Tensor):
        raise TypeError(
            f"band must be a float tensor of shape (2,) = (r_low, r_high), got {type(band).__name__}; "
            "use torch.tensor(Band(...).as_tuple())"
        )
    if band.shape != (2,) or not band.dtype.is_floating_point:
        raise ValueError(
            "band must be a float tensor of shape (2,) = (r_low, r_high), "
            f"got {band.dtype} {tuple(band.shape)}"
        )


def _check_size(h: int, w: int) -> None:
    for name, n in (("h", h), ("w", w)):
        if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
            raise ValueError(f"band-pass grid side {name} must be a positive integer, got {n!r}")


def gaussian_band_pass_factors(
    h: int, w: int, band: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Separable factors of the band-pass: ``G = outer(a_high, b_high) - outer(a_low, b_low)``.

    Args:
        h: Grid rows (frequency index ``u`` in ``0 .. h - 1``).
        w: Grid columns (frequency index ``v`` in ``0 .. w - 1``).
        band: (2,) float tensor ``(r_low, r_high)``; the results take its dtype and device. Values are
            not checked here (that would force a device sync); :class:`causal_tune_ros.band.Band`
            validates ``0 < r_low < r_high <= 1`` where bands are made.

    Returns:
        ``(a_high (h,), b_high (w,), a_low (h,), b_low (w,))`` with
        ``a_r[u] = exp(-(u / h)^2 / (4 r^2))`` and ``b_r[v] = exp(-(v / w)^2 / (4 r^2))``.

    Raises:
        TypeError: If ``band`` is not a tensor.
        ValueError: If ``band`` is not a floating (2,) tensor or a side is not a positive integer.
    """
    _check_band(band)
    _check_size(h, w)
    u2 = (torch.arange(h, dtype=band.dtype, device=band.device) / h).square()
    v2 = (torch.arange(w, dtype=band.dtype, device=band.device) / w).square()
    # rho^2 / (2 r^2) = ((u/h)^2 + (v/w)^2) / (4 r^2): one coefficient per cut-off.
    coeff = -0.25 / band.square()  # (2,) = (low, high)
    a = torch.exp(u2.unsqueeze(0) * coeff.unsqueeze(1))  # (2, h)
    b = torch.exp(v2.unsqueeze(0) * coeff.unsqueeze(1))  # (2, w)
    return a[1], b[1], a[0], b[0]


def gaussian_band_pass(h: int, w: int, band: torch.Tensor) -> torch.Tensor:
    """The (h, w) Gaussian band-pass mask ``G(u, v)`` (see the module docstring).

    Args:
        h: Grid rows (DCT frequency ``u``).
        w: Grid columns (DCT frequency ``v``).
        band: (2,) float tensor ``(r_low, r_high)``, a run-time input; the mask takes its dtype and device.

    Returns:
        (h, w) mask; ``G[0, 0] == 0`` (DC removed), values in [0, 1).

    Raises:
        TypeError: If ``band`` is not a tensor.
        ValueError: If ``band`` is not a floating (2,) tensor or a side is not a positive integer.
    """
    a_high, b_high, a_low, b_low = gaussian_band_pass_factors(h, w, band)
    # Broadcast products rather than torch.outer: plain Mul nodes in every exporter.
    return a_high.unsqueeze(1) * b_high.unsqueeze(0) - a_low.unsqueeze(1) * b_low.unsqueeze(0)


def released_causal_weight(
    h: int, w: int, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> torch.Tensor:
    """The spectrum weight of the authors' released code: ``1 - M(u, v)``, ``M`` piecewise in ``max(u, v)``.

    With ``m = max(u, v)``, ``side = min(h, w)``, ``v1 = int(0.1 * side)``, ``v2 = int(0.7 * side)``:
    ``M = 1 - 0.95 m / v1`` for ``m <= v1`` (``M = 1`` at DC), ``0.01`` for ``v1 < m <= v2``,
    ``0.3 (m - v2) / (side - v2)`` for ``v2 < m <= side`` and ``0.5`` beyond. The causal weight ``1 - M``
    removes DC, ramps up over the lowest rings and passes almost everything else (a high-pass); it does
    not depend on any band. Reproduces the released arithmetic; not the paper's Gaussian band-pass.

    Args:
        h: Grid rows (frequency ``u``).
        w: Grid columns (frequency ``v``).
        dtype: Floating dtype of the result.
        device: Device of the result.

    Returns:
        (h, w) weights in [0, 1].

    Raises:
        ValueError: If a side is not a positive integer.
    """
    _check_size(h, w)
    eps = 1e-10  # as released: keeps 0 / v1 finite when v1 == 0
    side = min(h, w)
    v1, v2, v3 = int(side * 0.1), int(side * 0.7), side
    m = torch.maximum(
        torch.arange(h, dtype=torch.float64).unsqueeze(1), torch.arange(w, dtype=torch.float64).unsqueeze(0)
    )
    mask = torch.full_like(m, 0.5)
    mask = torch.where(m <= v3, (m - v2) / max(v3 - v2, 1) * 0.3, mask)
    mask = torch.where(m <= v2, torch.full_like(m, 0.01), mask)
    mask = torch.where(m <= v1, 1.0 - m / (v1 + eps) * 0.95, mask)
    return (1.0 - mask).to(dtype=dtype, device=device)
