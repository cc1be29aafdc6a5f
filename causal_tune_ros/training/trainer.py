"""The Causal-Tune training loop: single process (CPU or GPU) or ``torchrun`` + DistributedDataParallel.

Only the tokens, their projections, the scale and the decode head train (``model.trainable_parameters()``);
the DINOv2 backbone is frozen. AdamW, poly schedule with linear warmup, AMP on CUDA, gradient accumulation,
cross-entropy with ignore index 255 on logits upsampled to the label size.

Exact resume: the data order comes from ``DistributedSampler(seed, epoch)``, each sample's augmentation
from a generator seeded by ``(seed, epoch, index)``, and a checkpoint stores the optimizer, scheduler,
grad-scaler, step and every rank's RNG state. Resuming therefore replays the same batches, learning rates
and dropout masks as an uninterrupted run.

The parts live beside this module: :mod:`~causal_tune_ros.training.model_setup` (model, criterion,
optimizer), :mod:`~causal_tune_ros.training.samples` (data and batches),
:mod:`~causal_tune_ros.training.schedule` (learning rate, ETA), :mod:`~causal_tune_ros.training.run_state`
(run folder, checkpoints, resume) and :mod:`~causal_tune_ros.training.run_log` (metrics CSV, TensorBoard,
log lines). Their public names are importable from here too.
"""

from __future__ import annotations

import contextlib
import math
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from causal_tune_ros.band import Band
from causal_tune_ros.classes import IGNORE_ID, ClassSet, load_classes
from causal_tune_ros.errors import CheckpointError, ConfigError
from causal_tune_ros.progress import is_terminal, progress_bar
from causal_tune_ros.training.config import TrainConfig, micro_batch_size
from causal_tune_ros.training.distributed import (
    DistInfo,
    all_gather_object,
    all_reduce_mean,
    average_tensors_,
    barrier,
    broadcast_object,
    cleanup,
    init_distributed,
)
from causal_tune_ros.training.model_setup import (
    batch_loss,
    build_criterion,
    build_model,
    build_optimizer,
    load_trainable_state,
    resolve_amp,
    trainable_state,
)
from causal_tune_ros.training.run_log import METRICS_FIELDS, RunLogger, TrainResult
from causal_tune_ros.training.run_state import (
    LATEST_FILE,
    METRICS_FILE,
    MODEL_FILE,
    RUN_OUTPUTS,
    STATE_FILE,
    STATE_VERSION,
    complete_steps,
    emit,
    read_train_state,
    remove_run_outputs,
    resolve_resume,
    rng_state,
    run_folder_problem,
    run_outputs,
    set_rng_state,
    write_step_folder,
)
from causal_tune_ros.training.samples import (
    CachedDataset,
    EpochSampler,
    TrainBatches,
    TrainingSamples,
    augment_params,
    build_dataset_from_config,
    val_input_size,
)
from causal_tune_ros.training.schedule import EtaEstimator, PolyWarmup


class Trainer:
    """Builds everything a run needs from a :class:`TrainConfig` and runs the loop.

    Args:
        cfg: The validated configuration.
        resume: A checkpoint to continue from (see :func:`resolve_resume`), or ``None``.
        dist_info: Process placement; default: join the ``torchrun`` group if there is one.
        quiet: No progress output (tests).
        overwrite: Start a new run in a folder that holds another run, removing that run's outputs
            (:data:`RUN_OUTPUTS` only) when training starts.

    Raises:
        ConfigError: Inconsistent settings (batch size vs processes, AMP on CPU, ...); an output folder
            holding another run without ``resume`` into it or ``overwrite``.
        CheckpointError: A resume checkpoint that is missing or does not fit the config.
        DatasetError: Missing or malformed data.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        resume: str | Path | None = None,
        dist_info: DistInfo | None = None,
        quiet: bool = False,
        overwrite: bool = False,
    ) -> None:
        self.cfg = cfg
        self.quiet = quiet
        self.owns_dist = dist_info is None
        self.dist = dist_info or init_distributed(cfg.run.device, cfg.ddp.backend)
        self.device = self.dist.device
        self.output_dir = Path(cfg.run.output_dir)
        self.band: Band = cfg.band
        self.classes: ClassSet = load_classes(cfg.data.classes)
        o = cfg.optim
        self.micro_batch = micro_batch_size(o, self.dist.world_size)
        self.amp_dtype = resolve_amp(cfg.run.amp, self.device)
        # Before any expensive work, and rank 0's answer on every rank (no rank waits for one that quit).
        problem: tuple[type[Exception], str] | None = None
        if self.dist.is_main:
            try:
                message = run_folder_problem(self.output_dir, resume, overwrite)
                problem = None if message is None else (ConfigError, message)
            except CheckpointError as exc:  # --resume names nothing usable
                problem = (CheckpointError, str(exc))
        problem = broadcast_object(problem, self.dist)
        if problem is not None:
            if self.owns_dist:
                cleanup(self.dist)
            raise problem[0](problem[1])
        self._clear_previous_run = overwrite and self.dist.is_main

        # Model: the same on every rank (seeded); DDP re-broadcasts rank 0's weights anyway.
        self.model = build_model(cfg.model, len(self.classes), seed=cfg.run.seed).to(self.device)
        if self.model.num_classes != len(self.classes):
            raise ConfigError(f"model has {self.model.num_classes} classes, data.classes {len(self.classes)}")
        self.ddp_model: nn.Module = self.model
        if self.dist.distributed:
            if cfg.ddp.sync_batchnorm and self.device.type == "cuda":
                self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
            self.ddp_model = nn.parallel.DistributedDataParallel(
                self.model,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=cfg.ddp.find_unused_parameters,
            )
        self.optimizer = build_optimizer(self.model, o, self.device)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            PolyWarmup(o.iterations, o.poly_power, o.warmup_iters, o.warmup_ratio, o.min_lr / o.lr),
        )
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype is torch.float16)
        criterion = build_criterion(cfg.model, self.model.num_classes, self.classes.ignore_id)
        self.criterion = None if criterion is None else criterion.to(self.device)

        self.augment_params = augment_params(cfg.augment, self.classes.ignore_id)
        base = build_dataset_from_config(cfg.data.train, "data.train")
        if cfg.data.cache:
            base = CachedDataset(base)
        self.train_samples = TrainingSamples(base, self.augment_params, cfg.run.seed)
        self.data = TrainBatches(
            self.train_samples, self.dist, self.micro_batch, cfg.run.seed, cfg.data.num_workers, self.device
        )
        self.sampler = self.data.sampler
        self.batches_per_epoch = self.data.per_epoch
        self.val_set = build_dataset_from_config(cfg.data.val, "data.val") if cfg.data.val else None
        if self.val_set is not None and cfg.data.cache:
            self.val_set = CachedDataset(self.val_set)

        self.step = 0
        self.resumed_from: Path | None = None
        if resume is not None:
            self._load_state(resolve_resume(resume))
        else:
            # Per-rank streams (dropout) that differ between ranks but are fixed by the seed.
            torch.manual_seed(cfg.run.seed + self.dist.rank)
            np.random.seed((cfg.run.seed + self.dist.rank) % 2**32)
            random.seed(cfg.run.seed + self.dist.rank)

    # ------------------------------------------------------------------ state

    def _checkpoint_metadata(self) -> dict[str, Any]:
        # Band and class names go into the checkpoint's own fields; this is the free-form part.
        return {
            "step": self.step,
            "train_data": self.cfg.data.train.describe(),
            "backbone_weights": self.cfg.model.backbone.weights,
            "train_config": self.cfg.to_dict(),
            # The size deployments should run at unless told otherwise (node, replay, export defaults).
            "input_size": list(val_input_size(self.cfg) or self.cfg.augment.crop_size),
        }

    def _load_state(self, folder: Path) -> None:
        state = read_train_state(folder, self.cfg.to_dict()["model"])
        load_trainable_state(self.model, state["trainable"], folder / STATE_FILE)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        rngs = state["rng"]
        if int(state.get("world_size", 1)) == self.dist.world_size and self.dist.rank < len(rngs):
            set_rng_state(rngs[self.dist.rank])
        else:
            if self.dist.is_main and not self.quiet:
                emit(
                    f"warning: resuming with {self.dist.world_size} processes from a run with "
                    f"{state.get('world_size')}; the data order will differ from an uninterrupted run"
                )
            torch.manual_seed(self.cfg.run.seed + self.dist.rank + self.step)
        self.resumed_from = folder

    def sync_buffers(self) -> None:
        """Average the head's normalisation statistics over ranks, so every rank (and the checkpoint) holds
        the same model. Parameters are identical already (DDP); BN buffers are not without SyncBatchNorm."""
        if self.dist.distributed:
            buffers = [b for name, b in self.model.named_buffers() if not name.startswith("backbone.")]
            average_tensors_(buffers, self.dist)

    def save_checkpoint(self) -> Path | None:
        """Write ``checkpoints/step_NNNNNNN`` (rank 0) with the model and the full training state.

        Every rank must call this (the RNG states are gathered); only rank 0 writes.

        Returns:
            The folder on rank 0, ``None`` elsewhere.
        """
        rngs = all_gather_object(rng_state(), self.dist)
        if not self.dist.is_main:
            return None
        state = {
            "version": STATE_VERSION,
            "step": self.step,
            "world_size": self.dist.world_size,
            "trainable": trainable_state(self.model),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rngs,
            "config": self.cfg.to_dict(),
        }
        return write_step_folder(
            self.output_dir / "checkpoints",
            self.step,
            state,
            self._write_model,
            self.cfg.run.keep_checkpoints,
        )

    def _write_model(self, path: Path) -> None:
        """The model in ``save_checkpoint`` format (written beside, synced, then renamed over ``path``)."""
        from causal_tune_ros.model.checkpoint import save_checkpoint

        save_checkpoint(
            path,
            self.model,
            metadata=self._checkpoint_metadata(),
            include_backbone=self.cfg.model.backbone.weights is None,
            class_names=self.classes.names,
            band=self.band,
        )

    def _remove_previous_run(self) -> None:
        """``overwrite``: delete the outputs of the run this folder held (only :data:`RUN_OUTPUTS`)."""
        found = run_outputs(self.output_dir)
        if found and not self.quiet:
            emit(f"--overwrite: removing the previous run's {', '.join(found)} from {self.output_dir}")
        remove_run_outputs(self.output_dir)
        self._clear_previous_run = False

    # ------------------------------------------------------------------ data

    def _batches(self, start_micro: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Micro-batches from global micro-batch index ``start_micro`` on, epoch after epoch."""
        return self.data.batches(start_micro)

    def _warm_cache(self, stop: int) -> None:
        """Load every cached training item the coming steps use before the first of them.

        With ``data.cache`` the first epoch would otherwise also render or decode each item, so its steps
        would be slower than the rest and the ETA too long at the start.
        """
        grad_accum = self.cfg.optim.grad_accum
        show = self.dist.is_main and not self.quiet
        bar = self._use_bars() if show else False
        self.data.warm_cache(self.step * grad_accum, (stop - self.step) * grad_accum, show=show, bar=bar)

    # ------------------------------------------------------------------ loop

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _loss(self, outputs: torch.Tensor | dict[str, Any], labels: torch.Tensor) -> torch.Tensor:
        return batch_loss(outputs, labels, self.classes.ignore_id, self.criterion)

    def validate(self) -> tuple[float, float] | None:
        """mIoU and pixel accuracy on ``data.val`` (all ranks take part), or ``None`` without a val set."""
        from causal_tune_ros.training.evaluate import evaluate

        if self.val_set is None:
            return None
        e = self.cfg.eval
        amp = {None: "off", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.amp_dtype]
        result = evaluate(
            self.model,
            self.val_set,
            self.band,
            class_names=self.classes.names,
            ignore_index=self.classes.ignore_id,
            sliding_window=e.sliding_window,
            window=tuple(e.window),
            stride=tuple(e.stride),
            input_size=val_input_size(self.cfg),
            batch_size=e.batch_size,
            max_samples=e.max_samples,
            device=self.device,
            amp=amp,
            dist_info=self.dist,
            dataset_name=self.cfg.data.val.name if self.cfg.data.val else "",
        )
        return result.miou(), result.pixel_accuracy()

    def train(self, max_steps: int | None = None) -> TrainResult:
        """Run optimizer steps until ``optim.iterations`` (or ``max_steps``, to simulate an interruption).

        Args:
            max_steps: Stop after this global step even if the schedule is longer (tests, benchmarks).

        Returns:
            A :class:`TrainResult`.
        """
        o, r = self.cfg.optim, self.cfg.run
        stop = o.iterations if max_steps is None else min(o.iterations, max_steps)
        result = TrainResult(output_dir=self.output_dir, step=self.step)
        main = self.dist.is_main
        if self._clear_previous_run:
            self._remove_previous_run()
        logger = RunLogger(self.output_dir, self.cfg, self.step) if main else None
        band = torch.tensor(self.band.as_tuple(), dtype=torch.float32, device=self.device)
        batches = self._batches(self.step * o.grad_accum)
        self.ddp_model.train()
        window_losses: list[float] = []
        t_start = time.perf_counter()
        t_window = t_start
        images_window = 0
        self._warm_cache(stop)
        show = main and not self.quiet and self._use_bars()
        bar = progress_bar(stop, "train", unit="step", initial=self.step, tty=True) if show else None
        try:
            while self.step < stop:
                lr = self.optimizer.param_groups[0]["lr"]
                step_loss = 0.0
                for k in range(o.grad_accum):
                    t0 = time.perf_counter()
                    images, labels = next(batches)
                    t1 = time.perf_counter()
                    sync = k == o.grad_accum - 1 or not self.dist.distributed
                    # Only the last micro-batch of a step all-reduces gradients.
                    ctx = contextlib.nullcontext() if sync else self.ddp_model.no_sync()
                    with ctx:
                        with self._autocast():
                            logits = self.ddp_model(images, band)
                        loss = self._loss(logits, labels) / o.grad_accum
                        self.scaler.scale(loss).backward()
                    step_loss += float(loss.detach())
                    result.data_seconds += t1 - t0
                    result.compute_seconds += time.perf_counter() - t1
                t2 = time.perf_counter()
                if o.grad_clip is not None:
                    self.scaler.unscale_(self.optimizer)
                    torch.nn.utils.clip_grad_norm_(self.model.trainable_parameters(), o.grad_clip)
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.optimizer.zero_grad(set_to_none=True)
                self.scheduler.step()
                self.step += 1
                result.compute_seconds += time.perf_counter() - t2
                # Reduce first so that every rank sees the same value and stops together.
                step_loss = all_reduce_mean(step_loss, self.dist)
                if not math.isfinite(step_loss):
                    raise ConfigError(
                        f"loss became {step_loss} at step {self.step}; lower optim.lr or use amp off"
                    )
                if logger is not None:
                    logger.eta.tick()
                result.losses.append(step_loss)
                result.lrs.append(lr)
                window_losses.append(step_loss)
                images_window += o.batch_size
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{step_loss:.4f}", lr=f"{lr:.2e}", refresh=False)

                last = self.step == stop
                do_val = self.val_set is not None and (
                    (r.val_every and self.step % r.val_every == 0) or self.step == o.iterations
                )
                do_log = self.step % r.log_every == 0 or last or do_val
                do_ckpt = (
                    r.checkpoint_every and self.step % r.checkpoint_every == 0
                ) or self.step == o.iterations
                if do_val or do_ckpt or last:
                    self.sync_buffers()
                val = self.validate() if do_val else None
                if val is not None:
                    result.val_miou = val[0]
                if do_log:
                    now = time.perf_counter()
                    row = {
                        "step": self.step,
                        "epoch": (self.step * o.grad_accum) // self.batches_per_epoch,
                        "loss": sum(window_losses) / len(window_losses),
                        "lr": lr,
                        "time_s": now - t_start,
                        "images_per_s": images_window / max(now - t_window, 1e-9),
                        "val_miou": None if val is None else val[0],
                        "val_pixel_accuracy": None if val is None else val[1],
                    }
                    window_losses, t_window, images_window = [], now, 0
                    result.history.append(row)
                    if logger is not None:
                        logger.log(row, stop, quiet=self.quiet or bar is not None)
                        if bar is not None and val is not None:
                            bar.write(f"step {self.step}: val mIoU {100 * val[0]:.2f}")
                if do_ckpt:
                    result.last_checkpoint = self.save_checkpoint() or result.last_checkpoint
        finally:
            if bar is not None:
                bar.close()
            if logger is not None:
                logger.close()
        result.step = self.step
        if self.step == o.iterations and main:
            result.final_model = self._save_final()
        if r.dump_rank_state:
            dump = self.output_dir / "rank_state"
            dump.mkdir(parents=True, exist_ok=True)
            torch.save(trainable_state(self.model), dump / f"rank{self.dist.rank}.pt")
        barrier(self.dist)
        return result

    def _save_final(self) -> Path:
        path = self.output_dir / MODEL_FILE
        self._write_model(path)  # atomic: written beside, synced, then renamed over the old file
        if not self.quiet:
            emit(f"saved {path}")
        return path

    def _use_bars(self) -> bool:
        """tqdm bars (a terminal, or ``run.progress: bar``) rather than log lines."""
        mode = self.cfg.run.progress
        return not (mode == "log" or (mode == "auto" and not is_terminal(sys.stderr)))

    def close(self) -> None:
        """Leave the process group if this trainer joined it."""
        if self.owns_dist:
            cleanup(self.dist)


def train(
    cfg: TrainConfig, resume: str | Path | None = None, quiet: bool = False, overwrite: bool = False
) -> TrainResult:
    """Train a model as ``causal-tune train`` does (joins ``torchrun``'s group when started by it).

    Args:
        cfg: The configuration.
        resume: Checkpoint to continue from.
        quiet: No progress output.
        overwrite: Replace another run's outputs in ``run.output_dir`` (see :class:`Trainer`).

    Returns:
        The :class:`TrainResult` of this process.

    Raises:
        ConfigError: See :class:`Trainer`.
    """
    trainer = Trainer(cfg, resume=resume, quiet=quiet, overwrite=overwrite)
    try:
        return trainer.train()
    finally:
        trainer.close()


__all__ = [
    "IGNORE_ID",
    "LATEST_FILE",
    "METRICS_FIELDS",
    "METRICS_FILE",
    "MODEL_FILE",
    "RUN_OUTPUTS",
    "STATE_FILE",
    "STATE_VERSION",
    "CachedDataset",
    "EpochSampler",
    "EtaEstimator",
    "PolyWarmup",
    "TrainResult",
    "Trainer",
    "TrainingSamples",
    "build_dataset_from_config",
    "build_model",
    "complete_steps",
    "resolve_resume",
    "run_folder_problem",
    "run_outputs",
    "train",
    "trainable_state",
]
