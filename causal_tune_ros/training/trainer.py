"""The Causal-Tune training loop: single process (CPU or GPU) or ``torchrun`` + DistributedDataParallel.

Only the tokens, their projections, the scale and the decode head train (``model.trainable_parameters()``);
the DINOv2 backbone is frozen. AdamW, poly schedule with linear warmup, AMP on CUDA, gradient accumulation,
cross-entropy with ignore index 255 on logits upsampled to the label size.

Exact resume: the data order comes from ``DistributedSampler(seed, epoch)``, each sample's augmentation
from a generator seeded by ``(seed, epoch, index)``, and a checkpoint stores the optimizer, scheduler,
grad-scaler, step and every rank's RNG state. Resuming therefore replays the same batches, learning rates
and dropout masks as an uninterrupted run.

Run folder (``run.output_dir``)::

    config.yaml              the resolved configuration
    metrics.csv              step, epoch, loss, lr, time_s, images_per_s, val_miou, val_pixel_accuracy
    tensorboard/             when torch.utils.tensorboard imports
    checkpoints/step_NNNNNNN/{model.safetensors, train_state.pt}
    checkpoints/LATEST       name of the newest step folder
    model.safetensors        the final model (save_checkpoint format; embeds a random-init backbone)

A new run never writes into a folder that holds another run: continue it (``resume``) or replace it
(``overwrite``). Checkpoints are flushed to disk before they are renamed into place; a ``LATEST`` naming a
step folder that is missing or incomplete falls back to the newest complete one.
"""

from __future__ import annotations

import contextlib
import csv
import math
import random
import re
import shutil
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from causal_tune_ros.band import Band
from causal_tune_ros.classes import IGNORE_ID, ClassSet, load_classes
from causal_tune_ros.errors import CheckpointError, ConfigError, DatasetError
from causal_tune_ros.fileio import atomic_path, fsync_dir, fsync_file
from causal_tune_ros.training.augment import AugmentParams, augment, pad_pair, padded_size
from causal_tune_ros.training.config import DatasetConfig, ModelConfig, TrainConfig, micro_batch_size
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

STATE_FILE = "train_state.pt"
MODEL_FILE = "model.safetensors"
LATEST_FILE = "LATEST"
METRICS_FILE = "metrics.csv"
#: What a run writes into its folder; ``overwrite`` removes exactly these, nothing else.
RUN_OUTPUTS = (METRICS_FILE, MODEL_FILE, "config.yaml", "checkpoints", "tensorboard", "rank_state")
_STEP_NAME = re.compile(r"step_(\d+)")
METRICS_FIELDS = ("step", "epoch", "loss", "lr", "time_s", "images_per_s", "val_miou", "val_pixel_accuracy")
#: Format version of train_state.pt.
STATE_VERSION = 1


# ---------------------------------------------------------------------------------------------- model

#: Short head names accepted in configs.
HEAD_ALIASES = {"light": "LightHead", "mask2former": "Mask2FormerHead"}


def build_model(cfg: ModelConfig, num_classes: int, seed: int = 0) -> nn.Module:
    """Build the segmenter a model config describes (backbone loaded or random-initialised).

    Args:
        cfg: The ``model`` section.
        num_classes: Output classes.
        seed: Seed of the tuner and head initialisation (the random backbone uses ``backbone.init_seed``).

    Returns:
        A ``CausalTuneSegmenter`` on the CPU with a frozen backbone.

    Raises:
        ConfigError: For an unknown architecture / head or arguments they do not accept.
        CheckpointError: When backbone weights cannot be loaded.
    """
    from causal_tune_ros.model.causal_tune import CausalTuneSegmenter
    from causal_tune_ros.model.dinov2 import DinoV2
    from causal_tune_ros.model.heads import build_head

    bb = cfg.backbone
    # Own RNG streams so the model is a function of the config alone, whatever ran before.
    with torch.random.fork_rng(devices=[]):
        if bb.weights:
            # A path, or a hub name (facebook/dinov2-large, dinov2_vitl14) resolved through its cache.
            try:
                backbone = DinoV2.from_pretrained(bb.weights, **bb.overrides)
            except CheckpointError as exc:
                raise CheckpointError(f"model.backbone.weights: {exc}") from exc
        else:
            torch.manual_seed(bb.init_seed)
            try:
                backbone = DinoV2(bb.arch, num_register_tokens=bb.num_register_tokens, **bb.overrides)
            except TypeError as exc:
                raise ConfigError(f"model.backbone.overrides: {exc}") from exc
        torch.manual_seed(seed)
        head_type = HEAD_ALIASES.get(cfg.head.type, cfg.head.type)
        try:
            head = build_head(
                {
                    "type": head_type,
                    "in_channels": backbone.embed_dim,
                    "num_classes": num_classes,
                    **cfg.head.options,
                }
            )
        except ConfigError as exc:
            raise ConfigError(f"model.head: {exc}") from exc
        t = cfg.tuner
        model = CausalTuneSegmenter(
            backbone,
            head,
            layers=t.layers,
            num_tokens=t.num_tokens,
            rank=t.rank,
            scale_init=0.0 if t.frozen else t.scale_init,
            feature_layers=cfg.head.layers,
            feature_norm=cfg.head.final_norm,
            operator=t.operator,
            attention_sink=t.attention_sink,
            token_init=t.token_init,
            token_init_patch=t.token_init_patch,
            linear_bias_init=t.linear_bias_init,
        )
        if t.frozen:  # head-only baseline: the tuner adds exactly zero and never trains
            model.tuner.requires_grad_(False)
    return model


def backbone_state_keys(model: nn.Module) -> set[str]:
    """Names in ``model.state_dict()`` that belong to the frozen backbone."""
    return {k for k in model.state_dict() if k.startswith("backbone.")}


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict without the frozen backbone: tokens, projections, scale, head (with BN statistics)."""
    frozen = backbone_state_keys(model)
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items() if k not in frozen}


# ---------------------------------------------------------------------------------------------- data


def build_dataset_from_config(cfg: DatasetConfig, where: str) -> Any:
    """``build_dataset(name, root, split, **options)`` with errors naming the config key.

    Raises:
        ConfigError: Options the reader does not accept, or an unknown data set name.
        DatasetError: A missing folder or bad file (the reader's message).
    """
    from causal_tune_ros.training.datasets import build_dataset

    try:
        return build_dataset(cfg.name, cfg.root, cfg.split, **cfg.options)
    except TypeError as exc:
        raise ConfigError(f"{where}: bad options for data set {cfg.name!r}: {exc}") from exc
    except (ConfigError, DatasetError) as exc:
        raise type(exc)(f"{where}: {exc}") from exc


class CachedDataset:
    """Memoises a data set's items (base augmentation still happens per epoch on top of it).

    Args:
        base: Any sized, indexable data set; items are kept as returned.
    """

    def __init__(self, base: Any) -> None:
        self.base = base
        self._items: dict[int, Any] = {}
        #: Items ``__getitem__`` had to load (``fill`` does not count).
        self.misses = 0

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> Any:
        item = self._items.get(index)
        if item is None:
            self.misses += 1
            item = self._items[index] = self.base[index]
        return item

    def missing(self, indices: Iterable[int]) -> list[int]:
        """The ones of ``indices`` not cached yet, in order, without repeats."""
        return [i for i in dict.fromkeys(int(i) for i in indices) if i not in self._items]

    def fill(self, indices: Iterable[int]) -> None:
        """Load ``indices`` into the cache now (items already cached are kept)."""
        for i in self.missing(indices):
            self._items[i] = self.base[i]


class TrainingSamples(Dataset):
    """Training view of a data set: augmented, padded crops as tensors.

    Indexed by ``(epoch, index)`` (what :class:`EpochSampler` yields): the augmentation generator is
    seeded by ``(seed, epoch, index)``, so a sample looks the same in every worker, on every rank and
    after a resume.

    Args:
        base: Items ``dict(image=(H, W, 3) uint8 RGB, labels=(H, W) uint8, ...)``.
        params: Augmentation settings.
        seed: Run seed.
        pad_multiple: Crops are padded (image 0, label ignore) to sides that are multiples of this.
    """

    def __init__(self, base: Any, params: AugmentParams, seed: int, pad_multiple: int = 14) -> None:
        self.base = base
        self.params = params
        self.seed = int(seed)
        self.pad_to = padded_size(params.crop_size, pad_multiple)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, index = key
        item = self.base[index]
        try:
            image, labels = np.asarray(item["image"]), np.asarray(item["labels"])
        except (KeyError, TypeError) as exc:
            raise DatasetError(f"training sample {index}: expected dict(image, labels), got {exc}") from exc
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, epoch, index]))
        try:
            image, labels = augment(image, labels, self.params, rng)
        except ValueError as exc:
            raise DatasetError(f"training sample {index}: {exc}") from exc
        image, labels = pad_pair(image, labels, self.pad_to, self.params.ignore_index)
        # uint8 across the worker boundary (4x less than float); converted on the device.
        return torch.from_numpy(image).permute(2, 0, 1).contiguous(), torch.from_numpy(labels.copy())


class EpochSampler(Sampler):
    """Yields ``(epoch, index)`` from a ``DistributedSampler`` epoch, skipping the first ``skip`` indices.

    Args:
        sampler: The distributed sampler (its ``set_epoch`` is called here).
        epoch: The epoch to draw.
        skip: Indices already consumed (resume inside an epoch).
    """

    def __init__(self, sampler: DistributedSampler, epoch: int, skip: int = 0) -> None:
        self.sampler = sampler
        self.epoch = epoch
        self.skip = skip

    def __iter__(self) -> Iterator[tuple[int, int]]:
        self.sampler.set_epoch(self.epoch)
        for pos, index in enumerate(self.sampler):
            if pos >= self.skip:
                yield self.epoch, int(index)

    def __len__(self) -> int:
        return max(0, len(self.sampler) - self.skip)


def _worker_init(_: int) -> None:
    # Workers render / decode in parallel already; nested thread pools only oversubscribe the cores.
    import cv2

    cv2.setNumThreads(1)
    torch.set_num_threads(1)


# ---------------------------------------------------------------------------------------------- schedule


class PolyWarmup:
    """LR factor of step ``s``: linear warmup, then ``(1 - s / total) ** power``, floored at ``min_ratio``.

    A picklable callable for ``LambdaLR`` (its state then round-trips through ``state_dict``).
    """

    def __init__(self, total: int, power: float, warmup: int, warmup_ratio: float, min_ratio: float) -> None:
        self.total = total
        self.power = power
        self.warmup = warmup
        self.warmup_ratio = warmup_ratio
        self.min_ratio = min_ratio

    def __call__(self, step: int) -> float:
        progress = min(step, self.total) / self.total
        factor = (1.0 - self.min_ratio) * (1.0 - progress) ** self.power + self.min_ratio
        if step < self.warmup:
            # mmcv's linear warmup: from warmup_ratio to 1 over `warmup` steps, times the poly factor.
            factor *= 1.0 - (1.0 - step / self.warmup) * (1.0 - self.warmup_ratio)
        return factor


# ---------------------------------------------------------------------------------------------- results


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


# ---------------------------------------------------------------------------------------------- checkpoints


def complete_steps(folder: str | Path) -> list[Path]:
    """``step_*`` folders holding both the training state and the model, oldest first."""
    folder = Path(folder)
    found = []
    for entry in folder.glob("step_*"):
        match = _STEP_NAME.fullmatch(entry.name)
        if match and (entry / STATE_FILE).is_file() and (entry / MODEL_FILE).is_file():
            found.append((int(match.group(1)), entry))
    return [entry for _, entry in sorted(found)]


def resolve_resume(path: str | Path) -> Path:
    """The checkpoint folder ``--resume`` names: a step folder, a ``checkpoints/`` folder or a run folder.

    ``LATEST`` is followed when it names a complete step folder; when it names one that is missing or
    incomplete (a run killed while saving), or is absent, the newest complete step folder is used, with
    a warning.

    Raises:
        CheckpointError: If no training checkpoint is found there.
    """
    path = Path(path)
    for candidate in (path, path / "checkpoints"):
        if (candidate / STATE_FILE).is_file():
            return candidate
        latest = candidate / LATEST_FILE
        steps = complete_steps(candidate)
        if latest.is_file():
            name = latest.read_text(encoding="utf-8").strip()
            if _STEP_NAME.fullmatch(name) and candidate / name in steps:
                return candidate / name
            if steps:
                _emit(
                    f"warning: {latest} names {name!r}, which is missing or incomplete (a run killed while "
                    f"saving?); resuming from the newest complete checkpoint {steps[-1].name}"
                )
                return steps[-1]
            raise CheckpointError(
                f"{latest} names {name!r}, which has no {STATE_FILE}, and {candidate} holds no other "
                "complete step folder"
            )
        if steps:
            return steps[-1]
    raise CheckpointError(
        f"no training checkpoint at {path} (expected {STATE_FILE} or checkpoints/{LATEST_FILE})"
    )


def run_outputs(folder: str | Path) -> list[str]:
    """The outputs of an earlier run that ``folder`` holds (names from :data:`RUN_OUTPUTS`)."""
    folder = Path(folder)
    found = []
    for name in RUN_OUTPUTS:
        entry = folder / name
        if entry.is_dir() and not any(entry.iterdir()):
            continue  # an empty folder holds nothing to lose
        if entry.exists():
            found.append(name)
    return found


def run_folder_problem(output_dir: str | Path, resume: str | Path | None, overwrite: bool) -> str | None:
    """Why a run may not start in ``output_dir``, or ``None`` when it may.

    A folder holding another run's outputs is refused unless the run resumes from a checkpoint inside
    that folder, or ``overwrite`` is set (and the run does not resume).
    """
    out = Path(output_dir)
    if resume is not None and overwrite:
        return "--resume and --overwrite exclude each other: continue the run, or replace it"
    found = run_outputs(out)
    if not found or overwrite:
        return None
    if resume is None:
        return (
            f"run folder {out} already holds a run ({', '.join(found)}); continue it with --resume {out}, "
            "replace it with --overwrite, or choose another --output-dir"
        )
    source = resolve_resume(resume).resolve()
    if not source.is_relative_to(out.resolve()):
        return (
            f"--resume {resume} continues a checkpoint of another folder into {out}, which holds a different "
            f"run ({', '.join(found)}); choose an empty --output-dir or pass --overwrite without --resume"
        )
    return None


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]),
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, key, *rest = state["numpy"]
    np.random.set_state((name, key.numpy().astype(np.uint32), *rest))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


# ---------------------------------------------------------------------------------------------- trainer


def _emit(message: str) -> None:
    print(message, file=sys.stdout, flush=True)


def _format_seconds(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


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
        self.amp_dtype = self._resolve_amp(cfg.run.amp)
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
        self.optimizer = self._build_optimizer()
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            PolyWarmup(o.iterations, o.poly_power, o.warmup_iters, o.warmup_ratio, o.min_lr / o.lr),
        )
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype is torch.float16)
        self.criterion = self._build_criterion()

        a = cfg.augment
        self.augment_params = AugmentParams(
            crop_size=tuple(a.crop_size),
            base_size=None if a.base_size is None else tuple(a.base_size),
            scale_range=tuple(a.scale_range),
            cat_max_ratio=a.cat_max_ratio,
            hflip_prob=a.hflip_prob,
            photometric=a.photometric,
            brightness_delta=a.brightness_delta,
            contrast_range=tuple(a.contrast_range),
            saturation_range=tuple(a.saturation_range),
            hue_delta=a.hue_delta,
            ignore_index=self.classes.ignore_id,
            short_edge=None if a.short_edge is None else tuple(a.short_edge),
            max_long_edge=a.max_long_edge,
        )
        base = build_dataset_from_config(cfg.data.train, "data.train")
        if cfg.data.cache:
            base = CachedDataset(base)
        self.train_samples = TrainingSamples(base, self.augment_params, cfg.run.seed)
        self.sampler = DistributedSampler(
            self.train_samples,
            num_replicas=self.dist.world_size,
            rank=self.dist.rank,
            shuffle=True,
            seed=cfg.run.seed,
            drop_last=True,
        )
        self.batches_per_epoch = len(self.sampler) // self.micro_batch
        if self.batches_per_epoch == 0:
            raise DatasetError(
                f"data.train has {len(base)} samples: too few for {self.dist.world_size} process(es) x "
                f"micro-batch {self.micro_batch}"
            )
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

    # ------------------------------------------------------------------ setup helpers

    def _resolve_amp(self, amp: str) -> torch.dtype | None:
        if amp == "off" or (amp == "auto" and self.device.type != "cuda"):
            return None
        if amp == "auto":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if amp == "fp16" and self.device.type != "cuda":
            raise ConfigError("run.amp: fp16 needs CUDA; use bf16 or off on the CPU")
        return torch.bfloat16 if amp == "bf16" else torch.float16

    def _build_criterion(self) -> nn.Module | None:
        """Mask2Former's set criterion for mask-classification heads; ``None`` for dense heads (plain CE)."""
        if HEAD_ALIASES.get(self.cfg.model.head.type, self.cfg.model.head.type) != "Mask2FormerHead":
            if self.cfg.model.head.loss_options:
                raise ConfigError("model.head.loss_options: only mask2former heads take loss options")
            return None
        # Imported here: it needs scipy (Hungarian matching), which dense heads do not.
        from causal_tune_ros.training.losses import SetCriterion

        try:
            criterion = SetCriterion(
                self.model.num_classes,
                ignore_index=self.classes.ignore_id,
                **self.cfg.model.head.loss_options,
            )
        except TypeError as exc:
            raise ConfigError(f"model.head.loss_options: {exc}") from exc
        return criterion.to(self.device)

    def _build_optimizer(self) -> torch.optim.Optimizer:
        """AdamW over ``trainable_parameters()`` only; weight-decay groups from ``optim.no_decay_*``."""
        from causal_tune_ros.training.config import weight_decay_groups

        o = self.cfg.optim
        if not self.model.trainable_parameters():
            raise ConfigError("the model has no trainable parameters")
        decay, no_decay = weight_decay_groups(self.model, o)
        groups = [
            {"params": decay, "weight_decay": o.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        groups = [g for g in groups if g["params"]]
        fused = self.device.type == "cuda"
        return torch.optim.AdamW(groups, lr=o.lr, betas=tuple(o.betas), eps=o.eps, fused=fused)

    # ------------------------------------------------------------------ state

    def _checkpoint_metadata(self) -> dict[str, Any]:
        # Band and class names go into the checkpoint's own fields; this is the free-form part.
        return {
            "step": self.step,
            "train_data": self.cfg.data.train.describe(),
            "backbone_weights": self.cfg.model.backbone.weights,
            "train_config": self.cfg.to_dict(),
            # The size deployments should run at unless told otherwise (node, replay, export defaults).
            "input_size": list(_val_input_size(self.cfg) or self.cfg.augment.crop_size),
        }

    def _load_state(self, folder: Path) -> None:
        path = folder / STATE_FILE
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for a bad file
            raise CheckpointError(f"cannot read {path}: {exc}") from exc
        if state.get("version") != STATE_VERSION:
            raise CheckpointError(f"{path}: unsupported train-state version {state.get('version')}")
        saved = state.get("config", {})
        if saved.get("model") != self.cfg.to_dict()["model"]:
            raise CheckpointError(f"{path}: the checkpoint's model section differs from this config's")
        missing, unexpected = self.model.load_state_dict(state["trainable"], strict=False)
        frozen = backbone_state_keys(self.model)
        missing = [k for k in missing if k not in frozen]
        if missing or unexpected:
            raise CheckpointError(
                f"{path}: state does not fit the model (missing {missing}, unexpected {unexpected})"
            )
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        rngs = state["rng"]
        if int(state.get("world_size", 1)) == self.dist.world_size and self.dist.rank < len(rngs):
            _set_rng_state(rngs[self.dist.rank])
        else:
            if self.dist.is_main and not self.quiet:
                _emit(
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
        from causal_tune_ros.model.checkpoint import save_checkpoint

        rngs = all_gather_object(_rng_state(), self.dist)
        if not self.dist.is_main:
            return None
        ckpt_root = self.output_dir / "checkpoints"
        name = f"step_{self.step:07d}"
        final, tmp = ckpt_root / name, ckpt_root / f".{name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
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
        torch.save(state, tmp / STATE_FILE)
        fsync_file(tmp / STATE_FILE)
        save_checkpoint(  # atomic_path: synced before its own rename
            tmp / MODEL_FILE,
            self.model,
            metadata=self._checkpoint_metadata(),
            include_backbone=self.cfg.model.backbone.weights is None,
            class_names=self.classes.names,
            band=self.band,
        )
        fsync_dir(tmp)
        # Write-then-rename: a crash never leaves a half-written checkpoint under the final name, and an
        # older folder of the same step (a resumed run) is moved aside, not deleted, until the new one is in.
        old = ckpt_root / f".{name}.old"
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        fsync_dir(ckpt_root)
        shutil.rmtree(old, ignore_errors=True)
        with atomic_path(ckpt_root / LATEST_FILE) as latest:
            latest.write_text(name + "\n", encoding="utf-8")
        self._prune_checkpoints(ckpt_root, keep=final)
        return final

    def _remove_previous_run(self) -> None:
        """``overwrite``: delete the outputs of the run this folder held (only :data:`RUN_OUTPUTS`)."""
        found = run_outputs(self.output_dir)
        if found and not self.quiet:
            _emit(f"--overwrite: removing the previous run's {', '.join(found)} from {self.output_dir}")
        for name in found:
            entry = self.output_dir / name
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        self._clear_previous_run = False

    def _prune_checkpoints(self, root: Path, keep: Path) -> None:
        limit = self.cfg.run.keep_checkpoints
        if limit <= 0:
            return
        folders = sorted(p for p in root.glob("step_*") if p.is_dir())
        for old in folders[:-limit]:
            if old != keep:
                shutil.rmtree(old, ignore_errors=True)

    # ------------------------------------------------------------------ data

    def _batches(self, start_micro: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Micro-batches from global micro-batch index ``start_micro`` on, epoch after epoch."""
        epoch, offset = divmod(start_micro, self.batches_per_epoch)
        pin = self.device.type == "cuda"
        while True:
            loader = DataLoader(
                self.train_samples,
                batch_size=self.micro_batch,
                sampler=EpochSampler(self.sampler, epoch, skip=offset * self.micro_batch),
                num_workers=self.cfg.data.num_workers,
                drop_last=True,
                pin_memory=pin,
                worker_init_fn=_worker_init if self.cfg.data.num_workers else None,
                # A private generator: creating loaders must not consume the global (dropout) RNG stream.
                generator=torch.Generator().manual_seed(self.cfg.run.seed),
            )
            for images, labels in loader:
                yield (
                    images.to(self.device, non_blocking=pin).float().div_(255.0),
                    labels.to(self.device, non_blocking=pin).long(),
                )
            epoch, offset = epoch + 1, 0

    def _items_used(self, stop: int) -> list[int]:
        """Indices of the training items this rank loads in steps ``self.step + 1 .. stop``."""
        o = self.cfg.optim
        per_epoch = self.batches_per_epoch * self.micro_batch  # the loader drops the last partial batch
        epoch, offset = divmod(self.step * o.grad_accum, self.batches_per_epoch)
        left = (stop - self.step) * o.grad_accum * self.micro_batch
        pos = offset * self.micro_batch
        used: dict[int, None] = {}
        while left > 0 and len(used) < len(self.train_samples):
            self.sampler.set_epoch(epoch)  # EpochSampler sets it again before the loader draws
            order = [int(i) for i in self.sampler][:per_epoch][pos : pos + left]
            used.update(dict.fromkeys(order))
            left -= len(order)
            epoch, pos = epoch + 1, 0
        return list(used)

    def _warm_cache(self, stop: int) -> None:
        """Load every cached training item the coming steps use before the first of them.

        With ``data.cache`` the first epoch would otherwise also render or decode each item, so its steps
        would be slower than the rest and the ETA too long at the start.
        """
        cache = self.train_samples.base
        if not isinstance(cache, CachedDataset):
            return
        missing = cache.missing(self._items_used(stop))
        if not missing:
            return
        show = self.dist.is_main and not self.quiet
        if show:
            _emit(f"caching {len(missing)} training images (data.cache) before the first step")
        t0 = time.perf_counter()
        bar = None
        if show and self._use_bars():
            from tqdm import tqdm

            bar = tqdm(total=len(missing), desc="cache", unit="img", dynamic_ncols=True)
        try:
            for start in range(0, len(missing), 16):
                chunk = missing[start : start + 16]
                cache.fill(chunk)
                if bar is not None:
                    bar.update(len(chunk))
        finally:
            if bar is not None:
                bar.close()
        if show:
            _emit(f"cached {len(missing)} images in {_format_seconds(time.perf_counter() - t0)}")

    # ------------------------------------------------------------------ loop

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _loss(self, outputs: torch.Tensor | dict[str, Any], labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy on logits upsampled to the labels (dense heads); the set criterion (mask heads)."""
        if self.criterion is not None:
            from causal_tune_ros.training.losses import segmentation_loss

            return segmentation_loss(outputs, labels, self.classes.ignore_id, criterion=self.criterion)
        logits = F.interpolate(outputs.float(), size=labels.shape[-2:], mode="bilinear", align_corners=False)
        total = F.cross_entropy(logits, labels, ignore_index=self.classes.ignore_id, reduction="sum")
        # Mean over labelled pixels; a crop with none gives 0, not NaN.
        valid = (labels != self.classes.ignore_id).sum().clamp_min(1)
        return total / valid

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
            input_size=_val_input_size(self.cfg),
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
        logger = _RunLogger(self, enabled=main) if main else None
        band = torch.tensor(self.band.as_tuple(), dtype=torch.float32, device=self.device)
        batches = self._batches(self.step * o.grad_accum)
        self.ddp_model.train()
        window_losses: list[float] = []
        t_start = time.perf_counter()
        t_window = t_start
        images_window = 0
        self._warm_cache(stop)
        bar = self._progress_bar(stop) if main and not self.quiet else None
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
        from causal_tune_ros.model.checkpoint import save_checkpoint

        path = self.output_dir / MODEL_FILE
        save_checkpoint(  # atomic: written beside, synced, then renamed over the old file
            path,
            self.model,
            metadata=self._checkpoint_metadata(),
            include_backbone=self.cfg.model.backbone.weights is None,
            class_names=self.classes.names,
            band=self.band,
        )
        if not self.quiet:
            _emit(f"saved {path}")
        return path

    def _use_bars(self) -> bool:
        """tqdm bars (a terminal, or ``run.progress: bar``) rather than log lines."""
        mode = self.cfg.run.progress
        return not (mode == "log" or (mode == "auto" and not sys.stderr.isatty()))

    def _progress_bar(self, stop: int) -> Any:
        if not self._use_bars():
            return None
        from tqdm import tqdm

        return tqdm(total=stop, initial=self.step, desc="train", unit="step", dynamic_ncols=True)

    def close(self) -> None:
        """Leave the process group if this trainer joined it."""
        if self.owns_dist:
            cleanup(self.dist)


def _val_input_size(cfg: TrainConfig) -> tuple[int, int] | None:
    """The validation set's own ``input_size``, else ``eval.input_size``."""
    size = (cfg.data.val.input_size if cfg.data.val else None) or cfg.eval.input_size
    return None if size is None else (int(size[0]), int(size[1]))


class EtaEstimator:
    """Remaining time of a run, from its recent step times.

    The first step after a start or resume is left out: it pays for memory allocation and first-call
    set-up, so it says little about the steps after it. Later step times are
    smoothed exponentially (as tqdm's ``smoothing`` does), so the estimate follows the current speed
    rather than the average since the start.

    Args:
        smoothing: Weight of the newest step time, in (0, 1].

    Raises:
        ValueError: If ``smoothing`` is outside (0, 1].
    """

    def __init__(self, smoothing: float = 0.05) -> None:
        if not 0.0 < smoothing <= 1.0:
            raise ValueError(f"smoothing must be in (0, 1], got {smoothing}")
        self.smoothing = smoothing
        self.seconds_per_step: float | None = None
        self._last: float | None = None

    def tick(self, now: float | None = None) -> None:
        """Record the end of one optimizer step (``now`` defaults to ``time.perf_counter()``)."""
        now = time.perf_counter() if now is None else now
        if self._last is not None:
            dt = now - self._last
            avg = self.seconds_per_step
            self.seconds_per_step = dt if avg is None else self.smoothing * dt + (1 - self.smoothing) * avg
        self._last = now

    def remaining(self, steps_left: int) -> float | None:
        """Seconds for ``steps_left`` more steps, or ``None`` before the second step has ended."""
        return None if self.seconds_per_step is None else self.seconds_per_step * max(steps_left, 0)


class _RunLogger:
    """Rank-0 outputs: resolved config, metrics CSV (append-safe on resume), TensorBoard, log lines."""

    def __init__(self, trainer: Trainer, enabled: bool) -> None:
        self.trainer = trainer
        out = trainer.output_dir
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(
            yaml.safe_dump(trainer.cfg.to_dict(), sort_keys=False), encoding="utf-8"
        )
        self.csv_path = out / METRICS_FILE
        rows: list[dict[str, str]] = []
        if trainer.step > 0 and self.csv_path.is_file():
            # Drop rows past the resume point so the log reads like one uninterrupted run.
            with self.csv_path.open(newline="", encoding="utf-8") as f:
                rows = [row for row in csv.DictReader(f) if int(row.get("step") or 0) <= trainer.step]
        # Rewritten beside and renamed (a kill here keeps the old log), then appended to.
        with atomic_path(self.csv_path) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=METRICS_FIELDS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        self.file = self.csv_path.open("a", newline="", encoding="utf-8")
        self.writer = csv.DictWriter(self.file, fieldnames=METRICS_FIELDS, extrasaction="ignore")
        self.tb = None
        if trainer.cfg.run.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(log_dir=str(out / "tensorboard"), purge_step=trainer.step or None)
            except ImportError:  # tensorboard not installed: silently CSV only
                self.tb = None
        self.t0 = time.perf_counter()
        self.eta = EtaEstimator()

    def log(self, row: dict[str, Any], stop: int, quiet: bool) -> None:
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
            f"{row['images_per_s']:.2f} img/s elapsed {_format_seconds(elapsed)} "
            f"eta {'?' if left is None else _format_seconds(left)}"
        )
        if row["val_miou"] is not None:
            line += f" val mIoU {100 * row['val_miou']:.2f} aAcc {100 * row['val_pixel_accuracy']:.2f}"
        _emit(line)

    def close(self) -> None:
        self.file.close()
        if self.tb is not None:
            self.tb.close()


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
    "EpochSampler",
    "EtaEstimator",
    "PolyWarmup",
    "TrainResult",
    "Trainer",
    "TrainingSamples",
    "build_model",
    "complete_steps",
    "resolve_resume",
    "run_folder_problem",
    "run_outputs",
    "train",
    "trainable_state",
]
