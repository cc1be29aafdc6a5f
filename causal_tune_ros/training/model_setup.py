"""The segmenter a training config describes, and what trains it: loss criterion, optimizer, AMP.

:func:`build_model` turns the ``model`` section into a ``CausalTuneSegmenter`` (backbone loaded or
random-initialised, frozen); :func:`trainable_state` is what a checkpoint's training state keeps;
:func:`build_optimizer` is AdamW over the trainable parameters only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from causal_tune_ros.errors import CheckpointError, ConfigError
from causal_tune_ros.training.config import ModelConfig, OptimConfig, weight_decay_groups

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


def load_trainable_state(model: nn.Module, trainable: dict[str, torch.Tensor], source: Path) -> None:
    """Load what :func:`trainable_state` saved into ``model`` (its backbone stays as it is).

    Raises:
        CheckpointError: Keys that do not fit the model, naming ``source``.
    """
    missing, unexpected = model.load_state_dict(trainable, strict=False)
    frozen = backbone_state_keys(model)
    missing = [k for k in missing if k not in frozen]
    if missing or unexpected:
        raise CheckpointError(
            f"{source}: state does not fit the model (missing {missing}, unexpected {unexpected})"
        )


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict without the frozen backbone: tokens, projections, scale, head (with BN statistics)."""
    frozen = backbone_state_keys(model)
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items() if k not in frozen}


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype ``run.amp`` asks for on ``device`` (``None``: full precision).

    Raises:
        ConfigError: fp16 without CUDA.
    """
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return None
    if amp == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if amp == "fp16" and device.type != "cuda":
        raise ConfigError("run.amp: fp16 needs CUDA; use bf16 or off on the CPU")
    return torch.bfloat16 if amp == "bf16" else torch.float16


def build_criterion(cfg: ModelConfig, num_classes: int, ignore_index: int) -> nn.Module | None:
    """Mask2Former's set criterion for mask-classification heads; ``None`` for dense heads (plain CE).

    Raises:
        ConfigError: Loss options for a dense head, or options the criterion does not accept.
    """
    if HEAD_ALIASES.get(cfg.head.type, cfg.head.type) != "Mask2FormerHead":
        if cfg.head.loss_options:
            raise ConfigError("model.head.loss_options: only mask2former heads take loss options")
        return None
    # Imported here: it needs scipy (Hungarian matching), which dense heads do not.
    from causal_tune_ros.training.losses import SetCriterion

    try:
        return SetCriterion(num_classes, ignore_index=ignore_index, **cfg.head.loss_options)
    except TypeError as exc:
        raise ConfigError(f"model.head.loss_options: {exc}") from exc


def build_optimizer(model: nn.Module, cfg: OptimConfig, device: torch.device) -> torch.optim.Optimizer:
    """AdamW over ``model.trainable_parameters()`` only; weight-decay groups from ``optim.no_decay_*``.

    Raises:
        ConfigError: A model with nothing to train.
    """
    if not model.trainable_parameters():
        raise ConfigError("the model has no trainable parameters")
    decay, no_decay = weight_decay_groups(model, cfg)
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    fused = device.type == "cuda"
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, fused=fused)


def batch_loss(
    outputs: torch.Tensor | dict[str, Any],
    labels: torch.Tensor,
    ignore_index: int,
    criterion: nn.Module | None,
) -> torch.Tensor:
    """Loss of one batch: the set criterion (mask heads), else cross-entropy on upsampled logits.

    The cross-entropy is the mean over labelled pixels; a crop with none gives 0, not NaN.
    """
    if criterion is not None:
        from causal_tune_ros.training.losses import segmentation_loss

        return segmentation_loss(outputs, labels, ignore_index, criterion=criterion)
    logits = F.interpolate(outputs.float(), size=labels.shape[-2:], mode="bilinear", align_corners=False)
    total = F.cross_entropy(logits, labels, ignore_index=ignore_index, reduction="sum")
    valid = (labels != ignore_index).sum().clamp_min(1)
    return total / valid
