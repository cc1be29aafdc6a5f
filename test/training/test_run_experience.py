"""What a user sees while training and evaluating: an ETA that is right from the start, the batch split
over GPUs explained, and a synthetic evaluation at the checkpoint's own size."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from causal_tune_ros import cli
from causal_tune_ros.errors import ConfigError
from causal_tune_ros.model.checkpoint import save_checkpoint
from causal_tune_ros.training.config import OptimConfig, config_from_dict, micro_batch_size
from causal_tune_ros.training.trainer import CachedDataset, EtaEstimator, Trainer, build_model

from .training_support import H, W, synthetic_train, tiny_model

pytestmark = pytest.mark.usefixtures("one_thread")


def test_eta_leaves_out_the_first_step_and_follows_the_current_speed() -> None:
    eta = EtaEstimator(smoothing=0.5)
    assert eta.remaining(100) is None
    eta.tick(now=30.0)  # the first step took 30 s (warm-up): not a speed
    assert eta.remaining(100) is None
    for k in range(1, 6):
        eta.tick(now=30.0 + k)  # then 1 s per step
    assert eta.remaining(100) == pytest.approx(100.0)
    for k in range(1, 40):
        eta.tick(now=35.0 + 2 * k)  # the machine gets slower: 2 s per step
    assert eta.remaining(10) == pytest.approx(20.0, rel=1e-6)
    assert eta.remaining(-3) == 0.0
    with pytest.raises(ValueError, match="smoothing"):
        EtaEstimator(smoothing=0.0)


def test_micro_batch_is_the_total_batch_split_over_processes() -> None:
    optim = OptimConfig(batch_size=4, grad_accum=1)
    assert [micro_batch_size(optim, n) for n in (1, 2, 4)] == [4, 2, 1]
    with pytest.raises(ConfigError, match=r"use 1, 2, 4 process\(es\), or --set optim.batch_size=8"):
        micro_batch_size(optim, 8)
    with pytest.raises(ConfigError, match="use 1, 2 process"):
        micro_batch_size(OptimConfig(batch_size=4, grad_accum=2), 4)
    with pytest.raises(ConfigError, match=">= 1"):
        micro_batch_size(optim, 0)


class _RecordingCache(CachedDataset):
    """A cache that remembers which items the training loop asked for."""

    def __init__(self, base: Any) -> None:
        super().__init__(base)
        self.requested: list[int] = []

    def __getitem__(self, index: int) -> Any:
        self.requested.append(int(index))
        return super().__getitem__(index)


def test_cached_items_are_loaded_before_the_first_step(tmp_path: Path) -> None:
    """The step loop never renders: the first epoch runs at the speed of the rest (so does the ETA)."""
    cfg = config_from_dict(
        {
            "model": tiny_model(),
            "data": {"train": synthetic_train(24), "val": None, "cache": True},
            "augment": {"crop_size": [H, W]},
            # micro-batch 2 x 2 accumulated; 12 micro-batches per epoch
            "optim": {"lr": 1e-3, "batch_size": 4, "grad_accum": 2, "iterations": 40},
            "run": {"output_dir": str(tmp_path), "device": "cpu", "checkpoint_every": 0, "val_every": 0},
        }
    )
    trainer = Trainer(cfg, quiet=True)
    cache = _RecordingCache(trainer.train_samples.base.base)
    trainer.train_samples.base = cache
    trainer.step = 4  # where a resume would continue: mid-epoch, and steps 5..8 run into the next epoch
    trainer.train(max_steps=8)
    assert cache.misses == 0, "an item was rendered inside the step loop"
    assert len(cache.requested) == 4 * 4
    # Exactly the items the steps used were rendered, no more.
    assert sorted(cache.missing(range(24))) == sorted(set(range(24)) - set(cache.requested))


def test_synthetic_eval_renders_at_the_checkpoint_input_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from causal_tune_ros.classes import load_classes

    names = load_classes().names
    model = build_model(config_from_dict({"model": tiny_model()}).model, len(names), seed=0).eval()
    ckpt = save_checkpoint(
        tmp_path / "m.safetensors",
        model,
        metadata={"input_size": [H, W]},
        include_backbone=True,
        class_names=names,
    )
    out = tmp_path / "eval"
    args = ["eval", "--checkpoint", str(ckpt), "--data", "synthetic::val", "--max-samples", "2"]
    args += ["-o", str(out)]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    # 100 images by default (20 scenes x 5 conditions), rendered at the recorded 56 x 112.
    assert f"synthetic::val: 2 images at {H}x{W} x 1 band setting(s)" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["datasets"]
    # An explicit size still wins.
    args_sized = [*args, "--data-option", "height=42", "--data-option", "width=84"]
    assert cli.main(args_sized) == 0
    assert "2 images at 42x84" in capsys.readouterr().out
    from causal_tune_ros.training.datasets import SyntheticDataset

    assert len(SyntheticDataset()) == 100
