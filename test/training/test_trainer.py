"""Training loop on real synthetic scenes with a tiny random ViT: it learns, resumes exactly, and touches
only the trainable parameters."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from causal_tune_ros import cli
from causal_tune_ros.errors import CheckpointError, ConfigError
from causal_tune_ros.model.checkpoint import load_checkpoint, read_checkpoint_metadata
from causal_tune_ros.training.augment import AugmentParams, augment, padded_size
from causal_tune_ros.training.config import TrainConfig, config_from_dict
from causal_tune_ros.training.evaluate import evaluate
from causal_tune_ros.training.trainer import (
    LATEST_FILE,
    MODEL_FILE,
    STATE_FILE,
    PolyWarmup,
    Trainer,
    TrainResult,
    resolve_resume,
    trainable_state,
)

from .training_support import H, W, synthetic_train, tiny_model

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_doc(out: Path, **sections: dict[str, Any]) -> dict[str, Any]:
    """A tiny, fast, deterministic training config (sections are merged over the defaults)."""
    doc: dict[str, Any] = {
        "model": tiny_model(),
        "data": {
            "train": synthetic_train(24),
            "val": {
                "name": "synthetic",
                "split": "val",
                "num_samples": 8,
                "conditions": ["clear"],
                "height": H,
                "width": W,
            },
            "cache": True,
        },
        "augment": {"crop_size": [H, W], "scale_range": [0.8, 1.25]},
        "optim": {"lr": 1e-2, "batch_size": 4, "iterations": 30, "weight_decay": 0.0},
        "run": {
            "output_dir": str(out),
            "log_every": 10,
            "val_every": 0,
            "checkpoint_every": 0,
            "device": "cpu",
            "progress": "log",
            "seed": 0,
        },
    }
    for name, values in sections.items():
        doc[name] = {**doc.get(name, {}), **values}
    return doc


def tiny_config(out: Path, **sections: dict[str, Any]) -> TrainConfig:
    return config_from_dict(tiny_doc(out, **sections))


class Trained:
    """One training run shared by several tests (the expensive part)."""

    def __init__(self, out: Path) -> None:
        self.trainer = Trainer(tiny_config(out), quiet=True)
        t = self.trainer
        self.backbone_before = {k: v.clone() for k, v in t.model.backbone.state_dict().items()}
        self.trainable_before = trainable_state(t.model)
        self.miou_before = evaluate(t.model, t.val_set, t.band, class_names=t.classes.names).miou()
        self.result: TrainResult = t.train()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    return Trained(tmp_path_factory.mktemp("train") / "run")


def test_training_reduces_loss_and_raises_val_miou(trained: Trained) -> None:
    r = trained.result
    assert r.step == 30 and len(r.losses) == 30
    first, last = np.mean(r.losses[:5]), np.mean(r.losses[-5:])
    assert last < first - 0.3, f"loss {first:.3f} -> {last:.3f}"
    assert r.val_miou is not None
    # Seeds fixed: measured 0.011 -> 0.087 (loss 2.68 -> 1.78) here; the margins leave room for float
    # differences across CPUs and thread counts.
    assert r.val_miou > trained.miou_before + 0.03, f"val mIoU {trained.miou_before:.3f} -> {r.val_miou:.3f}"


def test_only_the_trainable_parameters_change(trained: Trained) -> None:
    model = trained.trainer.model
    for name, tensor in model.backbone.state_dict().items():
        assert torch.equal(tensor, trained.backbone_before[name]), f"backbone tensor {name} changed"
    assert not any(p.requires_grad for p in model.backbone.parameters())
    after = trainable_state(model)
    for name in (
        "tuner.tokens_a",
        "tuner.tokens_b",
        "tuner.mlp_token.weight",
        "tuner.mlp_out.weight",
        "tuner.scale",
    ):
        assert not torch.equal(after[name], trained.trainable_before[name]), f"{name} did not train"
    assert not torch.equal(
        after["head.classifier.weight"], trained.trainable_before["head.classifier.weight"]
    )
    # The optimizer holds exactly the trainable parameters.
    in_optimizer = {id(p) for g in trained.trainer.optimizer.param_groups for p in g["params"]}
    assert in_optimizer == {id(p) for p in model.trainable_parameters()}


def test_run_folder_holds_model_checkpoint_and_metrics(trained: Trained) -> None:
    out = trained.result.output_dir
    final = out / MODEL_FILE
    assert trained.result.final_model == final and final.is_file()
    meta = read_checkpoint_metadata(final)
    assert meta["train_band"] == [0.2, 0.7]
    assert meta["backbone"]["embedded"] is True  # random-init backbone travels with the checkpoint
    assert meta["user"]["step"] == 30
    assert meta["user"]["input_size"] == [H, W]  # deployments (node, replay) default to this size
    # The saved model is the trained one: same logits.
    loaded = load_checkpoint(final)
    images = torch.rand(1, 3, H, W)
    band = torch.tensor([0.2, 0.7])
    model = trained.trainer.model.eval()
    with torch.no_grad():
        assert torch.allclose(loaded(images, band), model(images, band), atol=1e-5)
    # A training checkpoint for the last step, pointed at by LATEST.
    assert resolve_resume(out) == out / "checkpoints" / "step_0000030"
    assert (out / "checkpoints" / "step_0000030" / STATE_FILE).is_file()
    with (out / "metrics.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [10, 20, 30]
    assert rows[-1]["val_miou"] and float(rows[-1]["val_miou"]) == pytest.approx(
        trained.result.val_miou, abs=1e-5
    )
    assert all(float(r["loss"]) > 0 and float(r["lr"]) > 0 for r in rows)
    assert yaml.safe_load((out / "config.yaml").read_text())["optim"]["iterations"] == 30


def test_resume_continues_the_same_schedule(tmp_path: Path) -> None:
    sections = {
        "data": {
            "train": synthetic_train(12),
            "val": None,
            "cache": True,
        },
        # Micro-batch 2, two micro-batches per step, warmup: the schedule has state worth checking.
        "optim": {"lr": 5e-3, "batch_size": 4, "grad_accum": 2, "iterations": 12, "warmup_iters": 3},
        "run": {"checkpoint_every": 5, "log_every": 5, "device": "cpu", "progress": "log"},
    }
    full = Trainer(tiny_config(tmp_path / "full", **sections), quiet=True).train()
    first = Trainer(tiny_config(tmp_path / "split", **sections), quiet=True)
    interrupted = first.train(max_steps=7)  # checkpoints at step 5, then "crashes" at step 7
    assert interrupted.step == 7 and interrupted.final_model is None

    resumed_trainer = Trainer(
        tiny_config(tmp_path / "split", **sections), resume=tmp_path / "split", quiet=True
    )
    assert resumed_trainer.step == 5
    assert resumed_trainer.optimizer.param_groups[0]["lr"] == pytest.approx(full.lrs[5], rel=1e-12)
    resumed = resumed_trainer.train()
    assert resumed.step == 12
    assert resumed.lrs == pytest.approx(full.lrs[5:], rel=1e-12)
    # Same batches, augmentation, dropout and optimizer state: the same loss trajectory.
    assert resumed.losses == pytest.approx(full.losses[5:], rel=1e-6, abs=1e-7)
    final_full = trainable_state(load_checkpoint(full.final_model))
    final_resumed = trainable_state(load_checkpoint(resumed.final_model))
    for name, tensor in final_full.items():
        assert torch.allclose(tensor.float(), final_resumed[name].float(), atol=1e-6), name
    with (tmp_path / "split" / "metrics.csv").open(newline="") as f:
        steps = [int(r["step"]) for r in csv.DictReader(f)]
    assert steps == [5, 10, 12], "rows past the resume point are replaced, not duplicated"


def test_resume_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no training checkpoint"):
        resolve_resume(tmp_path)
    ckpt = tmp_path / "checkpoints"
    ckpt.mkdir()
    (ckpt / "LATEST").write_text("step_0000009\n")
    with pytest.raises(CheckpointError, match="step_0000009"):
        resolve_resume(tmp_path)


def test_resume_refuses_a_different_model(trained: Trained, tmp_path: Path) -> None:
    doc = tiny_doc(tmp_path / "other")
    doc["model"]["tuner"]["rank"] = 2
    with pytest.raises(CheckpointError, match="model section differs"):
        Trainer(config_from_dict(doc), resume=trained.result.output_dir, quiet=True)


def test_poly_schedule_with_warmup() -> None:
    f = PolyWarmup(total=100, power=0.9, warmup=10, warmup_ratio=0.1, min_ratio=0.0)
    assert f(0) == pytest.approx(0.1)
    assert f(5) == pytest.approx((1 - 0.5 * 0.9) * (1 - 0.05) ** 0.9)
    assert f(10) == pytest.approx(0.9**0.9)
    assert f(50) == pytest.approx(0.5**0.9)
    assert f(100) == 0.0
    floor = PolyWarmup(total=100, power=1.0, warmup=0, warmup_ratio=1.0, min_ratio=0.01)
    assert floor(100) == pytest.approx(0.01) and floor(0) == pytest.approx(1.0)


def test_augmentation_is_deterministic_and_keeps_labels_honest() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (70, 150, 3), dtype=np.uint8)
    labels = np.zeros((70, 150), np.uint8)
    labels[:, 75:] = 1  # left half class 0, right half class 1
    labels[:5] = 255
    params = AugmentParams(crop_size=(56, 112), scale_range=(0.5, 2.0), hflip_prob=0.5)
    a = augment(image, labels, params, np.random.default_rng([3, 1, 7]))
    b = augment(image, labels, params, np.random.default_rng([3, 1, 7]))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    outputs = [augment(image, labels, params, np.random.default_rng(s)) for s in range(12)]
    for img, lab in outputs:
        assert img.shape == (56, 112, 3) and img.dtype == np.uint8 and lab.shape == (56, 112)
        assert set(np.unique(lab)) <= {0, 1, 255}  # nearest-neighbour labels: no invented ids
    assert len({o[0].tobytes() for o in outputs}) == 12
    # Flips move image and labels together: with photometric and scale off, a flipped crop of a
    # half/half image still has class 1 where the image came from the right half.
    plain = AugmentParams(crop_size=(70, 150), scale_range=(1.0, 1.0), hflip_prob=1.0, photometric=False)
    img, lab = augment(image, labels, plain, np.random.default_rng(0))
    assert np.array_equal(img, image[:, ::-1]) and np.array_equal(lab, labels[:, ::-1])
    assert padded_size((512, 512)) == (518, 518)


def test_trainer_checks_the_batch_split(tmp_path: Path) -> None:
    from causal_tune_ros.training.distributed import DistInfo

    cfg = tiny_config(tmp_path / "x", optim={"batch_size": 2, "grad_accum": 1})
    with pytest.raises(ConfigError, match=r"multiple of processes x grad_accum \(4 x 1\)"):
        Trainer(cfg, dist_info=DistInfo(rank=0, world_size=4, backend="gloo"), quiet=True)


def test_cli_train_reports_bad_config_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(tiny_doc(tmp_path / "run")), encoding="utf-8")
    assert cli.main(["train", "--config", str(path), "--set", "optim.lrr=1", "--quiet"]) == 2
    assert "optim.lrr: unknown key" in capsys.readouterr().err
    assert cli.main(["train", "--config", str(path), "--set", "data.train.name=nowhere", "--quiet"]) == 2
    assert "data.train" in capsys.readouterr().err


def test_mask2former_head_trains_with_the_set_criterion(tmp_path: Path) -> None:
    doc = tiny_doc(
        tmp_path / "m2f", optim={"lr": 1e-3, "batch_size": 2, "iterations": 3, "weight_decay": 0.0}
    )
    doc["model"]["head"] = {
        "type": "mask2former",
        "options": {
            "num_queries": 20,
            "hidden_dim": 16,
            "num_decoder_layers": 2,
            "num_heads": 2,
            "dim_feedforward": 32,
        },
        "loss_options": {"num_points": 256},
    }
    doc["data"]["train"]["num_samples"] = 4
    doc["data"]["val"]["num_samples"] = 2
    trainer = Trainer(config_from_dict(doc), quiet=True)
    before = trainable_state(trainer.model)
    result = trainer.train()
    assert result.step == 3 and all(np.isfinite(result.losses))
    assert result.val_miou is not None and 0.0 <= result.val_miou <= 1.0  # eval mode: semantic scores
    after = trainable_state(trainer.model)
    assert not torch.equal(after["head.query_feat.weight"], before["head.query_feat.weight"])
    assert not torch.equal(after["tuner.tokens_b"], before["tuner.tokens_b"])
    assert read_checkpoint_metadata(result.final_model)["segmenter"]["head"]["type"] == "Mask2FormerHead"


def test_head_errors_name_the_key(tmp_path: Path) -> None:
    doc = tiny_doc(tmp_path / "bad")
    doc["model"]["head"] = {"type": "segformer"}
    with pytest.raises(ConfigError, match=r"model\.head: unknown head type 'segformer'"):
        Trainer(config_from_dict(doc), quiet=True)
    doc["model"]["head"] = {"type": "light", "loss_options": {"num_points": 5}}
    with pytest.raises(ConfigError, match=r"model\.head\.loss_options"):
        Trainer(config_from_dict(doc), quiet=True)


# ---------------------------------------------------------------------------------------------- run folders


def _previous_run(out: Path) -> dict[Path, bytes]:
    """A folder holding an earlier run's outputs, plus a file of the user's; returns every file's bytes."""
    step = out / "checkpoints" / "step_0000099"
    step.mkdir(parents=True)
    files = {
        out / "metrics.csv": b"step,epoch,loss\n10,0,1.5\n",
        out / MODEL_FILE: b"the only copy of last week's model",
        step / STATE_FILE: b"state",
        step / MODEL_FILE: b"model",
        out / "checkpoints" / LATEST_FILE: b"step_0000099\n",
        out / "notes.txt": b"not ours",
    }
    for path, data in files.items():
        path.write_bytes(data)
    return files


def test_a_new_run_never_replaces_another_runs_outputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    files = _previous_run(out)
    with pytest.raises(
        ConfigError, match=r"already holds a run \(metrics\.csv, model\.safetensors, checkpoints\)"
    ):
        Trainer(tiny_config(out), quiet=True)
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump(tiny_doc(out)), encoding="utf-8")
    assert cli.main(["train", "--config", str(config), "--quiet"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert cli.main(["train", "--config", str(config), "--resume", str(out), "--overwrite", "--quiet"]) == 2
    assert "exclude each other" in capsys.readouterr().err
    # Resuming another folder's checkpoint into this one would mix two runs: refused too.
    other = tmp_path / "other"
    _previous_run(other)
    with pytest.raises(ConfigError, match="continues a checkpoint of another folder"):
        Trainer(tiny_config(out), resume=other, quiet=True)
    assert {path: path.read_bytes() for path in files} == files


def test_overwrite_replaces_only_the_previous_runs_outputs(tmp_path: Path) -> None:
    out = tmp_path / "run"
    files = _previous_run(out)
    sections = {
        "data": {"train": synthetic_train(4), "val": None},
        "optim": {"iterations": 2},
        "run": {"log_every": 1, "checkpoint_every": 2},
    }
    result = Trainer(tiny_config(out, **sections), quiet=True, overwrite=True).train()
    assert (
        result.final_model == out / MODEL_FILE
        and read_checkpoint_metadata(out / MODEL_FILE)["user"]["step"] == 2
    )
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [LATEST_FILE, "step_0000002"]
    with (out / "metrics.csv").open(newline="") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [1, 2]
    assert (out / "notes.txt").read_bytes() == files[out / "notes.txt"]  # not a run output: kept


def test_latest_naming_a_missing_step_falls_back_to_the_newest_complete_one(tmp_path: Path) -> None:
    ckpt = tmp_path / "checkpoints"
    for step, complete in ((5, True), (10, True), (20, False)):
        folder = ckpt / f"step_{step:07d}"
        folder.mkdir(parents=True)
        (folder / STATE_FILE).write_bytes(b"state")
        if complete:
            (folder / MODEL_FILE).write_bytes(b"model")
    (ckpt / ".step_0000030.tmp").mkdir()  # a save that a kill interrupted
    for latest in ("step_0000030", "step_0000020", "../../elsewhere"):  # removed, incomplete, hostile
        (ckpt / LATEST_FILE).write_text(latest + "\n")
        assert resolve_resume(tmp_path) == ckpt / "step_0000010"
    (ckpt / LATEST_FILE).write_text("step_0000005\n")
    assert resolve_resume(tmp_path) == ckpt / "step_0000005"  # a complete folder it names is honoured
    (ckpt / LATEST_FILE).unlink()  # killed between the folder's rename and LATEST's
    assert resolve_resume(tmp_path) == ckpt / "step_0000010"


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to name what an fd refers to")
def test_checkpoint_is_on_disk_before_it_is_renamed_into_place(
    trained: Trained, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[tuple[str, str]] = []
    real_fsync, real_rename = os.fsync, os.rename

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def rename(src: str, dst: str) -> None:
        events.append(("rename", f"{src} -> {dst}"))
        real_rename(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "rename", rename)
    final = trained.trainer.save_checkpoint()
    assert final is not None and (final / STATE_FILE).is_file() and (final / MODEL_FILE).is_file()
    tmp = final.with_name(f".{final.name}.tmp")
    publish = events.index(("rename", f"{tmp} -> {final}"))
    synced = [path for kind, path in events[:publish] if kind == "fsync"]
    assert str(tmp / STATE_FILE) in synced and str(tmp) in synced
    assert any(Path(path).name.startswith(f".{MODEL_FILE}.") for path in synced)  # before its own rename
    assert ("fsync", str(final.parent)) in events[publish:]
