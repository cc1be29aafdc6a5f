"""``causal-tune pretrain``: a few steps on tiny settings write a backbone the package loads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from causal_tune_ros import cli
from causal_tune_ros.errors import ConfigError
from causal_tune_ros.model.dinov2 import DinoV2
from causal_tune_ros.pretrain.config import load_pretrain_config
from causal_tune_ros.pretrain.data import geometry_targets, pretrain_scene_seed, render_pretrain_scenes
from causal_tune_ros.pretrain.trainer import PRETRAIN_METADATA_KEY
from causal_tune_ros.resources import data_path
from causal_tune_ros.training.datasets.synthetic import SyntheticDataset

TINY = [
    "data.num_scenes=2",
    "data.height=42",
    "data.width=84",
    "data.crop=[28,56]",
    "optim.steps=3",
    "optim.batch_size=2",
    "optim.warmup_steps=1",
    "backbone.embed_dim=24",
    "backbone.depth=2",
    "backbone.num_heads=2",
    "backbone.img_size=56",
    "log_every=1",
]


def _pretrain(tmp_path: Path, *extra: str) -> tuple[int, Path]:
    out = tmp_path / "pocket.safetensors"
    args = ["pretrain", "--config", str(data_path("config", "pretrain", "pocket.yaml")), "-o", str(out)]
    for item in [*TINY, *extra]:
        args += ["--set", item]
    return cli.main(args), out


def test_pretrain_writes_a_backbone_that_loads_and_changed(tmp_path: Path) -> None:
    rc, out = _pretrain(tmp_path)
    assert rc == 0 and out.is_file()
    with safe_open(str(out), framework="pt") as fh:
        dtypes = {fh.get_tensor(k).dtype for k in fh.keys()}  # noqa: SIM118 (not a dict)
        record = json.loads(fh.metadata()[PRETRAIN_METADATA_KEY])
    assert dtypes == {torch.float16}
    assert record["config"]["optim"]["steps"] == 3
    assert set(record["final_losses"]) == {"geometry", "clear_pixels", "consistency"}

    backbone = DinoV2.from_pretrained(out)
    assert (backbone.embed_dim, backbone.depth, backbone.patch_size) == (24, 2, 14)
    tokens = backbone(torch.rand(1, 3, 42, 84))
    assert tokens.shape == (1, 1 + 3 * 6, 24) and torch.isfinite(tokens).all()
    # The weights moved away from the seeded random initialisation they started from.
    torch.manual_seed(0)
    init = DinoV2("custom", **{k: v for k, v in backbone.config.items() if k != "arch"})
    moved = (backbone.blocks[0].attn.qkv.weight - init.blocks[0].attn.qkv.weight.half().float()).abs().max()
    assert moved > 1e-3


def test_pretrain_is_reproducible(tmp_path: Path) -> None:
    rc_a, a = _pretrain(tmp_path / "a")
    rc_b, b = _pretrain(tmp_path / "b")
    assert rc_a == rc_b == 0
    sa, sb = DinoV2.from_pretrained(a).state_dict(), DinoV2.from_pretrained(b).state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_masked_image_modelling_objective_runs(tmp_path: Path) -> None:
    rc, out = _pretrain(
        tmp_path, "objective.masked_pixels=1.0", "objective.mask_ratio=0.5", "objective.clear_pixels=0"
    )
    assert rc == 0
    with safe_open(str(out), framework="pt") as fh:
        record = json.loads(fh.metadata()[PRETRAIN_METADATA_KEY])
    assert set(record["final_losses"]) == {"geometry", "masked_pixels", "consistency"}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.crop=[30,56]", "data.crop"),
        ("objective.masked_pixels=1.0", "mask_ratio"),
        ("backbone.num_heads=5", "num_heads"),
        ("optim.nope=1", "unknown key"),
        ("objective.geometry=0", "collapses"),
    ],
)
def test_bad_config_is_refused(override: str, message: str) -> None:
    overrides = [*TINY, override]
    if override.startswith("objective.geometry"):
        overrides += ["objective.clear_pixels=0"]
    with pytest.raises(ConfigError, match=message):
        load_pretrain_config(data_path("config", "pretrain", "pocket.yaml"), overrides)


def test_pretrain_scenes_are_not_training_or_demo_scenes() -> None:
    seeds = {pretrain_scene_seed(0, i) for i in range(500)}
    for split in ("train", "val", "test"):
        ds = SyntheticDataset(10, "clear", split=split)
        assert not seeds & {ds.scene_seed(i) for i in range(500)}
    assert not seeds & set(range(10_000))  # the demo renders plain seeds from 100


def test_geometry_targets_of_a_flat_ground_and_the_sky() -> None:
    # Camera 1.5 m above a flat ground, looking along it: ground rows below the horizon, sky above.
    h, w, f = 40, 60, 50.0
    K = np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]])
    v = np.arange(h, dtype=np.float64)[:, None] - h / 2
    depth = np.where(v > 0, 1.5 * f / np.maximum(v, 1e-9), 1000.0) * np.ones((1, w))
    t = geometry_targets(depth.astype(np.float32), K)
    assert t.shape == (4, h, w)
    ground = t[1:, h // 2 + 3 : -2, 2:-2].reshape(3, -1)
    # The ground's normal points up (-y in the camera frame), whatever the depth.
    assert np.allclose(ground, np.array([[0.0], [-1.0], [0.0]]), atol=1e-3)
    assert np.all(t[1:, : h // 2] == 0)  # the sky has no normal
    assert np.isclose(t[0, 0, 0], np.log(200.0))  # and saturated depth


def test_render_pretrain_scenes_pairs_views_of_one_geometry() -> None:
    scenes = render_pretrain_scenes(1, 28, 56, seed=3)
    assert scenes.images.shape == (1, 5, 28, 56, 3) and scenes.conditions[0] == "clear"
    assert not np.array_equal(scenes.images[0, 0], scenes.images[0, 4])  # night differs from clear
    assert scenes.targets.dtype == np.float16 and np.isfinite(scenes.targets).all()
