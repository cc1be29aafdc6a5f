"""The ablation variants of the domain-generalisation experiment: Rein's refinement (``operator="rein"``)
and the decode-head-only baseline (``model.tuner.frozen``)."""

from __future__ import annotations

import math

import torch

from causal_tune_ros.model.causal_tune import CausalTuneSegmenter
from causal_tune_ros.model.dinov2 import DinoV2
from causal_tune_ros.model.heads import LightHead


def _model(operator: str, **kwargs) -> CausalTuneSegmenter:
    torch.manual_seed(0)
    backbone = DinoV2("vits14", embed_dim=24, depth=2, num_heads=2, img_size=56)
    head = LightHead(24, 5, num_inputs=2, channels=8)
    return CausalTuneSegmenter(backbone, head, num_tokens=6, rank=3, operator=operator, **kwargs).eval()


def test_rein_operator_is_reins_refinement_on_the_patch_tokens() -> None:
    """f' = f + s * MLP_out(softmax(f T^T / sqrt(C)) MLP_tok(T) + f), written out naively, and no band."""
    model = _model("rein", scale_init=0.5)
    tuner = model.tuner
    with torch.no_grad():  # peaked attention and non-zero biases: every term of the formula matters
        for param in (tuner.tokens_a, tuner.tokens_b, tuner.mlp_token.bias, tuner.mlp_out.bias):
            param.normal_()
    tokens = torch.randn(2, 1 + 4 * 6, 24)
    refined = tuner.refine(tokens, 1, (4, 6), 1, None, tuner.prepare())
    f = tokens[:, 1:]
    t = tuner.tokens()[1]  # layer 1's (m, C) tokens
    attention = torch.softmax(f @ t.T / math.sqrt(24), dim=-1)
    expected = f + 0.5 * tuner.mlp_out(attention @ tuner.mlp_token(t) + f)
    torch.testing.assert_close(refined[:, 1:], expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(refined[:, :1], tokens[:, :1])  # the class token passes unchanged

    images = torch.rand(1, 3, 56, 84)
    with torch.no_grad():
        narrow = model(images, torch.tensor([0.1, 0.3]))
        wide = model(images, torch.tensor([0.2, 0.7]))
        off = model(images, None)
    torch.testing.assert_close(narrow, wide)  # the band does not enter a Rein-style model
    torch.testing.assert_close(narrow, off)


def test_rein_differs_from_the_filter_off_probe() -> None:
    """band_pass_enabled=False still attends in the DCT domain: not the same refinement as Rein."""
    rein, spatial = _model("rein", scale_init=1.0), _model("spatial", scale_init=1.0)
    with torch.no_grad():  # trained tokens: attention that depends on the input
        rein.tuner.tokens_a.normal_()
        rein.tuner.tokens_b.normal_()
    spatial.load_state_dict(rein.state_dict())
    tokens = torch.randn(2, 1 + 4 * 6, 24)
    with torch.no_grad():
        a = rein.tuner.refine(tokens, 0, (4, 6), 1, None, rein.tuner.prepare()) - tokens
        b = spatial.tuner.refine(tokens, 0, (4, 6), 1, None, spatial.tuner.prepare()) - tokens
    assert float((a - b).norm() / a.norm()) > 0.05


def test_frozen_tuner_trains_the_head_only() -> None:
    from causal_tune_ros.training.config import config_from_dict
    from causal_tune_ros.training.trainer import build_model

    raw = {
        "model": {
            "backbone": {"arch": "custom", "overrides": {"embed_dim": 24, "depth": 2, "num_heads": 2}},
            "tuner": {"num_tokens": 4, "rank": 2, "frozen": True},
            "head": {"type": "light", "options": {"channels": 8}},
        }
    }
    model = build_model(config_from_dict(raw).model, num_classes=5)
    head = {id(p) for p in model.head.parameters()}
    assert {id(p) for p in model.trainable_parameters()} == head
    assert float(model.tuner.scale) == 0.0
    # Scale 0: the refined features are exactly the frozen backbone's.
    images = torch.rand(1, 3, 28, 42)
    with torch.no_grad():
        feats = model.features(images, torch.tensor([0.2, 0.7]))
        x = model.backbone.prepare_tokens((images - model.pixel_mean) / model.pixel_std)
        plain_tokens = {}
        for i, block in enumerate(model.backbone.blocks):  # the frozen backbone alone
            x = plain_tokens[i] = block(x)
        tokens = [model.backbone.norm(plain_tokens[i])[:, 1:] for i in model.feature_layers]
    for grid, plain in zip(feats, tokens, strict=True):
        torch.testing.assert_close(grid.flatten(2).transpose(1, 2), plain, rtol=0, atol=1e-6)


def test_rein_model_round_trips_through_a_checkpoint(tmp_path) -> None:
    from causal_tune_ros.model.checkpoint import load_checkpoint, save_checkpoint

    model = _model("rein", scale_init=0.3)
    path = save_checkpoint(tmp_path / "rein.safetensors", model, include_backbone=True, band=(0.2, 0.7))
    loaded = load_checkpoint(path).eval()
    assert loaded.tuner.operator == "rein"
    images = torch.rand(1, 3, 28, 42)
    with torch.no_grad():
        torch.testing.assert_close(loaded(images, torch.tensor([0.2, 0.7])), model(images, None))
