"""The paper configs reproduce the released recipe: operator, tokens, query linking, head inputs,
augmentation, weight-decay groups, precision; and a CPU smoke run of the paper config trains and evaluates."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from causal_tune_ros import cli
from causal_tune_ros.model.checkpoint import read_checkpoint_metadata
from causal_tune_ros.training.augment import AugmentParams, random_scale
from causal_tune_ros.training.config import load_train_config, weight_decay_groups
from causal_tune_ros.training.trainer import build_model

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config" / "train"
PAPER_CONFIGS = ["cityscapes_to_acdc.yaml", "gtav_to_cbm.yaml"]

#: ``--set`` overrides that shrink the paper config to CPU size (everything else stays the paper's).
TINY = [
    "model.backbone.weights=null",
    "model.backbone.arch=custom",
    "model.backbone.overrides={embed_dim: 16, depth: 4, num_heads: 2}",  # 16 = 4 x 4 channel grid
    "model.tuner.num_tokens=20",
    "model.tuner.rank=4",
    "model.head.options={num_queries: 20, hidden_dim: 16, num_decoder_layers: 2, num_heads: 2, "
    "dim_feedforward: 32, link_queries: true}",
    "model.head.layers=[0, 1, 2, 3]",
    "model.head.loss_options={num_points: 256}",
]


@pytest.mark.parametrize("name", PAPER_CONFIGS)
def test_paper_configs_hold_the_released_recipe(name: str) -> None:
    cfg = load_train_config(CONFIG_DIR / name)
    t, h = cfg.model.tuner, cfg.model.head
    assert (t.operator, t.attention_sink, t.token_init, t.token_init_patch, t.linear_bias_init) == (
        "released",
        True,
        "lora",
        16,
        "default",
    )
    assert h.options["link_queries"] is True and h.layers == [7, 11, 15, 23] and h.final_norm is False
    assert cfg.augment.short_edge == [int(512 * k * 0.1) for k in range(5, 21)]
    assert cfg.augment.max_long_edge == 2048 and cfg.augment.base_size is None
    o = cfg.optim
    assert (o.no_decay_1d, o.no_decay_norms) == (False, True)
    assert set(o.no_decay_keys) >= {"norm", "query_embed", "level_embed", "tuner.scale"}
    assert cfg.run.amp == "off"  # fp32
    assert cfg.eval.window == [512, 512] and cfg.eval.stride == [341, 341]


def test_released_weight_decay_groups() -> None:
    cfg = load_train_config(CONFIG_DIR / "cityscapes_to_acdc.yaml", TINY)
    model = build_model(cfg.model, 19)
    decay, no_decay = weight_decay_groups(model, cfg.optim)
    names = {id(p): n for n, p in model.named_parameters()}
    exempt = {names[id(p)] for p in no_decay}
    decayed = {names[id(p)] for p in decay}
    assert {"tuner.tokens_a", "tuner.tokens_b", "tuner.scale", "head.level_embed.weight"} <= exempt
    assert "head.decoder_norm.weight" in exempt and "head.layers.0.norm_ffn.bias" in exempt
    assert "head.pixel_decoder.lateral.0.1.weight" in exempt  # a GroupNorm without "norm" in its name
    # As released: the token projections (also "mlp_token") and plain biases decay.
    assert {"tuner.mlp_token.weight", "tuner.mlp_token.bias", "head.class_embed.bias"} <= decayed
    assert "head.query_transform.weight" in decayed
    assert len(exempt) + len(decayed) == len(model.trainable_parameters())
    # The default rule (ours): every 1-D parameter and anything named "token" is exempt.
    default = load_train_config(CONFIG_DIR / "synthetic_small.yaml")
    _, default_exempt = weight_decay_groups(model, default.optim)
    assert "tuner.mlp_token.weight" in {names[id(p)] for p in default_exempt}


def test_short_edge_choice_with_a_long_edge_limit() -> None:
    params = AugmentParams(short_edge=(256, 1024), max_long_edge=2048)
    image = np.zeros((1024, 2048, 3), np.uint8)
    labels = np.zeros((1024, 2048), np.uint8)
    sizes = {random_scale(image, labels, params, np.random.default_rng(s))[0].shape[:2] for s in range(20)}
    assert sizes == {(256, 512), (1024, 2048)}
    wide = np.zeros((100, 1000, 3), np.uint8)
    out, lab = random_scale(
        wide,
        np.zeros((100, 1000), np.uint8),
        AugmentParams(short_edge=(1024,), max_long_edge=2048),
        np.random.default_rng(0),
    )
    assert out.shape[:2] == lab.shape == (205, 2048)  # the short edge gives way to the long-edge limit


@pytest.mark.usefixtures("one_thread")
def test_cpu_smoke_run_of_the_paper_config_trains_and_evaluates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    overrides = [
        *TINY,
        "data.train={name: synthetic, split: train, num_samples: 4, conditions: [clear], height: 56, "
        "width: 112}",
        "data.val=null",
        "data.num_workers=0",
        "augment.crop_size=[56, 112]",
        "augment.short_edge=[56, 70]",
        "augment.max_long_edge=224",
        "optim.batch_size=2",
        "optim.iterations=2",
        "run.device=cpu",
        "run.log_every=1",
        "run.checkpoint_every=0",
        "run.tensorboard=false",
        "run.progress=log",
        f"run.output_dir={run}",
        "eval.window=[56, 56]",
        "eval.stride=[42, 42]",
        "eval.input_size=null",
        "eval.sets=[{name: synthetic, split: val, num_samples: 2, height: 56, width: 112, "
        "conditions: [fog, night]}]",
    ]
    args = ["train", "--config", str(CONFIG_DIR / "cityscapes_to_acdc.yaml"), "--quiet"]
    for item in overrides:
        args += ["--set", item]
    assert cli.main(args) == 0, capsys.readouterr().err
    meta = read_checkpoint_metadata(run / "model.safetensors")
    seg = meta["segmenter"]
    assert seg["operator"] == "released" and seg["head"]["link_queries"] and not seg["feature_norm"]
    out = tmp_path / "eval"
    code = cli.main(
        ["eval", "--config", str(run / "config.yaml"), "--checkpoint", str(run), "-o", str(out), "--quiet"]
    )
    assert code == 0, capsys.readouterr().err
    (entries,) = json.loads((out / "summary.json").read_text())["datasets"].values()
    (entry,) = entries
    assert entry["mean"]["miou"] == pytest.approx((entry["fog"]["miou"] + entry["night"]["miou"]) / 2)
    assert torch.isfinite(torch.tensor(entry["all"]["miou"]))
