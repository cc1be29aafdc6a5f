"""2-D DCT-II / IDCT as matrix products: equal to scipy, invertible, differentiable, ONNX-exportable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.fft
import torch

from causal_tune_ros.model.band_pass import gaussian_band_pass
from causal_tune_ros.model.dct import (
    dct_2d,
    dct_2d_channels_last,
    dct_matrix,
    idct_2d,
    idct_2d_channels_last,
)

SHAPES = [(2, 3, 5, 7), (4, 9), (1, 2, 37, 74), (3, 1, 11, 6)]


def _random(shape: tuple[int, ...], seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.mark.parametrize("n", [1, 2, 7, 16, 37])
def test_dct_matrix_is_scipy_orthonormal_dct2(n: int) -> None:
    d = dct_matrix(n, dtype=torch.float64)
    reference = scipy.fft.dct(np.eye(n), type=2, norm="ortho", axis=0)  # column j = DCT of e_j
    np.testing.assert_allclose(d.numpy(), reference, atol=1e-12)
    np.testing.assert_allclose((d @ d.T).numpy(), np.eye(n), atol=1e-12)


def test_dct_matrix_is_cached_per_size_dtype_device() -> None:
    assert dct_matrix(9) is dct_matrix(9, torch.float32, "cpu")
    assert dct_matrix(9, torch.float64).dtype == torch.float64
    assert dct_matrix(9, torch.float64) is not dct_matrix(9)
    assert dct_matrix(10).shape == (10, 10)


def test_dct_matrix_built_in_inference_mode_still_supports_autograd() -> None:
    with torch.inference_mode():
        dct_matrix(13, torch.float64)
    x = _random((1, 13, 4, 2), dtype=torch.float64).requires_grad_(True)
    dct_2d_channels_last(x).square().sum().backward()  # would raise for an inference tensor
    assert x.grad is not None and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_dct_matrix_rejects_bad_sizes(bad: object) -> None:
    with pytest.raises(ValueError, match="positive integer"):
        dct_matrix(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("shape", SHAPES)
def test_dct_2d_and_idct_2d_equal_scipy(shape: tuple[int, ...]) -> None:
    x = _random(shape, seed=len(shape))
    expected = scipy.fft.dctn(x.double().numpy(), type=2, norm="ortho", axes=(-2, -1))
    coefficients = dct_2d(x)
    assert coefficients.dtype == torch.float32
    assert np.abs(coefficients.numpy() - expected).max() < 1e-5
    back = scipy.fft.idctn(coefficients.double().numpy(), type=2, norm="ortho", axes=(-2, -1))
    assert np.abs(idct_2d(coefficients).numpy() - back).max() < 1e-5
    assert (idct_2d(dct_2d(x)) - x).abs().max() < 1e-5


@pytest.mark.parametrize("shape", [(2, 5, 7, 6), (1, 37, 74, 8), (3, 4, 1, 5)])
def test_channels_last_transform_equals_scipy_on_grid_axes(shape: tuple[int, int, int, int]) -> None:
    x = _random(shape, seed=shape[1])
    expected = scipy.fft.dctn(x.double().numpy(), type=2, norm="ortho", axes=(1, 2))
    coefficients = dct_2d_channels_last(x)
    assert coefficients.is_contiguous()
    assert np.abs(coefficients.numpy() - expected).max() < 1e-5
    back = scipy.fft.idctn(coefficients.double().numpy(), type=2, norm="ortho", axes=(1, 2))
    assert np.abs(idct_2d_channels_last(coefficients).numpy() - back).max() < 1e-5
    assert (idct_2d_channels_last(coefficients) - x).abs().max() < 1e-5


def test_channels_last_reads_a_token_slice_without_copying_it() -> None:
    # The Causal-Tune layout: (B, prefix + H * W, C) tokens whose patch part is viewed as (B, H, W, C).
    tokens = _random((2, 3 + 4 * 6, 5))
    grid = tokens[:, 3:].view(2, 4, 6, 5)
    assert grid.data_ptr() == tokens[:, 3:].data_ptr()
    expected = dct_2d(grid.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    assert (dct_2d_channels_last(grid) - expected).abs().max() < 1e-5


def test_masked_transform_equals_mask_times_spectrum() -> None:
    x = _random((2, 6, 9, 4), seed=3)
    mask = gaussian_band_pass(6, 9, torch.tensor([0.2, 0.7]))
    expected = dct_2d_channels_last(x) * mask.unsqueeze(-1)
    assert (dct_2d_channels_last(x, mask) - expected).abs().max() < 1e-6
    with pytest.raises(ValueError, match="mask must be"):
        dct_2d_channels_last(x, mask.T)


def test_inverse_with_residual_accumulates_in_the_gemm() -> None:
    coefficients = _random((2, 5, 7, 3), seed=4)
    residual = _random((2, 5, 7, 3), seed=5)
    expected = residual + idct_2d_channels_last(coefficients)
    out = idct_2d_channels_last(coefficients, residual)
    assert (out - expected).abs().max() < 1e-6
    assert out.data_ptr() != residual.data_ptr()

    tokens = torch.cat([_random((2, 1, 3), seed=6), residual.reshape(2, 35, 3)], dim=1)
    view = tokens[:, 1:].view(2, 5, 7, 3)
    returned = idct_2d_channels_last(coefficients, view, inplace=True)
    assert returned is view
    assert (tokens[:, 1:].view(2, 5, 7, 3) - expected).abs().max() < 1e-6

    with pytest.raises(ValueError, match="needs a residual"):
        idct_2d_channels_last(coefficients, inplace=True)
    with pytest.raises(ValueError, match="residual shape"):
        idct_2d_channels_last(coefficients, residual[:, :4])


def test_wrong_ranks_are_rejected() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        dct_2d(torch.zeros(5))
    with pytest.raises(ValueError, match=r"\(B, H, W, C\)"):
        dct_2d_channels_last(torch.zeros(4, 5))
    with pytest.raises(ValueError, match=r"\(B, H, W, C\)"):
        idct_2d_channels_last(torch.zeros(4, 5, 6))


def test_gradients_flow_through_dct_and_idct() -> None:
    x = _random((1, 4, 5, 3), seed=7, dtype=torch.float64).requires_grad_(True)
    mask = gaussian_band_pass(4, 5, torch.tensor([0.2, 0.7], dtype=torch.float64))
    residual = _random((1, 4, 5, 3), seed=8, dtype=torch.float64).requires_grad_(True)

    def round_trip(inp: torch.Tensor, res: torch.Tensor) -> torch.Tensor:
        return idct_2d_channels_last(dct_2d_channels_last(inp, mask).tanh(), res)

    assert torch.autograd.gradcheck(round_trip, (x, residual))
    assert torch.autograd.gradcheck(
        lambda inp: idct_2d(dct_2d(inp).sin()), (x[0, :, :, 0].detach().requires_grad_(),)
    )


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_exports_to_onnx_with_matmuls_only_and_band_as_input(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")

    class BandFilter(torch.nn.Module):
        def forward(self, x: torch.Tensor, band: torch.Tensor) -> torch.Tensor:
            mask = gaussian_band_pass(x.shape[1], x.shape[2], band)
            return idct_2d_channels_last(dct_2d_channels_last(x, mask))

    x = _random((1, 5, 7, 4), seed=9)
    path = tmp_path / "band_filter.onnx"
    torch.onnx.export(
        BandFilter().eval(), (x, torch.tensor([0.2, 0.7])), str(path), input_names=["x", "band"], dynamo=True
    )
    graph = onnx.load(str(path)).graph
    ops = {node.op_type for node in graph.node}
    assert not ops & {"DFT", "STFT"}, ops
    assert "MatMul" in ops
    assert [i.name for i in graph.input] == ["x", "band"]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for band in ([0.2, 0.7], [0.05, 0.3]):
        band_t = torch.tensor(band)
        (out,) = session.run(None, {"x": x.numpy(), "band": band_t.numpy()})
        expected = BandFilter()(x, band_t)
        assert np.abs(out - expected.numpy()).max() < 1e-5


def test_tracing_with_fake_tensors_does_not_poison_the_cache() -> None:
    class Transform(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return dct_2d_channels_last(x)

    n = 23  # a size no other test uses, so export builds the basis under fake tensors
    x = _random((1, n, 3, 2), seed=10)
    program = torch.export.export(Transform(), (x,))
    basis = dct_matrix(n)
    assert type(basis) is torch.Tensor  # a plain tensor, not a FakeTensor left over from tracing
    expected = scipy.fft.dctn(x.double().numpy(), type=2, norm="ortho", axes=(1, 2))
    assert np.abs(program.module()(x).numpy() - expected).max() < 1e-5
    assert np.abs(dct_2d_channels_last(x).numpy() - expected).max() < 1e-5
