"""The three frequency operators of Causal-Tune against float64 NumPy references written from their
descriptions (docs/METHOD.md), the token options, and export: ``spatial`` / ``channel`` export with the
band as an input, ``released`` refuses."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.fft
import torch

from causal_tune_ros.errors import BackendError, ConfigError
from causal_tune_ros.model.band_pass import gaussian_band_pass, released_causal_weight
from causal_tune_ros.model.causal_tune import CausalTune, CausalTuneSegmenter
from causal_tune_ros.model.checkpoint import load_checkpoint, save_checkpoint
from causal_tune_ros.model.dinov2 import DinoV2
from causal_tune_ros.model.heads import LightHead

DIM, SIDE = 16, 4  # a square width: each token's channels form a 4 x 4 grid
PREFIX, GRID = 2, (3, 5)  # class + 1 register token, 15 patches
PAPER_BAND = torch.tensor([0.2, 0.7])


def _tuner(operator: str, sink: bool = False, scale: float = 0.7, seed: int = 0) -> CausalTune:
    """A tuner on two layers whose every tensor is random (biases too)."""
    tuner = CausalTune(DIM, [0, 1], num_tokens=6, rank=3, operator=operator, attention_sink=sink)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in tuner.named_parameters():
            param.copy_(
                torch.tensor(scale) if name == "scale" else 0.5 * torch.randn(param.shape, generator=gen)
            )
    return tuner


def _tokens(seed: int = 1) -> torch.Tensor:
    # Large enough that the released clamp cuts at both 0 and (for some entries) stays inside.
    return 20.0 * torch.randn(
        2, PREFIX + GRID[0] * GRID[1], DIM, generator=torch.Generator().manual_seed(seed)
    )


def _reference_released_weight(side: int) -> np.ndarray:
    """``1 - M`` with M piecewise in max(u, v), cut-offs int(0.1 side) and int(0.7 side), written out."""
    v1, v2, v3 = int(0.1 * side), int(0.7 * side), side
    weight = np.zeros((side, side))
    for u in range(side):
        for v in range(side):
            m = max(u, v)
            if m <= v1:
                mask = 1.0 - m / (v1 + 1e-10) * 0.95
            elif m <= v2:
                mask = 0.01
            elif m <= v3:
                mask = (m - v2) / (v3 - v2) * 0.3
            else:
                mask = 0.5
            weight[u, v] = 1.0 - mask
    return weight


def _reference(tuner: CausalTune, tokens: torch.Tensor, layer: int, band: torch.Tensor | None) -> np.ndarray:
    """Channel / released operators in float64 NumPy: per token, its C channels as a side x side grid."""
    t = tokens.detach().double().numpy()
    B, P, C = t.shape[0], PREFIX, t.shape[2]
    p = {name: v.detach().double().numpy() for name, v in tuner.named_parameters()}
    x = t[:, P:].reshape(B, -1, SIDE, SIDE)  # token n's channels, row by row
    X = scipy.fft.dctn(x, type=2, norm="ortho", axes=(-2, -1))
    if tuner.operator == "released":
        X = X * _reference_released_weight(SIDE)
    elif band is not None:
        u = np.arange(SIDE)[:, None] / SIDE
        v = np.arange(SIDE)[None, :] / SIDE
        rho2 = (u**2 + v**2) / 2.0
        r_low, r_high = band.double().tolist()
        X = X * (np.exp(-rho2 / (2 * r_high**2)) - np.exp(-rho2 / (2 * r_low**2)))
    Xf = X.reshape(B, -1, C)
    T = p["tokens_a"][layer] @ p["tokens_b"][layer]
    logits = Xf @ T.T / math.sqrt(C)
    S = np.exp(logits - logits.max(-1, keepdims=True))
    S /= S.sum(-1, keepdims=True)
    values = T @ p["mlp_token.weight"].T + p["mlp_token.bias"]
    if tuner.attention_sink:  # token 0 is in the softmax, its value is not used
        S, values = S[..., 1:], values[1:]
    delta = ((S @ values + Xf) @ p["mlp_out.weight"].T + p["mlp_out.bias"]).reshape(B, -1, SIDE, SIDE)
    if tuner.operator == "released":
        update = np.clip(np.fft.ifft2(delta, norm="ortho").real, 0.0, 255.0) * p["scale"]
    else:
        update = scipy.fft.idctn(delta, type=2, norm="ortho", axes=(-2, -1)) * p["scale"]
    out = t.copy()
    out[:, P:] += update.reshape(B, -1, C)
    return out


def _weight(tuner: CausalTune, band: torch.Tensor | None) -> torch.Tensor | None:
    if tuner.operator == "released":
        return released_causal_weight(SIDE, SIDE)
    return None if band is None else gaussian_band_pass(SIDE, SIDE, band)


@pytest.mark.parametrize("sink", [False, True], ids=["no_sink", "sink"])
@pytest.mark.parametrize(
    ("operator", "band"),
    [("channel", PAPER_BAND), ("channel", None), ("released", PAPER_BAND)],
    ids=["channel", "channel_full", "released"],
)
def test_channel_operators_match_their_float64_reference(
    operator: str, band: torch.Tensor | None, sink: bool
) -> None:
    tuner = _tuner(operator, sink=sink)
    tokens = _tokens()
    original = tokens.clone()
    out = tuner.refine(tokens, 1, GRID, PREFIX, _weight(tuner, band), tuner.prepare())
    expected = _reference(tuner, tokens, 1, band)
    assert np.abs(out.detach().double().numpy() - expected).max() < 1e-3 * np.abs(expected).max()
    assert np.abs(expected - original.double().numpy()).max() > 1e-1  # the update is not negligible
    assert torch.equal(tokens, original)
    assert torch.equal(out[:, :PREFIX], original[:, :PREFIX])
    if operator == "released":  # the clamp is active on both sides in this example
        delta = (out - original)[:, PREFIX:] / 0.7
        assert (delta == 0).any() and (delta > 0).any()


def test_spatial_operator_with_attention_sink_matches_reference() -> None:
    tuner = _tuner("spatial", sink=True)
    tokens = _tokens()
    out = tuner.refine(tokens, 0, GRID, PREFIX, gaussian_band_pass(*GRID, PAPER_BAND), tuner.prepare())
    t = tokens.double().numpy()
    p = {name: v.detach().double().numpy() for name, v in tuner.named_parameters()}
    x = t[:, PREFIX:].reshape(2, *GRID, DIM)
    u = np.arange(GRID[0])[:, None] / GRID[0]
    v = np.arange(GRID[1])[None, :] / GRID[1]
    rho2 = (u**2 + v**2) / 2.0
    X = (
        scipy.fft.dctn(x, type=2, norm="ortho", axes=(1, 2))
        * (np.exp(-rho2 / (2 * 0.7**2)) - np.exp(-rho2 / (2 * 0.2**2)))[None, :, :, None]
    )
    T = p["tokens_a"][0] @ p["tokens_b"][0]
    logits = X.reshape(2, -1, DIM) @ T.T / math.sqrt(DIM)
    S = np.exp(logits - logits.max(-1, keepdims=True))
    S /= S.sum(-1, keepdims=True)
    values = (T @ p["mlp_token.weight"].T + p["mlp_token.bias"])[1:]
    delta = (S[..., 1:] @ values + X.reshape(2, -1, DIM)) @ p["mlp_out.weight"].T + p["mlp_out.bias"]
    update = scipy.fft.idctn(delta.reshape(2, *GRID, DIM), type=2, norm="ortho", axes=(1, 2))
    expected = t.copy()
    expected[:, PREFIX:] += p["scale"] * update.reshape(2, -1, DIM)
    assert np.abs(out.detach().double().numpy() - expected).max() < 1e-3 * np.abs(expected).max()


def test_released_weight_is_the_piecewise_high_pass() -> None:
    for side in (4, 10, 32):
        weight = released_causal_weight(side, side, dtype=torch.float64).numpy()
        np.testing.assert_allclose(weight, _reference_released_weight(side), atol=1e-12)
    weight = released_causal_weight(32, 32).numpy()
    assert weight[0, 0] == 0.0  # DC removed
    assert 0.98 < (weight > 0.5).mean() < 1.0  # passes about 99% of the coefficients


def test_channel_operator_is_differentiable_and_released_detaches_its_transform() -> None:
    for operator in ("channel", "released"):
        tuner = _tuner(operator)
        tokens = _tokens().requires_grad_(True)
        probe = torch.randn(tokens.shape, generator=torch.Generator().manual_seed(5))
        out = tuner.refine(tokens, 0, GRID, PREFIX, _weight(tuner, PAPER_BAND), tuner.prepare())
        (out * probe).sum().backward()
        through_residual_only = torch.equal(tokens.grad, probe)
        # channel: gradient also flows through DCT -> tokens -> IDCT; released: its DCT input is detached.
        assert through_residual_only == (operator == "released"), operator
        assert tuner.tokens_a.grad is not None and tuner.tokens_a.grad.abs().sum() > 0


def test_channel_operators_refuse_a_width_that_is_not_a_square() -> None:
    for operator in ("channel", "released"):
        with pytest.raises(ConfigError, match=r"width 384 is not a square"):
            CausalTune(384, [0], operator=operator)
    with pytest.raises(ConfigError, match="operator must be one of"):
        CausalTune(DIM, [0], operator="wavelet")


def test_token_options_follow_the_released_initialisation() -> None:
    torch.manual_seed(0)
    tuner = CausalTune(
        1024,
        [0, 1],
        num_tokens=100,
        rank=16,
        token_init="lora",
        token_init_patch=16,
        linear_bias_init="default",
    )
    bound = math.sqrt(6.0 / (3 * 16 * 16 + math.sqrt(1024 * 16)))
    for tokens in (tuner.tokens_a, tuner.tokens_b):
        assert bound * 0.99 < float(tokens.detach().abs().max()) <= bound
    assert float(tuner.mlp_token.bias.abs().max()) > 0.5 / math.sqrt(1024)  # PyTorch's uniform bias
    plain = CausalTune(1024, [0], num_tokens=100, rank=16)
    assert float(plain.tokens_a.abs().max()) <= math.sqrt(6.0 / (3 * 14 * 14 + 1024))
    assert torch.count_nonzero(plain.mlp_out.bias) == 0


def _segmenter(operator: str, seed: int = 0) -> CausalTuneSegmenter:
    torch.manual_seed(seed)
    backbone = DinoV2(
        "custom", embed_dim=DIM, depth=1, num_heads=2, img_size=56
    )  # export time grows with depth
    model = CausalTuneSegmenter(
        backbone,
        LightHead(DIM, 5, channels=8),
        num_tokens=6,
        rank=3,
        scale_init=1.0,
        operator=operator,
        attention_sink=True,
        feature_norm=False,
    ).eval()
    with torch.no_grad():
        model.tuner.tokens_b.normal_(0.0, 1.0)
    return model


def test_operator_options_round_trip_through_a_checkpoint(tmp_path: Path) -> None:
    model = _segmenter("channel")
    path = save_checkpoint(tmp_path / "m.safetensors", model, include_backbone=True)
    loaded = load_checkpoint(path)
    assert loaded.tuner.operator == "channel" and loaded.tuner.attention_sink and not loaded.feature_norm
    images = torch.rand(1, 3, 42, 56, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.equal(loaded(images, PAPER_BAND), model(images, PAPER_BAND))


def test_channel_operator_exports_to_onnx_with_the_band_as_input(tmp_path: Path) -> None:
    """(The spatial operator's export, band input included, is tested in test/backends/test_backend_onnx.py
    and test_mask2former_head.py on their tiny models.)"""
    ort = pytest.importorskip("onnxruntime")
    from causal_tune_ros.backends.export import export_onnx_graph

    operator = "channel"
    model = _segmenter(operator)
    path = export_onnx_graph(model, tmp_path / f"{operator}.onnx", (42, 56))  # checks the band input
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    images = torch.rand(1, 3, 42, 56, generator=torch.Generator().manual_seed(3))
    outputs = []
    for band in (PAPER_BAND, torch.tensor([0.05, 0.3])):
        (onnx_out,) = session.run(None, {"images": images.numpy(), "band": band.numpy()})
        with torch.no_grad():
            eager = model(images, band).numpy()
        assert np.abs(onnx_out - eager).max() < 1e-4
        outputs.append(onnx_out)
    assert np.abs(outputs[0] - outputs[1]).max() > 1e-4  # the band input changes the output


def test_released_operator_refuses_export_with_its_reason(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    from causal_tune_ros.backends.export import export_onnx_graph

    model = _segmenter("released")
    with pytest.raises(BackendError, match="operator 'released' cannot be exported"):
        export_onnx_graph(model, tmp_path / "released.onnx", (42, 56))
    assert not (tmp_path / "released.onnx").exists()
