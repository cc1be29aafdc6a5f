"""Training configuration: shipped files load, paper settings are what the paper says, errors name the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from causal_tune_ros.band import Band
from causal_tune_ros.errors import ConfigError
from causal_tune_ros.training.config import (
    TrainConfig,
    apply_overrides,
    config_from_dict,
    load_train_config,
)

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config" / "train"


def _write(tmp_path: Path, doc: dict) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["cityscapes_to_acdc.yaml", "gtav_to_cbm.yaml"])
def test_paper_configs_hold_the_paper_settings(name: str) -> None:
    cfg = load_train_config(CONFIG_DIR / name)
    assert Path(cfg.model.backbone.weights).name == "dinov2_vitl14_pretrain.pth"
    assert cfg.augment.crop_size == [512, 512]
    assert cfg.optim.batch_size == 4
    assert (cfg.optim.lr, cfg.optim.weight_decay, cfg.optim.poly_power) == (1e-4, 0.05, 0.9)
    assert cfg.optim.iterations == 40000
    assert cfg.band == Band(0.2, 0.7)
    assert (cfg.model.tuner.num_tokens, cfg.model.tuner.rank) == (100, 16)
    assert cfg.eval.sliding_window and cfg.eval.window == [512, 512] and cfg.eval.stride == [341, 341]
    assert cfg.eval.sets, "each paper config lists its evaluation sets"
    assert cfg.model.head.type == "mask2former" and cfg.model.head.options["num_queries"] == 100


def test_paper_configs_list_their_target_domains() -> None:
    acdc = load_train_config(CONFIG_DIR / "cityscapes_to_acdc.yaml")
    assert acdc.data.train.name == "cityscapes"
    assert [s.name for s in acdc.eval.sets] == ["acdc"]
    assert acdc.eval.sets[0].options["conditions"] == ["fog", "night", "rain", "snow"]
    cbm = load_train_config(CONFIG_DIR / "gtav_to_cbm.yaml")
    assert cbm.data.train.name == "gtav"
    assert [s.name for s in cbm.eval.sets] == ["cityscapes", "bdd100k", "mapillary"]


def test_small_config_is_a_random_init_backbone_on_synthetic_data() -> None:
    cfg = load_train_config(CONFIG_DIR / "synthetic_small.yaml")
    assert cfg.model.backbone.weights is None
    assert cfg.data.train.name == "synthetic" and cfg.data.val is not None
    assert cfg.run.device == "cpu" or cfg.run.device == "auto"


def test_round_trip_through_a_plain_mapping() -> None:
    cfg = load_train_config(CONFIG_DIR / "gtav_to_cbm.yaml")
    again = config_from_dict(yaml.safe_load(yaml.safe_dump(cfg.to_dict())))
    assert again == cfg


def test_defaults_are_valid() -> None:
    assert config_from_dict({}) == TrainConfig()


@pytest.mark.parametrize(
    ("doc", "key"),
    [
        ({"optim": {"lrr": 1e-3}}, "optim.lrr"),
        ({"optimizer": {}}, "optimizer"),
        ({"optim": {"lr": "fast"}}, "optim.lr"),
        ({"optim": {"lr": -1.0}}, "optim.lr"),
        ({"optim": {"iterations": 2.5}}, "optim.iterations"),
        ({"optim": {"batch_size": 6, "grad_accum": 4}}, "optim.batch_size"),
        ({"run": {"amp": "fp8"}}, "run.amp"),
        ({"run": {"tensorboard": "yes"}}, "run.tensorboard"),
        ({"model": {"tuner": {"rank": 0}}}, "model.tuner.rank"),
        ({"model": {"band": [0.7, 0.2]}}, "model.band"),
        ({"model": {"backbone": {"overides": {}}}}, "model.backbone.overides"),
        ({"augment": {"crop_size": [512]}}, "augment.crop_size"),
        ({"data": {"train": {"root": "x"}}}, "data.train.name"),
        ({"data": {"val": "cityscapes"}}, "data.val"),
        ({"eval": {"stride": [600, 600]}}, "eval.stride"),
        ({"eval": {"bands": [[0.2, 0.7], [0.5, 0.1]]}}, "eval.bands[1]"),
        (
            {"eval": {"sets": [{"name": "acdc"}, {"name": "bdd100k", "input_size": [0, 5]}]}},
            "eval.sets[1].input_size",
        ),
    ],
)
def test_errors_name_the_bad_key(tmp_path: Path, doc: dict, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_train_config(_write(tmp_path, doc))
    assert f"{key}:" in str(info.value)


def test_dataset_extra_keys_become_reader_options() -> None:
    cfg = config_from_dict({"data": {"train": {"name": "synthetic", "num_samples": 7, "height": 56}}})
    assert cfg.data.train.options == {"num_samples": 7, "height": 56}
    assert cfg.data.train.split == "train" and cfg.data.train.root is None


def test_overrides_parse_yaml_values_and_create_sections(tmp_path: Path) -> None:
    path = _write(tmp_path, {"optim": {"lr": 1e-3}})
    cfg = load_train_config(
        path,
        ["optim.lr=2e-4", "model.tuner.layers=[0, 2]", "run.output_dir=runs/x", "eval.input_size=[56,112]"],
    )
    assert cfg.optim.lr == pytest.approx(2e-4)
    assert cfg.model.tuner.layers == [0, 2]
    assert cfg.run.output_dir == "runs/x"
    assert cfg.eval.input_size == [56, 112]


def test_bad_overrides_are_explained(tmp_path: Path) -> None:
    path = _write(tmp_path, {})
    with pytest.raises(ConfigError, match=r"optim\.lr"):
        load_train_config(path, ["optim.lr"])
    with pytest.raises(ConfigError, match=r"optim\.lrr"):
        load_train_config(path, ["optim.lrr=1"])
    raw = {"optim": {"lr": 1.0}}
    with pytest.raises(ConfigError, match=r"optim\.lr: is not a section"):
        apply_overrides(raw, ["optim.lr.x=1"])


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_train_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: [1, 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_train_config(bad)
    top = tmp_path / "list.yaml"
    top.write_text("- 1\n- 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_train_config(top)


def test_bare_yaml_off_means_off(tmp_path: Path) -> None:
    path = tmp_path / "amp.yaml"
    path.write_text("run:\n  amp: off\n", encoding="utf-8")  # YAML 1.1 reads this as false
    assert load_train_config(path).run.amp == "off"
