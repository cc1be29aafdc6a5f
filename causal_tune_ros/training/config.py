"""Typed configuration of ``causal-tune train`` / ``causal-tune eval``, loaded from YAML and validated.

A config file is a nested mapping whose sections (``model``, ``data``, ``augment``, ``optim``, ``run``,
``eval``, ``ddp``) mirror the dataclasses of ``config_sections``. Every key is checked: an unknown key, a
value of the wrong type or out of range raises :class:`~causal_tune_ros.errors.ConfigError` whose message
starts with the dotted path of the offending key (``optim.lr: ...``), so the user knows where to look.

Command-line overrides (``--set optim.lr=1e-4``) are applied to the raw mapping before validation, the
value parsed as YAML (``--set model.tuner.layers=[0,2]`` works).

The sections themselves are in :mod:`~causal_tune_ros.training.config_sections` and the mapping machinery
in :mod:`~causal_tune_ros.training.config_mapping`; their public names are importable from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from causal_tune_ros.band import Band
from causal_tune_ros.errors import ConfigError
from causal_tune_ros.training.config_mapping import apply_overrides, build_dataclass
from causal_tune_ros.training.config_sections import (
    AugmentConfig,
    BackboneConfig,
    DataConfig,
    DatasetConfig,
    DDPConfig,
    EvalConfig,
    HeadConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    TrainConfig,
    TunerConfig,
    micro_batch_size,
    weight_decay_groups,
)


def load_train_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Read, override and validate a training config file.

    Args:
        path: A YAML file.
        overrides: ``["optim.lr=1e-4", ...]``; the value is parsed as YAML.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: Missing / unreadable file, bad override syntax, or a bad key (named in the message).
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, got {type(raw).__name__}")
    apply_overrides(raw, overrides or [])
    try:
        return config_from_dict(raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def config_from_dict(raw: dict[str, Any]) -> TrainConfig:
    """Validate a plain mapping into a :class:`TrainConfig`.

    Raises:
        ConfigError: Naming the dotted key that is unknown, mistyped or out of range.
    """
    cfg = build_dataclass(TrainConfig, raw, "")
    _check_ranges(cfg)
    return cfg


# ---------------------------------------------------------------------------------------------- checks


def _require(ok: bool, path: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{path}: {message}")


def _pair(values: list[Any] | None, path: str, *, positive: bool = True) -> None:
    if values is None:
        return
    _require(len(values) == 2, path, f"expected two values [h, w], got {values!r}")
    if positive:
        _require(all(v > 0 for v in values), path, f"values must be > 0, got {values!r}")


def _check_band(values: list[float], path: str) -> None:
    _require(len(values) == 2, path, f"expected [r_low, r_high], got {values!r}")
    try:
        Band(*values)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _check_ranges(cfg: TrainConfig) -> None:
    """Value checks that types alone cannot express; each names its key."""
    m, a, o, r, e = cfg.model, cfg.augment, cfg.optim, cfg.run, cfg.eval
    _require(m.backbone.weights is not None or bool(m.backbone.arch), "model.backbone.arch", "must be set")
    _require(m.backbone.num_register_tokens >= 0, "model.backbone.num_register_tokens", "must be >= 0")
    _require(m.tuner.num_tokens > 0, "model.tuner.num_tokens", f"must be > 0, got {m.tuner.num_tokens}")
    _require(m.tuner.rank > 0, "model.tuner.rank", f"must be > 0, got {m.tuner.rank}")
    if m.tuner.layers is not None:
        _require(len(m.tuner.layers) > 0, "model.tuner.layers", "must list at least one layer (or be null)")
        _require(min(m.tuner.layers) >= 0, "model.tuner.layers", "layer indices must be >= 0")
    _require(
        m.tuner.token_init_patch is None or m.tuner.token_init_patch > 0,
        "model.tuner.token_init_patch",
        "must be > 0",
    )
    if m.head.layers is not None:
        _require(len(m.head.layers) > 0, "model.head.layers", "must list layers (or be null)")
        _require(min(m.head.layers) >= 0, "model.head.layers", "layer indices must be >= 0")
    _check_band(m.band, "model.band")
    _require(cfg.data.num_workers >= 0, "data.num_workers", "must be >= 0")
    _pair(a.crop_size, "augment.crop_size")
    _pair(a.base_size, "augment.base_size")
    _pair(a.scale_range, "augment.scale_range")
    if a.short_edge is not None:
        _require(len(a.short_edge) > 0 and min(a.short_edge) > 0, "augment.short_edge", "needs lengths > 0")
    _require(a.max_long_edge is None or a.max_long_edge > 0, "augment.max_long_edge", "must be > 0 or null")
    _require(
        a.max_long_edge is None or a.short_edge is not None,
        "augment.max_long_edge",
        "needs augment.short_edge",
    )
    _require(a.scale_range[0] <= a.scale_range[1], "augment.scale_range", "needs min <= max")
    _require(0.0 < a.cat_max_ratio <= 1.0, "augment.cat_max_ratio", "must be in (0, 1]")
    _require(0.0 <= a.hflip_prob <= 1.0, "augment.hflip_prob", "must be in [0, 1]")
    _require(a.brightness_delta >= 0, "augment.brightness_delta", "must be >= 0")
    _require(a.hue_delta >= 0, "augment.hue_delta", "must be >= 0")
    _pair(a.contrast_range, "augment.contrast_range")
    _pair(a.saturation_range, "augment.saturation_range")
    _require(o.lr > 0, "optim.lr", f"must be > 0, got {o.lr}")
    _require(o.weight_decay >= 0, "optim.weight_decay", "must be >= 0")
    _require(
        len(o.betas) == 2 and all(0 <= b < 1 for b in o.betas), "optim.betas", "expected [b1, b2] in [0, 1)"
    )
    _require(o.eps > 0, "optim.eps", "must be > 0")
    _require(o.batch_size > 0, "optim.batch_size", f"must be > 0, got {o.batch_size}")
    _require(o.grad_accum > 0, "optim.grad_accum", f"must be > 0, got {o.grad_accum}")
    _require(o.batch_size % o.grad_accum == 0, "optim.batch_size", "must be a multiple of optim.grad_accum")
    _require(o.iterations > 0, "optim.iterations", f"must be > 0, got {o.iterations}")
    _require(0 <= o.warmup_iters < o.iterations, "optim.warmup_iters", "must be in [0, optim.iterations)")
    _require(0 < o.warmup_ratio <= 1, "optim.warmup_ratio", "must be in (0, 1]")
    _require(o.poly_power >= 0, "optim.poly_power", "must be >= 0")
    _require(0 <= o.min_lr <= o.lr, "optim.min_lr", "must be in [0, optim.lr]")
    _require(o.grad_clip is None or o.grad_clip > 0, "optim.grad_clip", "must be > 0 or null")
    _require(bool(r.output_dir), "run.output_dir", "must be set")
    _require(r.log_every > 0, "run.log_every", "must be > 0")
    _require(r.val_every >= 0, "run.val_every", "must be >= 0")
    _require(r.checkpoint_every >= 0, "run.checkpoint_every", "must be >= 0")
    _require(r.keep_checkpoints >= 0, "run.keep_checkpoints", "must be >= 0")
    _pair(e.window, "eval.window")
    _pair(e.stride, "eval.stride")
    _pair(e.input_size, "eval.input_size")
    _require(
        all(s <= w for s, w in zip(e.stride, e.window, strict=True)), "eval.stride", "must be <= eval.window"
    )
    _require(e.batch_size > 0, "eval.batch_size", "must be > 0")
    _require(e.max_samples is None or e.max_samples > 0, "eval.max_samples", "must be > 0 or null")
    for i, band in enumerate(e.bands):
        _check_band(band, f"eval.bands[{i}]")
    for i, ds in enumerate(e.sets):
        _pair(ds.input_size, f"eval.sets[{i}].input_size")


__all__ = [
    "AugmentConfig",
    "BackboneConfig",
    "DDPConfig",
    "DataConfig",
    "DatasetConfig",
    "EvalConfig",
    "HeadConfig",
    "ModelConfig",
    "OptimConfig",
    "RunConfig",
    "TrainConfig",
    "TunerConfig",
    "apply_overrides",
    "config_from_dict",
    "load_train_config",
    "micro_batch_size",
    "weight_decay_groups",
]
