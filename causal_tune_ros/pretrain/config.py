"""Configuration of ``causal-tune pretrain``: YAML file -> frozen dataclasses, ``key.sub=value`` overrides."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from causal_tune_ros.errors import ConfigError
from causal_tune_ros.pretrain.objective import ObjectiveWeights


@dataclass(frozen=True)
class BackboneSpec:
    """The ViT being pretrained: ``DinoV2("custom", **this)`` (patch 14, DINOv2 layout).

    Attributes:
        embed_dim: Width.
        depth: Blocks.
        num_heads: Attention heads (divides ``embed_dim``).
        mlp_ratio: MLP hidden width / ``embed_dim``.
        img_size: Side of the square position-embedding grid in pixels (multiple of 14), resampled to
            every input size as in DINOv2.
        init_seed: Seed of the random initialisation.
    """

    embed_dim: int = 192
    depth: int = 6
    num_heads: int = 3
    mlp_ratio: float = 4.0
    img_size: int = 336
    init_seed: int = 0

    def overrides(self) -> dict[str, Any]:
        """The ``DinoV2`` keyword arguments."""
        return {
            "embed_dim": self.embed_dim,
            "depth": self.depth,
            "num_heads": self.num_heads,
            "mlp_ratio": float(self.mlp_ratio),
            "img_size": self.img_size,
            "patch_size": 14,
        }


@dataclass(frozen=True)
class DataSpec:
    """Pretraining scenes.

    Attributes:
        num_scenes: Scenes, each rendered under every condition.
        height: Render rows (multiple of 14).
        width: Render columns (multiple of 14).
        crop: ``[rows, cols]`` of the random crop fed to the network (multiples of 14, within the render).
        seed: Seed of the scene stream (pretraining scenes never coincide with training or demo scenes).
        cache: Optional ``.npz`` file holding the rendered scenes: read when it matches these settings,
            else rendered and written there ("" = render every time).
    """

    num_scenes: int = 800
    height: int = 168
    width: int = 336
    crop: tuple[int, int] = (112, 224)
    seed: int = 0
    cache: str = ""


@dataclass(frozen=True)
class OptimSpec:
    """AdamW with linear warmup and cosine decay.

    Attributes:
        steps: Optimiser steps.
        batch_size: Scenes per step (each contributes a clear and a weather view).
        lr: Peak learning rate.
        weight_decay: Decoupled weight decay of matrices (biases, norms and tokens get none).
        warmup_steps: Linear warmup steps.
        grad_clip: Gradient-norm clip (0: none).
    """

    steps: int = 1000
    batch_size: int = 16
    lr: float = 1.5e-3
    weight_decay: float = 0.05
    warmup_steps: int = 50
    grad_clip: float = 1.0


@dataclass(frozen=True)
class PretrainConfig:
    """Everything ``causal-tune pretrain`` does.

    Attributes:
        backbone: :class:`BackboneSpec`.
        data: :class:`DataSpec`.
        objective: :class:`~causal_tune_ros.pretrain.objective.ObjectiveWeights`.
        optim: :class:`OptimSpec`.
        seed: Seed of batch order, crops, flips, weather draws and masks.
        output: Output file (``.safetensors``), written atomically.
        threads: Torch CPU threads (0: torch's default).
        log_every: Steps between log lines.
        save_every: Steps between interim writes of ``output`` (0: only at the end), so a long run
            leaves a usable file early.
    """

    backbone: BackboneSpec = field(default_factory=BackboneSpec)
    data: DataSpec = field(default_factory=DataSpec)
    objective: ObjectiveWeights = field(default_factory=ObjectiveWeights)
    optim: OptimSpec = field(default_factory=OptimSpec)
    seed: int = 0
    output: str = "models/pocket/pocket_vit.safetensors"
    threads: int = 0
    log_every: int = 25
    save_every: int = 0


def _build(cls: type, raw: Any, path: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got {raw!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(
            f"{path or 'config'}: unknown key(s) {', '.join(unknown)}; known: {', '.join(fields)}"
        )
    kwargs: dict[str, Any] = {}
    for name, value in raw.items():
        sub = f"{path}.{name}" if path else name
        default = getattr(cls(), name)
        if dataclasses.is_dataclass(default):
            kwargs[name] = _build(type(default), value, sub)
        elif isinstance(default, tuple):
            if not isinstance(value, (list, tuple)) or len(value) != len(default):
                raise ConfigError(f"{sub}: expected a list of {len(default)} numbers, got {value!r}")
            kwargs[name] = tuple(int(v) for v in value)
        elif isinstance(default, (bool, str)):
            kwargs[name] = type(default)(value)
        elif isinstance(default, int):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{sub}: expected an integer, got {value!r}")
            kwargs[name] = value
        else:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{sub}: expected a number, got {value!r}")
            kwargs[name] = float(value)
    return cls(**kwargs)


def _check(cfg: PretrainConfig) -> None:
    d, b, o, w = cfg.data, cfg.backbone, cfg.optim, cfg.objective
    problems = []
    for name, value in (
        ("data.height", d.height),
        ("data.width", d.width),
        ("backbone.img_size", b.img_size),
    ):
        if value <= 0 or value % 14:
            problems.append(f"{name} must be a positive multiple of 14, got {value}")
    if any(c <= 0 or c % 14 for c in d.crop) or d.crop[0] > d.height or d.crop[1] > d.width:
        problems.append(f"data.crop must be multiples of 14 within the render size, got {list(d.crop)}")
    if d.num_scenes < 1:
        problems.append(f"data.num_scenes must be >= 1, got {d.num_scenes}")
    if b.embed_dim <= 0 or b.depth <= 0 or b.num_heads <= 0 or b.embed_dim % b.num_heads:
        problems.append(f"backbone: num_heads must divide embed_dim (> 0), got {b.embed_dim}/{b.num_heads}")
    if o.steps < 1 or o.batch_size < 1 or o.lr <= 0 or o.warmup_steps < 0:
        problems.append("optim: steps and batch_size must be >= 1, lr > 0, warmup_steps >= 0")
    if not 0 <= w.mask_ratio < 1:
        problems.append(f"objective.mask_ratio must be in [0, 1), got {w.mask_ratio}")
    if w.sub_grid < 1 or 14 % w.sub_grid:
        problems.append(f"objective.sub_grid must divide 14, got {w.sub_grid}")
    if min(w.geometry, w.clear_pixels, w.masked_pixels, w.consistency) < 0:
        problems.append("objective weights must be >= 0")
    if w.geometry + w.clear_pixels + w.masked_pixels == 0:
        problems.append(
            "objective: enable geometry, clear_pixels or masked_pixels (consistency alone collapses)"
        )
    if w.masked_pixels > 0 and w.mask_ratio == 0:
        problems.append("objective.masked_pixels needs mask_ratio > 0")
    if not cfg.output.endswith(".safetensors"):
        problems.append(f"output must be a .safetensors file, got {cfg.output!r}")
    if problems:
        raise ConfigError("pretrain config: " + "; ".join(problems))


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Apply one ``key.sub=value`` override (value parsed as YAML) to a raw config mapping.

    Raises:
        ConfigError: Without ``=``.
    """
    if "=" not in item:
        raise ConfigError(f"override {item!r}: expected KEY=VALUE, e.g. optim.steps=20")
    key, value = item.split("=", 1)
    node = raw
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {item!r}: {part} is not a section")
    node[parts[-1]] = yaml.safe_load(value)


def load_pretrain_config(path: str | Path | None, overrides: list[str] | None = None) -> PretrainConfig:
    """Read a pretrain YAML file (or the defaults when ``path`` is None) and apply overrides.

    Args:
        path: YAML file.
        overrides: ``key.sub=value`` strings.

    Returns:
        The validated :class:`PretrainConfig`.

    Raises:
        ConfigError: Unreadable file, unknown keys, wrong types or values out of range.
    """
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read pretrain config {path}: {exc}") from exc
    for item in overrides or []:
        apply_override(raw, item)
    cfg = _build(PretrainConfig, raw, "")
    _check(cfg)
    return cfg


def config_to_dict(cfg: PretrainConfig) -> dict[str, Any]:
    """The config as plain JSON-able data."""
    return dataclasses.asdict(cfg)
