"""What a training run reports (rank 0 only): the resolved config, ``metrics.csv``, TensorBoard, log lines.

``metrics.csv`` columns: step, epoch, loss, lr, time_s, images_per_s, val_miou, val_pixel_accuracy. On a
resume, rows past the resume point are dropped, so the file reads like one uninterrupted run.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from causal_tune_ros.fileio import atomic_path
from causal_tune_ros.progress import format_duration
from causal_tune_ros.training.config import TrainConfig
from causal_tune_ros.training.run_state import METRICS_FILE, emit
from causal_tune_ros.training.schedule import EtaEstimator

METRICS_FIELDS = ("step", "epoch", "loss", "lr", "time_s", "images_per_s", "val_miou", "val_pixel_accuracy")


@dataclass
class TrainResult:
    """What a training run produced.

    Attributes:
        output_dir: The run folder.
        step: Optimizer steps done.
        final_model: ``model.safetensors`` when the run reached the last iteration, else ``None``.
        last_checkpoint: Newest ``checkpoints/step_*`` folder written (rank 0), or ``None``.
        losses: Per-step training loss (mean over ranks), for this process's steps only.
        lrs: Learning rate used at each of those steps.
        val_miou: Last validation mIoU, or ``None``.
        history: Rows written to ``metrics.csv``.
        data_seconds: Time spent waiting for batches (loading, augmentation, host-to-device).
        compute_seconds: Time in forward, backward and optimizer steps.
    """

    output_dir: Path
    step: int
    final_model: Path | None = None
    last_checkpoint: Path | None = None
    losses: list[float] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    val_miou: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    data_seconds: float = 0.0
    compute_seconds: float = 0.0


class RunLogger:
    """Writes ``config.yaml`` and ``metrics.csv`` (append-safe on resume), TensorBoard scalars, log lines.

    Args:
        output_dir: The run folder (created if missing).
        cfg: The run's configuration (written as ``config.yaml``).
        step: The step the run starts from (0, or the resume point).
    """

    def __init__(self, output_dir: Path, cfg: TrainConfig, step: int) -> None:
        out = output_dir
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False), encoding="utf-8")
        self.csv_path = out / METRICS_FILE
        rows: list[dict[str, str]] = []
        if step > 0 and self.csv_path.is_file():
            # Drop rows past the resume point so the log reads like one uninterrupted run.
            with self.csv_path.open(newline="", encoding="utf-8") as f:
                rows = [row for row in csv.DictReader(f) if int(row.get("step") or 0) <= step]
        # Rewritten beside and renamed (a kill here keeps the old log), then appended to.
        with atomic_path(self.csv_path) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=METRICS_FIELDS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        self.file = self.csv_path.open("a", newline="", encoding="utf-8")
        self.writer = csv.DictWriter(self.file, fieldnames=METRICS_FIELDS, extrasaction="ignore")
        self.tb = None
        if cfg.run.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(log_dir=str(out / "tensorboard"), purge_step=step or None)
            except ImportError:  # tensorboard not installed: silently CSV only
                self.tb = None
        self.t0 = time.perf_counter()
        self.eta = EtaEstimator()

    def log(self, row: dict[str, Any], stop: int, quiet: bool) -> None:
        """Append ``row`` (keys :data:`METRICS_FIELDS`) and, unless ``quiet``, print a log line."""
        formatted = {
            k: ("" if v is None else (f"{v:.6g}" if isinstance(v, float) else v)) for k, v in row.items()
        }
        self.writer.writerow(formatted)
        self.file.flush()
        step = row["step"]
        if self.tb is not None:
            self.tb.add_scalar("train/loss", row["loss"], step)
            self.tb.add_scalar("train/lr", row["lr"], step)
            self.tb.add_scalar("train/images_per_s", row["images_per_s"], step)
            if row["val_miou"] is not None:
                self.tb.add_scalar("val/miou", row["val_miou"], step)
                self.tb.add_scalar("val/pixel_accuracy", row["val_pixel_accuracy"], step)
        if quiet:
            return
        elapsed = time.perf_counter() - self.t0
        left = self.eta.remaining(stop - step)
        line = (
            f"step {step}/{stop} loss {row['loss']:.4f} lr {row['lr']:.3e} "
            f"{row['images_per_s']:.2f} img/s elapsed {format_duration(elapsed)} "
            f"eta {'?' if left is None else format_duration(left)}"
        )
        if row["val_miou"] is not None:
            line += f" val mIoU {100 * row['val_miou']:.2f} aAcc {100 * row['val_pixel_accuracy']:.2f}"
        emit(line)

    def close(self) -> None:
        """Close the CSV file and the TensorBoard writer."""
        self.file.close()
        if self.tb is not None:
            self.tb.close()
