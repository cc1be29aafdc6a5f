"""Mask2Former head: output contract, masked attention against a plain reference, config and checkpoint
round trips, training with the set criterion, and ONNX export of the whole segmenter."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from causal_tune_ros.errors import ConfigError
from causal_tune_ros.model.causal_tune import CausalTuneSegmenter
from causal_tune_ros.model.checkpoint import load_checkpoint, save_checkpoint
from causal_tune_ros.model.dinov2 import DinoV2
from causal_tune_ros.model.heads import build_head
from causal_tune_ros.model.mask2former_head import Mask2FormerHead, sine_position_embedding
from causal_tune_ros.synthetic import render_scene
from causal_tune_ros.training.losses import SetCriterion

DIM, CLASSES, QUERIES, LAYERS, HIDDEN = 32, 19, 20, 2, 32
HEIGHT, WIDTH = 56, 112  # 4 x 8 patches
BAND = torch.tensor([0.2, 0.7])


def _head(**overrides: object) -> Mask2FormerHead:
    config = {
        "type": "mask2former",
        "in_channels": DIM,
        "num_classes": CLASSES,
        "num_queries": QUERIES,
        "hidden_dim": HIDDEN,
        "num_decoder_layers": LAYERS,
        "num_heads": 4,
        "dim_feedforward": 64,
        **overrides,
    }
    head = build_head(config)
    assert isinstance(head, Mask2FormerHead)
    return head


def _model(seed: int = 0, depth: int = 4, **head_overrides: object) -> CausalTuneSegmenter:
    torch.manual_seed(seed)
    backbone = DinoV2("vits14", embed_dim=DIM, depth=depth, num_heads=4, img_size=56)
    return CausalTuneSegmenter(backbone, _head(**head_overrides), num_tokens=8, rank=4, scale_init=0.1)


def _images(batch: int = 2, seed: int = 1) -> torch.Tensor:
    return torch.rand(batch, 3, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(seed))


def _spread_queries(head: Mask2FormerHead, seed: int = 3) -> None:
    """Make the predicted masks cover a mix of foreground and background so attention masks bite."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in (head.query_feat.weight, head.query_embed.weight):
            param.copy_(torch.randn(param.shape, generator=gen))


def _semantic(head: Mask2FormerHead, logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    scores = torch.einsum("bqk,bqhw->bkhw", logits.softmax(-1)[..., :-1], masks.sigmoid())
    return F.interpolate(scores, size=(HEIGHT // 4, WIDTH // 4), mode="bilinear", align_corners=False)


def test_train_mode_returns_set_predictions_and_eval_mode_semantic_scores() -> None:
    model = _model()
    images = _images()
    with torch.no_grad():
        out = model.train()(images, BAND)
        assert set(out) == {"pred_logits", "pred_masks", "aux_outputs"}
        # Mask features are 4x the 4 x 8 patch grid.
        assert out["pred_logits"].shape == (2, QUERIES, CLASSES + 1)
        assert out["pred_masks"].shape == (2, QUERIES, 16, 32)
        assert len(out["aux_outputs"]) == LAYERS
        for aux in out["aux_outputs"]:
            assert aux["pred_logits"].shape == out["pred_logits"].shape
            assert aux["pred_masks"].shape == out["pred_masks"].shape
            assert not torch.equal(aux["pred_masks"], out["pred_masks"])
        scores = model.eval()(images, BAND)
    assert scores.shape == (2, CLASSES, HEIGHT // 4, WIDTH // 4)
    assert torch.isfinite(scores).all() and (scores >= 0).all()


def test_eval_output_is_the_einsum_of_the_train_mode_predictions() -> None:
    model = _model()
    _spread_queries(model.head)
    images = _images()
    with torch.no_grad():
        out = model.train()(images, BAND)
        scores = model.eval()(images, BAND)
        expected = _semantic(model.head, out["pred_logits"], out["pred_masks"])
        torch.testing.assert_close(scores, expected, rtol=1e-5, atol=1e-6)

        model.head.eval_output = "log_scores"
        logs = model(images, BAND)
    torch.testing.assert_close(logs, expected.clamp_min(1e-6).log(), rtol=1e-5, atol=1e-5)
    # Same decision; the softmax of the log scores is the normalised score distribution.
    assert torch.equal(logs.argmax(1), scores.argmax(1))
    torch.testing.assert_close(
        logs.softmax(1), expected / expected.sum(1, keepdim=True), rtol=1e-4, atol=1e-5
    )


def _reference_forward(
    head: Mask2FormerHead, features: list[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask2Former's decoder written out with explicit softmax attention and its boolean attention mask:
    masks predicted at full resolution, resized to the memory level, ``sigmoid < 0.5`` blocked, rows that
    block everything released. Shares only the head's weights and pixel decoder."""
    mask_features, levels = head.pixel_decoder(features)
    B, D = mask_features.shape[:2]
    heads = head.num_heads

    def attend(attn, q, k, v, blocked=None):
        def split(x):
            return x.view(B, x.shape[1], heads, D // heads).transpose(1, 2)

        qh, kh, vh = split(attn.q_proj(q)), split(attn.k_proj(k)), split(attn.v_proj(v))
        scores = qh @ kh.transpose(-1, -2) / math.sqrt(D // heads)
        if blocked is not None:
            scores = scores.masked_fill(blocked[:, None], float("-inf"))
        return attn.out_proj((scores.softmax(-1) @ vh).transpose(1, 2).reshape(B, q.shape[1], D))

    def predict(queries):
        decoded = head.decoder_norm(queries)
        masks = torch.einsum("bqc,bchw->bqhw", head.mask_embed(decoded), mask_features)
        return head.class_embed(decoded), masks

    queries = head.query_feat.weight.expand(B, -1, -1)
    query_pos = head.query_embed.weight[None]
    logits, masks = predict(queries)
    for j, layer in enumerate(head.layers):
        level = levels[j % 3]
        h, w = level.shape[-2:]
        memory = level.flatten(2).transpose(1, 2) + head.level_embed.weight[j % 3]
        pos = sine_position_embedding(h, w, D)
        resized = F.interpolate(masks, size=(h, w), mode="bilinear", align_corners=False)
        blocked = resized.flatten(2).sigmoid() < 0.5
        blocked[blocked.all(-1)] = False
        x = layer.norm_cross(
            queries + attend(layer.cross_attn, queries + query_pos, memory + pos, memory, blocked)
        )
        x = layer.norm_self(x + attend(layer.self_attn, x + query_pos, x + query_pos, x))
        queries = layer.norm_ffn(x + layer.ffn(x))
        logits, masks = predict(queries)
    return logits, masks


def test_masked_attention_matches_a_plain_mask2former_reference() -> None:
    model = _model().train()
    head = model.head
    _spread_queries(head)
    with torch.no_grad():
        features = model.features(_images(), BAND)
        out = head(features, (HEIGHT // 4, WIDTH // 4))
        logits, masks = _reference_forward(head, features)
        # The masks really block some positions and release some rows, so both paths are exercised.
        level = head.pixel_decoder(features)[1][0]
        resized = F.interpolate(out["aux_outputs"][0]["pred_masks"], size=level.shape[-2:], mode="bilinear")
        blocked = resized.flatten(2) < 0
        assert blocked.any() and (~blocked).any()
    torch.testing.assert_close(out["pred_logits"], logits, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out["pred_masks"], masks, rtol=1e-4, atol=1e-4)


def test_attention_mask_blocks_background_and_releases_empty_rows() -> None:
    logits = torch.tensor([[[1.0, -1.0, 0.0, -2.0], [-1.0, -0.5, -3.0, -0.1]]])  # (B=1, Q=2, N=4)
    bias = Mask2FormerHead._attention_mask(logits)
    assert bias.shape == (1, 1, 2, 4)
    inf = float("-inf")
    assert bias[0, 0, 0].tolist() == [0.0, inf, 0.0, inf]  # sigmoid(0) = 0.5 counts as foreground
    assert bias[0, 0, 1].tolist() == [0.0, 0.0, 0.0, 0.0]  # nothing in the foreground: attend everywhere


def test_config_round_trip_and_bad_configs() -> None:
    head = _head(dropout=0.0, eval_output="log_scores")
    config = head.config
    assert config["type"] == "Mask2FormerHead"
    rebuilt = build_head(dict(config))
    assert isinstance(rebuilt, Mask2FormerHead) and rebuilt.config == config
    assert [tuple(p.shape) for p in rebuilt.parameters()] == [tuple(p.shape) for p in head.parameters()]
    defaults = Mask2FormerHead(1024, 19)
    assert (defaults.num_queries, defaults.hidden_dim, defaults.num_decoder_layers) == (100, 256, 6)
    for bad in (
        {"hidden_dim": 30},  # not a multiple of 4
        {"hidden_dim": 36, "num_heads": 8},  # not a multiple of num_heads
        {"num_queries": 0},
        {"dropout": 1.0},
        {"eval_output": "probabilities"},
    ):
        with pytest.raises(ConfigError):
            _head(**bad)
    with pytest.raises(ConfigError, match="bad arguments"):
        _head(num_points=3)


def test_bad_feature_grids_are_rejected() -> None:
    head = _head()
    grid = torch.zeros(1, DIM, 4, 8)
    with pytest.raises(ValueError, match="4 feature grids"):
        head([grid] * 3, (14, 28))
    with pytest.raises(ValueError, match="equal shape"):
        head([grid, grid, grid, torch.zeros(1, DIM, 4, 7)], (14, 28))
    with pytest.raises(ValueError, match="equal shape"):
        head([torch.zeros(1, DIM + 1, 4, 8)] * 4, (14, 28))


def test_checkpoint_round_trip_reproduces_eval_outputs(tmp_path: Path) -> None:
    model = _model(seed=5)
    with torch.no_grad():  # move every head tensor away from its initialisation
        for param in model.head.parameters():
            param.add_(0.05 * torch.randn_like(param))
    model.eval()
    images = _images(batch=1)
    with torch.no_grad():
        expected = model(images, BAND)
    path = save_checkpoint(tmp_path / "m2f.safetensors", model, include_backbone=True)
    loaded = load_checkpoint(path)
    assert isinstance(loaded.head, Mask2FormerHead) and loaded.head.config == model.head.config
    with torch.no_grad():
        assert torch.equal(loaded(images, BAND), expected)


def _synthetic_batch() -> tuple[torch.Tensor, torch.Tensor]:
    frames = [render_scene(seed, "clear", HEIGHT, WIDTH) for seed in (0, 1)]
    images = torch.from_numpy(np.stack([f.image for f in frames])).permute(0, 3, 1, 2).float() / 255.0
    labels = torch.from_numpy(np.stack([f.labels for f in frames])).long()
    return images, labels


def test_a_few_optimizer_steps_reduce_the_set_loss() -> None:
    model = _model(seed=2).train()
    images, labels = _synthetic_batch()

    def loss() -> torch.Tensor:  # the same points every time, so losses are comparable
        criterion = SetCriterion(CLASSES, num_points=2048, generator=torch.Generator().manual_seed(0))
        return criterion(model(images, BAND), labels)["loss"]

    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=5e-3, weight_decay=0.0)
    losses = []
    for _ in range(3):
        value = loss()
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
        losses.append(float(value.detach()))
    with torch.no_grad():
        final = float(loss())
    assert all(math.isfinite(v) for v in losses)
    assert final < 0.85 * losses[0], (losses, final)
    # Only the trainable part moved: the backbone got no gradient.
    assert all(p.grad is None for p in model.backbone.parameters())


def test_segmenter_with_the_head_exports_to_onnx_and_matches_eager(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    from causal_tune_ros.backends.export import export_onnx_graph

    model = _model(seed=4, depth=2).eval()  # 2 blocks: export time grows with the graph
    _spread_queries(model.head)
    path = export_onnx_graph(model, tmp_path / "m2f.onnx", (HEIGHT, WIDTH))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    images = _images(batch=1, seed=7)
    for band in (BAND, torch.tensor([0.05, 0.3])):  # the band stays a run-time input
        (onnx_out,) = session.run(None, {"images": images.numpy(), "band": band.numpy()})
        with torch.no_grad():
            eager = model(images, band).numpy()
        assert onnx_out.shape == (1, CLASSES, HEIGHT // 4, WIDTH // 4)
        assert np.abs(onnx_out - eager).max() < 1e-3


# ---------------------------------------------------------------------------------------------- query linking


def _linked_model(seed: int = 5) -> CausalTuneSegmenter:
    torch.manual_seed(seed)
    backbone = DinoV2("vits14", embed_dim=DIM, depth=2, num_heads=4, img_size=56)
    head = _head(link_queries=True)
    return CausalTuneSegmenter(backbone, head, num_tokens=QUERIES, rank=4, scale_init=0.0)


def test_linked_queries_are_pooled_from_the_tokens_as_described() -> None:
    model = _linked_model()
    head = model.head
    assert not hasattr(head, "query_feat") and not hasattr(head, "query_embed")
    tokens = model.tuner.tokens()  # (L, Q, C)
    per_layer = tokens.detach() @ head.query_transform.weight.detach().T + head.query_transform.bias.detach()
    pooled = torch.cat((per_layer.max(0).values, per_layer.mean(0), per_layer[-1]), dim=-1)
    expected = pooled @ head.query_merge.weight.detach().T + head.query_merge.bias.detach()
    assert torch.allclose(head.linked_queries(tokens).detach(), expected, atol=1e-6)
    assert head.linked_queries(tokens).shape == (QUERIES, HIDDEN)


def test_a_gradient_step_on_the_head_loss_changes_the_tokens() -> None:
    # scale 0: the refinement adds nothing, so the head's query path is the tokens' only gradient path.
    model = _linked_model().train()
    images, labels = _synthetic_batch()
    before = {n: p.detach().clone() for n, p in model.tuner.named_parameters()}
    optimizer = torch.optim.SGD([model.tuner.tokens_a, model.tuner.tokens_b], lr=1.0)
    criterion = SetCriterion(CLASSES, num_points=512, generator=torch.Generator().manual_seed(0))
    criterion(model(images, BAND), labels)["loss"].backward()
    assert model.tuner.tokens_a.grad.abs().sum() > 0 and model.tuner.tokens_b.grad.abs().sum() > 0
    optimizer.step()
    assert not torch.equal(model.tuner.tokens_a.detach(), before["tokens_a"])
    assert not torch.equal(model.tuner.tokens_b.detach(), before["tokens_b"])
    # Without linking the same step leaves them alone (no gradient path from the head at scale 0).
    free = CausalTuneSegmenter(
        DinoV2("vits14", embed_dim=DIM, depth=2, num_heads=4, img_size=56),
        _head(),
        num_tokens=8,
        rank=4,
        scale_init=0.0,
    ).train()
    criterion(free(images, BAND), labels)["loss"].backward()
    assert free.tuner.tokens_a.grad is None or free.tuner.tokens_a.grad.abs().sum() == 0


def test_linked_queries_need_as_many_tokens_as_queries_and_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    backbone = DinoV2("vits14", embed_dim=DIM, depth=2, num_heads=4, img_size=56)
    with pytest.raises(ConfigError, match="num_queries must equal num_tokens"):
        CausalTuneSegmenter(backbone, _head(link_queries=True), num_tokens=QUERIES + 1, rank=4)
    with pytest.raises(ValueError, match="pass tokens="):
        _head(link_queries=True)(
            CausalTuneSegmenter(backbone, _head(), num_tokens=8).features(_images(1), BAND), (14, 28)
        )
    model = _linked_model().eval()
    with torch.no_grad():
        model.tuner.scale.fill_(0.5)
        expected = model(_images(1), BAND)
    loaded = load_checkpoint(save_checkpoint(tmp_path / "linked.safetensors", model, include_backbone=True))
    assert loaded.head.link_queries
    with torch.no_grad():
        assert torch.equal(loaded(_images(1), BAND), expected)
