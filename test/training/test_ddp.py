"""Two-process ``torchrun`` runs on the CPU (gloo): DDP training writes one checkpoint equal to every rank's
weights; sharded evaluation with all-reduced confusion matrices equals a single-process evaluation."""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from causal_tune_ros import cli

from .training_support import H, W, synthetic_train, tiny_model


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _torchrun(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}",
        "-m",
        "causal_tune_ros.cli",
        *args,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=240)


def _config(out: Path) -> dict:
    return {
        "model": tiny_model(),  # the head uses BatchNorm: its statistics must agree across ranks too
        "data": {
            "train": synthetic_train(12),
            # 5 samples over 2 ranks: an uneven shard, still every sample counted once.
            "val": {"name": "synthetic", "split": "val", "num_samples": 5, "height": H, "width": W},
            "cache": True,
        },
        "augment": {"crop_size": [H, W]},
        "optim": {"lr": 5e-3, "batch_size": 4, "iterations": 4},
        "run": {
            "output_dir": str(out),
            "log_every": 2,
            "checkpoint_every": 0,
            "device": "cpu",
            "dump_rank_state": True,
        },
    }


@pytest.mark.timeout(300)
def test_torchrun_two_processes_train_and_evaluate(tmp_path: Path) -> None:
    out = tmp_path / "run"
    cfg = tmp_path / "ddp.yaml"
    cfg.write_text(yaml.safe_dump(_config(out)), encoding="utf-8")
    proc = _torchrun(["train", "--config", str(cfg), "--quiet"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    # Rank 0 alone wrote: one training checkpoint, one final model, one metrics log.
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["LATEST", "step_0000004"]
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.safetensors")) == [
        "checkpoints/step_0000004/model.safetensors",
        "model.safetensors",
    ]
    with (out / "metrics.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [2, 4]
    assert rows[-1]["val_miou"] != ""

    # The checkpoint holds exactly what each rank holds at the end (DDP keeps ranks in step; the head's
    # BatchNorm statistics are averaged over ranks before saving).
    saved = load_file(str(out / "model.safetensors"))
    ranks = [torch.load(out / "rank_state" / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert set(ranks[0]) == {k for k in saved if not k.startswith("backbone.")}
    for name, tensor in ranks[0].items():
        assert torch.equal(tensor, saved[name]), name
        assert torch.equal(tensor, ranks[1][name]), f"ranks differ in {name}"
    step_state = load_file(str(out / "checkpoints" / "step_0000004" / "model.safetensors"))
    assert all(torch.equal(step_state[k], saved[k]) for k in saved)

    # Sharded evaluation (2 processes, all-reduced matrices) == one process.
    eval_args = [
        "eval",
        "--checkpoint",
        str(out / "model.safetensors"),
        "--data",
        "synthetic::val",
        "--data-option",
        "num_samples=5",
        "--data-option",
        f"height={H}",
        "--data-option",
        f"width={W}",
        "--band",
        "0.2,0.7",
        "--no-band-pass",
        "--quiet",
    ]
    proc = _torchrun([*eval_args, "-o", str(tmp_path / "eval2")], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert cli.main([*eval_args, "-o", str(tmp_path / "eval1")]) == 0
    two = (tmp_path / "eval2" / "synthetic_val.csv").read_text()
    one = (tmp_path / "eval1" / "synthetic_val.csv").read_text()
    assert two == one
    assert len(one.strip().splitlines()) == 1 + 2 * 7  # header + 2 bands x (5 conditions + mean + all)
