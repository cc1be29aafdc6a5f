"""Causal-Tune refinement and segmenter: docs/METHOD.md's formulas, the frozen backbone, training, head."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.fft
import torch
import torch.nn.functional as F

from causal_tune_ros.errors import ConfigError
from causal_tune_ros.model.band_pass import gaussian_band_pass
from causal_tune_ros.model.causal_tune import CausalTune, CausalTuneSegmenter, evenly_spaced_layers
from causal_tune_ros.model.dinov2 import DinoV2
from causal_tune_ros.model.heads import LightHead, build_head

DIM, DEPTH, REGISTERS, CLASSES = 32, 4, 2, 5
HEIGHT, WIDTH = 56, 70  # 4 x 5 patch grid
PAPER_BAND = torch.tensor([0.2, 0.7])
OTHER_BAND = torch.tensor([0.05, 0.3])


def _backbone(seed: int = 0) -> DinoV2:
    torch.manual_seed(seed)
    return DinoV2(
        "custom", num_register_tokens=REGISTERS, embed_dim=DIM, depth=DEPTH, num_heads=2, img_size=56
    )


def _model(scale: float = 1e-3, seed: int = 0, **kwargs: object) -> CausalTuneSegmenter:
    """Tiny segmenter; every tuner tensor (biases included, which init zeroes) random but ``scale``."""
    backbone = _backbone(seed)
    head = LightHead(DIM, CLASSES, channels=16)
    model = CausalTuneSegmenter(backbone, head, num_tokens=8, rank=4, scale_init=scale, **kwargs)  # type: ignore[arg-type]
    gen = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for name, param in model.tuner.named_parameters():
            if name != "scale":
                param.copy_(0.3 * torch.randn(param.shape, generator=gen))
    return model.eval()


def _images(batch: int = 2, seed: int = 1) -> torch.Tensor:
    return torch.rand(batch, 3, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(seed))


def _normalized(model: CausalTuneSegmenter, images: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return (images - mean) / std


def _reference_refine(
    tuner: CausalTune,
    tokens: torch.Tensor,
    layer: int,
    grid: tuple[int, int],
    prefix: int,
    band: torch.Tensor | None,
) -> np.ndarray:
    """docs/METHOD.md steps 1-5 written literally in float64 numpy (scipy DCT, channel-first grid)."""
    t = tokens.detach().double().numpy()
    B, _, C = t.shape
    H, W = grid
    slot = tuner.layers.index(layer)
    p = {name: v.detach().double().numpy() for name, v in tuner.named_parameters()}
    x = t[:, prefix:].transpose(0, 2, 1).reshape(B, C, H, W)  # step 1: patch tokens to a grid
    X = scipy.fft.dctn(x, type=2, norm="ortho", axes=(-2, -1))  # step 2
    if band is not None:  # step 3: G from the formula
        u = np.arange(H)[:, None] / H
        v = np.arange(W)[None, :] / W
        rho2 = (u**2 + v**2) / 2.0
        r_low, r_high = band.double().tolist()
        X = X * (np.exp(-rho2 / (2 * r_high**2)) - np.exp(-rho2 / (2 * r_low**2)))
    Xf = X.reshape(B, C, H * W).transpose(0, 2, 1)  # (B, N, C) frequency positions
    T = p["tokens_a"][slot] @ p["tokens_b"][slot]  # step 4
    logits = Xf @ T.T / math.sqrt(C)
    S = np.exp(logits - logits.max(-1, keepdims=True))
    S /= S.sum(-1, keepdims=True)
    token_values = T @ p["mlp_token.weight"].T + p["mlp_token.bias"]
    delta = (S @ token_values + Xf) @ p["mlp_out.weight"].T + p["mlp_out.bias"]
    update = scipy.fft.idctn(
        delta.transpose(0, 2, 1).reshape(B, C, H, W), type=2, norm="ortho", axes=(-2, -1)
    )
    out = t.copy()  # step 5: residual on patch tokens only
    out[:, prefix:] += p["scale"] * update.reshape(B, C, H * W).transpose(0, 2, 1)
    return out


# ---------------------------------------------------------------------------------------------- refinement


@pytest.mark.parametrize("band", [PAPER_BAND, OTHER_BAND, None], ids=["paper", "other", "off"])
@pytest.mark.parametrize("mode", ["autograd", "inference"])
def test_refine_matches_spec_formulas(band: torch.Tensor | None, mode: str) -> None:
    model = _model(scale=0.7)
    tuner = model.tuner
    grid = (4, 5)
    prefix = 1 + REGISTERS
    tokens = torch.randn(2, prefix + 20, DIM, generator=torch.Generator().manual_seed(3))
    expected = _reference_refine(tuner, tokens, 2, grid, prefix, band)
    mask = None if band is None else gaussian_band_pass(*grid, band)
    original = tokens.clone()
    if mode == "inference":
        with torch.inference_mode():
            out = tuner.refine(tokens, 2, grid, prefix, mask, tuner.prepare())
    else:
        out = tuner.refine(tokens, 2, grid, prefix, mask, tuner.prepare())
        assert torch.equal(tokens, original)  # autograd path leaves its input alone
    assert np.abs(out.detach().double().numpy() - expected).max() < 2e-5
    assert np.abs(expected - original.double().numpy()).max() > 1e-2  # the update is not negligible
    assert torch.equal(out[:, :prefix], original[:, :prefix])  # class + register tokens bit-identical


def test_zero_scale_features_equal_frozen_backbone_exactly() -> None:
    model = _model(scale=0.0)
    images = _images()
    reference = model.backbone.get_intermediate_layers(
        _normalized(model, images), list(model.feature_layers), norm=True, reshape=True
    )
    for context in (torch.no_grad, torch.inference_mode):
        with context():
            features = model.features(images, PAPER_BAND)
        assert len(features) == len(reference) == 4
        for ours, theirs in zip(features, reference, strict=True):
            assert ours.shape == (2, DIM, 4, 5)
            assert torch.equal(ours, theirs)


def test_refinement_changes_features_and_different_bands_give_different_outputs() -> None:
    model = _model(scale=0.5)
    images = _images()
    with torch.no_grad():
        plain = model.backbone.get_intermediate_layers(_normalized(model, images), [DEPTH - 1], norm=True)[0]
        tuned = model.features(images, PAPER_BAND)[-1]
        paper = model(images, PAPER_BAND)
        other = model(images, OTHER_BAND)
        unfiltered = model(images, None)
        model.band_pass_enabled = False
        switched_off = model(images, PAPER_BAND)
    assert (tuned.flatten(2).transpose(1, 2) - plain).abs().max() > 1e-3
    assert paper.shape == (2, CLASSES, HEIGHT // 4, WIDTH // 4)
    assert (paper - other).abs().max() > 1e-4
    assert (paper - unfiltered).abs().max() > 1e-4
    assert torch.equal(switched_off, unfiltered)  # filter off == the full spectrum X


def test_only_the_chosen_layers_are_refined() -> None:
    model = _model(scale=0.5, layers=[1, 3], feature_layers=[0, 1, 2, 3])
    images = _images(batch=1)
    with torch.no_grad():
        ours = model.features(images, PAPER_BAND)
        plain = model.backbone.get_intermediate_layers(
            _normalized(model, images), [0, 1], norm=True, reshape=True
        )
    assert model.tuner.layers == (1, 3)
    assert model.tuner.tokens_a.shape == (2, 8, 4)
    assert torch.equal(ours[0], plain[0])  # block 0 is not tuned
    assert (ours[1] - plain[1]).abs().max() > 1e-3


def test_inference_mode_and_autograd_paths_agree() -> None:
    model = _model(scale=0.5)
    images = _images()
    with torch.no_grad():
        expected = model(images, PAPER_BAND)
    with torch.inference_mode():
        fast = model(images, PAPER_BAND)
    assert (fast - expected).abs().max() < 1e-5


# ---------------------------------------------------------------------------------------------- training


def test_one_optimizer_step_changes_only_trainable_tensors() -> None:
    model = _model(scale=1e-3)
    model.train()
    backbone_before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    trainable_before = {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}
    assert all(not p.requires_grad for p in model.backbone.parameters())
    trainable = model.trainable_parameters()
    assert {id(p) for p in trainable} == {
        id(p) for p in (*model.tuner.parameters(), *model.head.parameters())
    }
    assert not model.backbone.training and model.head.training and model.tuner.training

    optimizer = torch.optim.AdamW(trainable, lr=1e-2, weight_decay=0.05)
    labels = torch.randint(
        0, CLASSES, (2, HEIGHT // 4, WIDTH // 4), generator=torch.Generator().manual_seed(0)
    )
    loss = F.cross_entropy(model(_images(), PAPER_BAND), labels)
    loss.backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    optimizer.step()

    for name, value in model.backbone.state_dict().items():
        assert torch.equal(value, backbone_before[name]), name
    changed = {
        name
        for name, p in model.named_parameters()
        if p.requires_grad and not torch.equal(p, trainable_before[name])
    }
    for expected in (
        "tuner.tokens_a",
        "tuner.tokens_b",
        "tuner.mlp_token.weight",
        "tuner.mlp_out.weight",
        "tuner.scale",
    ):
        assert expected in changed
    assert any(name.startswith("head.") for name in changed)
    assert not model.backbone.training  # still eval after train()


def test_gradients_flow_through_the_dct_block() -> None:
    tuner = CausalTune(6, [0], num_tokens=4, rank=2, scale_init=0.4).double()
    grid = (3, 4)
    mask = gaussian_band_pass(*grid, PAPER_BAND.double())
    tokens = torch.randn(2, 1 + 12, 6, dtype=torch.float64, requires_grad=True)

    def refine(inp: torch.Tensor) -> torch.Tensor:
        return tuner.refine(inp, 0, grid, 1, mask, tuner.prepare())

    assert torch.autograd.gradcheck(refine, (tokens,))
    refine(tokens).square().sum().backward()
    for name, param in tuner.named_parameters():
        assert param.grad is not None and param.grad.abs().max() > 0, name


# ------------------------------------------------------------------------------------------ config & errors


def test_config_is_json_and_rebuilds_the_same_model() -> None:
    model = _model(layers=[0, 2], feature_layers=[0, 1, 2, 3])
    config = json.loads(json.dumps(model.config))
    assert config["num_classes"] == CLASSES and config["layers"] == [0, 2] and config["rank"] == 4
    kwargs = {k: config[k] for k in CausalTuneSegmenter.CONSTRUCTOR_KEYS}
    rebuilt = CausalTuneSegmenter(_backbone(), build_head(config["head"]), **kwargs)
    assert rebuilt.config == model.config
    assert rebuilt.state_dict().keys() == model.state_dict().keys()
    assert "pixel_mean" not in model.state_dict()  # normalisation constants are not checkpoint tensors


def test_evenly_spaced_layers() -> None:
    assert evenly_spaced_layers(12) == [2, 5, 8, 11]
    assert evenly_spaced_layers(24) == [5, 11, 17, 23]
    assert evenly_spaced_layers(40) == [9, 19, 29, 39]
    assert evenly_spaced_layers(3) == [0, 1, 2, 2]
    with pytest.raises(ConfigError):
        evenly_spaced_layers(0)


def test_construction_errors() -> None:
    with pytest.raises(ConfigError, match="out of range"):
        CausalTuneSegmenter(_backbone(), LightHead(DIM, CLASSES), layers=[0, DEPTH])
    with pytest.raises(ConfigError, match="in_channels"):
        CausalTuneSegmenter(_backbone(), LightHead(DIM * 2, CLASSES))
    with pytest.raises(ConfigError, match="feature grids"):
        CausalTuneSegmenter(_backbone(), LightHead(DIM, CLASSES), feature_layers=[1, 2])
    with pytest.raises(ConfigError, match="empty"):
        CausalTuneSegmenter(_backbone(), LightHead(DIM, CLASSES), layers=[])
    with pytest.raises(ConfigError, match="rank"):
        CausalTune(DIM, [0], rank=0)


def test_bad_inputs_are_rejected_with_clear_errors() -> None:
    model = _model()
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model(torch.rand(3, HEIGHT, WIDTH), PAPER_BAND)
    with pytest.raises(ValueError, match="floating"):
        model(torch.zeros(1, 3, HEIGHT, WIDTH, dtype=torch.uint8), PAPER_BAND)
    with pytest.raises(ValueError, match="multiples"):
        model(torch.rand(1, 3, 50, WIDTH), PAPER_BAND)
    with pytest.raises(TypeError, match="band"):
        model(_images(1), (0.2, 0.7))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- head


@pytest.mark.parametrize("norm", ["bn", "gn"])
def test_light_head_shapes_and_config_round_trip(norm: str) -> None:
    head = LightHead(DIM, CLASSES, channels=16, norm=norm).eval()
    features = [torch.randn(1, DIM, 4, 5) for _ in range(4)]
    logits = head(features, (14, 17))
    assert logits.shape == (1, CLASSES, 14, 17)
    rebuilt = build_head(json.loads(json.dumps(head.config)))
    assert isinstance(rebuilt, LightHead) and rebuilt.config == head.config
    rebuilt.load_state_dict(head.state_dict())
    assert torch.equal(rebuilt.eval()(features, (14, 17)), logits)


def test_light_head_classifying_before_upsampling_equals_upsampling_first() -> None:
    head = LightHead(DIM, CLASSES, channels=16).eval()
    features = [torch.randn(2, DIM, 4, 5) for _ in range(4)]
    with torch.no_grad():
        fused = head.fuse(torch.cat([p(f) for p, f in zip(head.projections, features, strict=True)], dim=1))
        upsampled = F.interpolate(fused, size=(14, 17), mode="bilinear", align_corners=False)
        expected = head.classifier(upsampled)
        assert (head(features, (14, 17)) - expected).abs().max() < 1e-5


def test_light_head_errors() -> None:
    head = LightHead(DIM, CLASSES)
    with pytest.raises(ValueError, match="expects 4"):
        head([torch.randn(1, DIM, 2, 2)] * 3, (8, 8))
    with pytest.raises(ValueError, match="equal shape"):
        head([torch.randn(1, DIM, 2, 2)] * 3 + [torch.randn(1, DIM, 3, 2)], (8, 8))
    with pytest.raises(ConfigError, match="norm"):
        LightHead(DIM, CLASSES, norm="ln")
    with pytest.raises(ConfigError, match="num_classes"):
        LightHead(DIM, 0)
    with pytest.raises(ConfigError, match="unknown head type"):
        build_head({"type": "Mask2Former"})
    with pytest.raises(ConfigError, match="bad arguments"):
        build_head({"type": "LightHead", "in_channels": DIM})
