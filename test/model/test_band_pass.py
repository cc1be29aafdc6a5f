"""Gaussian band-pass mask: the formula of docs/METHOD.md, its shape, the band as a run-time input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from causal_tune_ros.model.band_pass import gaussian_band_pass, gaussian_band_pass_factors

PAPER_BAND = (0.2, 0.7)


def _spec_mask(h: int, w: int, r_low: float, r_high: float) -> np.ndarray:
    """The band-pass of docs/METHOD.md, written independently in numpy (float64, no separability)."""
    u = np.arange(h)[:, None] / h
    v = np.arange(w)[None, :] / w
    rho = np.sqrt(u**2 + v**2) / np.sqrt(2.0)
    return np.exp(-(rho**2) / (2 * r_high**2)) - np.exp(-(rho**2) / (2 * r_low**2))


@pytest.mark.parametrize(("h", "w"), [(37, 74), (5, 3), (1, 8), (16, 16)])
@pytest.mark.parametrize("band", [PAPER_BAND, (0.05, 0.3), (0.5, 1.0)])
def test_mask_matches_spec_formula(h: int, w: int, band: tuple[float, float]) -> None:
    mask = gaussian_band_pass(h, w, torch.tensor(band))
    assert mask.shape == (h, w) and mask.dtype == torch.float32
    np.testing.assert_allclose(mask.numpy(), _spec_mask(h, w, *band), atol=1e-6)


def test_paper_band_removes_dc_and_passes_mid_band_most() -> None:
    h, w = 37, 74
    mask = gaussian_band_pass(h, w, torch.tensor(PAPER_BAND)).double()
    assert mask[0, 0].item() == 0.0  # DC term removed exactly
    assert (mask >= 0).all() and (mask < 1).all()
    u = torch.arange(h, dtype=torch.float64)[:, None] / h
    v = torch.arange(w, dtype=torch.float64)[None, :] / w
    rho = ((u**2 + v**2) / 2).sqrt()
    # The profile peaks near rho = 0.45 (~0.73) and falls to ~0.36 at rho = 1.
    low_end = mask[rho < 0.1]
    mid_band = mask[(rho > 0.35) & (rho < 0.55)]
    high_end = mask[rho > 0.85]
    assert mid_band.min() > low_end.max()
    assert mid_band.min() > high_end.max()
    # Monotone in the radius on the diagonal: rises to the peak, then falls.
    diagonal = torch.stack([mask[round(k * (h - 1) / 36), round(k * (w - 1) / 36)] for k in range(37)])
    peak = int(diagonal.argmax())
    assert 0 < peak < 36
    assert (diagonal[1 : peak + 1] >= diagonal[:peak]).all()
    assert (diagonal[peak + 1 :] <= diagonal[peak:-1]).all()


def test_separable_factors_rebuild_the_mask() -> None:
    band = torch.tensor([0.15, 0.6], dtype=torch.float64)
    a_high, b_high, a_low, b_low = gaussian_band_pass_factors(9, 13, band)
    assert a_high.shape == a_low.shape == (9,) and b_high.shape == b_low.shape == (13,)
    rebuilt = torch.outer(a_high, b_high) - torch.outer(a_low, b_low)
    np.testing.assert_allclose(rebuilt.numpy(), _spec_mask(9, 13, 0.15, 0.6), atol=1e-12)


def test_band_is_a_runtime_input_of_exported_graphs() -> None:
    class Mask(torch.nn.Module):
        def forward(self, band: torch.Tensor) -> torch.Tensor:
            return gaussian_band_pass(6, 10, band)

    program = torch.export.export(Mask(), (torch.tensor(PAPER_BAND),))
    exported = program.module()
    for band in (PAPER_BAND, (0.1, 0.4)):  # a baked-in band would repeat the first mask
        np.testing.assert_allclose(exported(torch.tensor(band)).numpy(), _spec_mask(6, 10, *band), atol=1e-6)


def test_mask_is_differentiable_in_the_band_and_follows_its_dtype() -> None:
    band = torch.tensor(PAPER_BAND, dtype=torch.float64, requires_grad=True)
    mask = gaussian_band_pass(7, 9, band)
    assert mask.dtype == torch.float64
    mask.sum().backward()
    assert band.grad is not None and (band.grad != 0).all()


@pytest.mark.parametrize(
    ("band", "error", "match"),
    [
        ((0.2, 0.7), TypeError, "float tensor"),
        (torch.tensor([0.2, 0.5, 0.7]), ValueError, "shape"),
        (torch.tensor([1, 2]), ValueError, "float tensor"),
    ],
)
def test_bad_bands_are_rejected(band: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        gaussian_band_pass(4, 4, band)  # type: ignore[arg-type]


def test_bad_sizes_are_rejected() -> None:
    with pytest.raises(ValueError, match="positive integer"):
        gaussian_band_pass(0, 4, torch.tensor(PAPER_BAND))
