"""Typed configuration of ``causal-tune train`` / ``causal-tune eval``, loaded from YAML and validated.

A config file is a nested mapping whose sections mirror the dataclasses below (``model``, ``data``,
``augment``, ``optim``, ``run``, ``eval``, ``ddp``). Every key is checked: an unknown key, a value of the
wrong type or out of range raises :class:`~causal_tune_ros.errors.ConfigError` whose message starts with the
dotted path of the offending key (``optim.lr: ...``), so the user knows where to look.

Command-line overrides (``--set optim.lr=1e-4``) are applied to the raw mapping before validation, the
value parsed as YAML (``--set model.tuner.layers=[0,2]`` works).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from causal_tune_ros.band import DEFAULT_HIGH, DEFAULT_LOW, Band
from causal_tune_ros.errors import ConfigError

# ---------------------------------------------------------------------------------------------- sections


@dataclass
class BackboneConfig:
    """The frozen DINOv2 backbone: official weights, or a random-init ViT (demo and tests).

    Attributes:
        weights: Official ``dinov2_*_pretrain.pth`` file or a Hugging Face ``facebook/dinov2-*`` folder.
            ``None`` builds a random-init ViT from ``arch`` + ``overrides`` (then the checkpoint embeds it).
        arch: ``vits14``, ``vitb14``, ``vitl14`` or ``vitg14`` (ignored when ``weights`` is set).
        num_register_tokens: Register tokens of a random-init backbone.
        overrides: ``DinoV2`` keyword overrides (``embed_dim``, ``depth``, ``num_heads``, ...).
        init_seed: Seed of the random initialisation, so every rank and every resume builds the same one.
    """

    weights: str | None = None
    arch: str = "vits14"
    num_register_tokens: int = 0
    overrides: dict[str, Any] = field(default_factory=dict)
    init_seed: int = 0


@dataclass
class TunerConfig:
    """Causal-Tune blocks (docs/METHOD.md): which layers, how many tokens, rank, initial scale, operator.

    Attributes:
        layers: Blocks refined (``None``: all).
        num_tokens: Tokens per layer ``m``.
        rank: Token rank ``r``.
        scale_init: Initial refinement scale ``s``.
        operator: ``spatial`` (the paper as written: DCT over the patch grid, Gaussian band-pass, exportable),
            ``channel`` (DCT of each token's channels on a square grid, as the released code transforms;
            exportable), ``released`` (the released code's arithmetic, for reproducing its numbers only) or
            ``rein`` (Rein's refinement: the same tokens on the patch tokens, no DCT, no band-pass).
        attention_sink: Token 0's value is dropped (released: true).
        token_init: Token init range, ``dim`` or ``lora`` (released: ``lora``).
        token_init_patch: Patch size in that range (``null``: the backbone's; released: 16).
        linear_bias_init: ``zero`` or ``default`` (PyTorch's; released) for the projections' biases.
        frozen: Freeze the tuner at identity (scale 0, no gradients): only the decode head trains (the
            "decode head only" baseline of the domain-generalisation experiment).
    """

    layers: list[int] | None = None
    num_tokens: int = 100
    rank: int = 16
    scale_init: float = 1e-3
    operator: Literal["spatial", "channel", "released", "rein"] = "spatial"
    attention_sink: bool = False
    token_init: Literal["dim", "lora"] = "dim"
    token_init_patch: int | None = None
    linear_bias_init: Literal["zero", "default"] = "zero"
    frozen: bool = False


@dataclass
class HeadConfig:
    """Decode head.

    Attributes:
        type: ``light`` (the real-time default, per-pixel cross-entropy) or ``mask2former`` (the paper's
            accuracy option, trained with Mask2Former's set criterion); any name in ``model.heads.HEADS``.
        options: Keyword arguments of the head's constructor (``channels``, ``num_queries``, ...).
        loss_options: Keyword arguments of the set criterion of mask heads (``num_points``, weights).
        layers: Backbone blocks whose outputs feed the head (``None``: evenly spaced, ``[5, 11, 17, 23]``
            for ViT-L; the released code: ``[7, 11, 15, 23]``).
        final_norm: Apply the backbone's final LayerNorm to those outputs (the released code does not).
    """

    type: str = "light"
    options: dict[str, Any] = field(default_factory=dict)
    loss_options: dict[str, Any] = field(default_factory=dict)
    layers: list[int] | None = None
    final_norm: bool = True


@dataclass
class ModelConfig:
    """Backbone, tuner, head and the frequency band used in training (recorded in the checkpoint)."""

    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    tuner: TunerConfig = field(default_factory=TunerConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    band: list[float] = field(default_factory=lambda: [DEFAULT_LOW, DEFAULT_HIGH])


@dataclass
class DatasetConfig:
    """One data set: ``build_dataset(name, root, split, **options)``.

    In YAML, keys other than ``name``, ``root``, ``split`` and ``input_size`` are collected into
    ``options`` (e.g. the synthetic set's ``num_samples``, ``height``, ``width``, ``conditions``, ``seed``).
    ``input_size`` (evaluation only) overrides ``eval.input_size`` for this set: data sets of different
    resolutions are tested at different sizes (as the paper's configs do).
    """

    name: str = "synthetic"
    root: str | None = None
    split: str = "train"
    input_size: list[int] | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """``name:root:split`` for logs and metadata."""
        return f"{self.name}:{self.root or ''}:{self.split}"


@dataclass
class DataConfig:
    """Training / validation data and the class set (its length is the number of output classes).

    Attributes:
        train: Training set.
        val: Validation set (``None``: no validation).
        classes: Class-set YAML (``None``: the packaged 19 Cityscapes classes).
        num_workers: DataLoader worker processes for training batches.
        cache: Keep decoded / rendered training and validation samples in memory after their first use
            (small synthetic sets, whose rendering costs more than the model; use with ``num_workers: 0``,
            since every worker would hold its own copy).
    """

    train: DatasetConfig = field(default_factory=DatasetConfig)
    val: DatasetConfig | None = None
    classes: str | None = None
    num_workers: int = 0
    cache: bool = False


@dataclass
class AugmentConfig:
    """Random scale, crop, flip and photometric distortion (mmseg's recipe, which Rein/Causal-Tune use).

    Attributes:
        crop_size: ``[h, w]`` of training crops. Crops are padded (image 0, label 255) to a multiple of the
            patch size (14) before the model sees them, so the paper's 512 works.
        base_size: ``[h, w]`` box the image is first resized into, keeping its aspect ratio (mmseg's
            ``img_scale``); ``None`` keeps the native size.
        scale_range: Uniform random factor applied after ``base_size``.
        cat_max_ratio: Re-draw a crop (up to 10 times) while one class covers more than this share of it.
        hflip_prob: Probability of a horizontal flip.
        photometric: Apply brightness / contrast / saturation / hue jitter (each with probability 0.5).
        short_edge: When set, replaces ``base_size`` and ``scale_range``: the short edge is resized to one
            of these lengths, drawn uniformly (mmseg's ``RandomChoiceResize`` + ``ResizeShortestEdge``).
        max_long_edge: With ``short_edge``: the long edge never exceeds this (the short edge gives way).
    """

    crop_size: list[int] = field(default_factory=lambda: [512, 512])
    base_size: list[int] | None = None
    scale_range: list[float] = field(default_factory=lambda: [0.5, 2.0])
    cat_max_ratio: float = 0.75
    hflip_prob: float = 0.5
    photometric: bool = True
    brightness_delta: float = 32.0
    contrast_range: list[float] = field(default_factory=lambda: [0.5, 1.5])
    saturation_range: list[float] = field(default_factory=lambda: [0.5, 1.5])
    hue_delta: float = 18.0
    short_edge: list[int] | None = None
    max_long_edge: int | None = None


@dataclass
class OptimConfig:
    """AdamW + poly schedule with optional linear warmup.

    Attributes:
        batch_size: Images per optimizer step over all processes and accumulation steps (the paper's
            "batch 4"); each process loads ``batch_size / (world_size * grad_accum)`` per micro-batch.
        grad_accum: Micro-batches accumulated per optimizer step.
        iterations: Optimizer steps in total.
        warmup_iters: Linear warmup from ``warmup_ratio * lr`` to ``lr`` over this many steps.
        poly_power: Exponent of the poly decay ``(1 - step / iterations) ** power``.
        min_lr: Floor of the decayed learning rate.
        grad_clip: Max gradient norm, or ``None`` for no clipping.
        no_decay_keys: Parameters whose name contains one of these get no weight decay.
        no_decay_1d: 1-D parameters (biases, norm weights, the scale) get no weight decay either.
        no_decay_norms: Parameters of normalisation layers (LayerNorm, GroupNorm, BatchNorm) get none
            (mmcv's ``norm_decay_mult=0``, as the released recipe, which decays other biases).
    """

    lr: float = 1e-4
    weight_decay: float = 0.05
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    batch_size: int = 4
    grad_accum: int = 1
    iterations: int = 40000
    warmup_iters: int = 0
    warmup_ratio: float = 1e-6
    poly_power: float = 0.9
    min_lr: float = 0.0
    grad_clip: float | None = None
    no_decay_keys: list[str] = field(default_factory=lambda: ["token"])
    no_decay_1d: bool = True
    no_decay_norms: bool = False


def micro_batch_size(optim: OptimConfig, world_size: int) -> int:
    """Images each process loads per micro-batch: ``batch_size / (world_size * grad_accum)``.

    ``optim.batch_size`` is the total over all processes and accumulation steps, so a config keeps the
    same effective batch (and learning-rate schedule) on 1 GPU or many.

    Args:
        optim: The optimiser settings.
        world_size: Number of training processes (``torchrun --nnodes x --nproc_per_node``).

    Raises:
        ConfigError: If ``world_size < 1`` or the batch does not split evenly; the message names the
            process counts that work and the override that fits ``world_size``.
    """
    if world_size < 1:
        raise ConfigError(f"number of processes must be >= 1, got {world_size}")
    per_step = world_size * optim.grad_accum
    if optim.batch_size % per_step:
        fits = [n for n in range(1, optim.batch_size + 1) if optim.batch_size % (n * optim.grad_accum) == 0]
        raise ConfigError(
            f"optim.batch_size ({optim.batch_size}) is the batch over all processes and must be a multiple "
            f"of processes x grad_accum ({world_size} x {optim.grad_accum}); with this config use "
            f"{', '.join(map(str, fits))} process(es), or --set optim.batch_size={per_step} "
            f"(or a multiple) for {world_size}"
        )
    return optim.batch_size // per_step


@dataclass
class RunConfig:
    """Where and how the run happens.

    Attributes:
        output_dir: Run folder: ``checkpoints/``, ``metrics.csv``, ``tensorboard/``, ``model.safetensors``.
        seed: Global seed (data order, augmentation, dropout).
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        amp: ``auto`` (bf16 on CUDA when supported, else fp16; off on CPU), ``off``, ``bf16``, ``fp16``.
        log_every: Steps between log lines / CSV rows.
        val_every: Steps between validations (0: only after the last step; needs ``data.val``).
        checkpoint_every: Steps between training checkpoints (0: only the final one).
        keep_checkpoints: Step checkpoints kept on disk (older ones are deleted; 0 keeps all).
        progress: ``auto`` (a tqdm bar on a terminal, log lines otherwise), ``bar`` or ``log``.
        tensorboard: Write TensorBoard events when ``torch.utils.tensorboard`` imports.
        dump_rank_state: Testing aid: every rank saves its final trainable state to
            ``output_dir/rank_state/rank<k>.pt``.
    """

    output_dir: str = "runs/causal_tune"
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: Literal["auto", "off", "bf16", "fp16"] = "auto"
    log_every: int = 20
    val_every: int = 0
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    progress: Literal["auto", "bar", "log"] = "auto"
    tensorboard: bool = True
    dump_rank_state: bool = False


@dataclass
class EvalConfig:
    """Inference settings of validation and of ``causal-tune eval --config``.

    Attributes:
        sliding_window: Sliding-window inference (logits averaged over overlaps) instead of whole images.
        window: ``[h, w]`` window (the paper: 512).
        stride: ``[h, w]`` stride (the paper: 341).
        input_size: ``[h, w]`` box every image is resized into before inference, keeping its aspect ratio
            (mmseg's test ``Resize(keep_ratio=True)``; the box is read long side against long side).
            ``None``: native size, padded to a multiple of 14. Scores are always at the label's resolution.
        batch_size: Images per forward pass (whole-image mode with equal sizes only).
        max_samples: Validate on the first N samples only (``None``: all).
        bands: Extra band settings ``[low, high]`` evaluated by ``causal-tune eval --config``.
        sets: Evaluation data sets listed by the paper's configs.
    """

    sliding_window: bool = False
    window: list[int] = field(default_factory=lambda: [512, 512])
    stride: list[int] = field(default_factory=lambda: [341, 341])
    input_size: list[int] | None = None
    batch_size: int = 1
    max_samples: int | None = None
    bands: list[list[float]] = field(default_factory=list)
    sets: list[DatasetConfig] = field(default_factory=list)


@dataclass
class DDPConfig:
    """DistributedDataParallel settings (used only under ``torchrun`` with more than one process)."""

    find_unused_parameters: bool = False
    sync_batchnorm: bool = True
    backend: Literal["auto", "nccl", "gloo"] = "auto"


@dataclass
class TrainConfig:
    """The whole ``causal-tune train`` configuration."""

    name: str = "causal_tune"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    ddp: DDPConfig = field(default_factory=DDPConfig)

    @property
    def band(self) -> Band:
        """The training band as a validated :class:`Band`."""
        return Band(*self.model.band)

    def to_dict(self) -> dict[str, Any]:
        """Plain (JSON/YAML-able) mapping that :func:`config_from_dict` turns back into this config."""
        return _to_plain(self)


def weight_decay_groups(model: Any, optim: OptimConfig) -> tuple[list[Any], list[Any]]:
    """Split a model's trainable parameters into (decayed, not decayed) as ``optim`` says.

    A parameter gets no weight decay when its name contains one of ``optim.no_decay_keys``, when it is
    1-D and ``optim.no_decay_1d``, or when it belongs to a LayerNorm / GroupNorm / BatchNorm and
    ``optim.no_decay_norms``.

    Args:
        model: A module with ``trainable_parameters()`` (the segmenter).
        optim: The ``optim`` section.

    Returns:
        ``(decay, no_decay)`` parameter lists, in ``named_parameters`` order.
    """
    from torch import nn

    norms = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm)
    trainable = {id(p) for p in model.trainable_parameters()}
    in_norm = {
        id(p) for module in model.modules() if isinstance(module, norms) for p in module.parameters(False)
    }
    decay: list[Any] = []
    no_decay: list[Any] = []
    for name, param in model.named_parameters():
        if id(param) not in trainable:
            continue
        exempt = (
            any(key in name for key in optim.no_decay_keys)
            or (optim.no_decay_1d and param.ndim <= 1)
            or (optim.no_decay_norms and id(param) in in_norm)
        )
        (no_decay if exempt else decay).append(param)
    return decay, no_decay


# ---------------------------------------------------------------------------------------------- loading


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
    cfg = _build(TrainConfig, raw, "")
    _check_ranges(cfg)
    return cfg


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> None:
    """Apply ``dotted.key=value`` overrides to a raw config mapping in place.

    Raises:
        ConfigError: An override without ``=`` or one that descends into a non-mapping.
    """
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"override {item!r}: expected KEY=VALUE, e.g. optim.lr=1e-4")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {key}: value {text!r} is not valid YAML ({exc})") from exc
        node = raw
        parts = key.split(".")
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"{'.'.join(parts[: depth + 1])}: is not a section, cannot set {key}")
            node = child
        node[parts[-1]] = value


# ---------------------------------------------------------------------------------------------- machinery

_DATASET_KEYS = {"name", "root", "split", "input_size"}


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _build(cls: type, raw: Any, path: str) -> Any:
    """Turn ``raw`` into dataclass ``cls``, checking keys and value types recursively."""
    where = path or "config"
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__} {raw!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    raw = dict(raw)
    if cls is DatasetConfig:
        # Inline extra keys are the reader's keyword arguments.
        extra = {k: raw.pop(k) for k in list(raw) if k not in _DATASET_KEYS and k != "options"}
        options = dict(raw.pop("options", None) or {})
        options.update(extra)
        raw["options"] = options
        if "name" not in raw:
            raise ConfigError(
                f"{_join(path, 'name')}: missing; name the data set (e.g. synthetic, cityscapes)"
            )
    unknown = [k for k in raw if k not in names]
    if unknown:
        raise ConfigError(f"{_join(path, str(unknown[0]))}: unknown key; known keys here: {', '.join(names)}")
    values = {k: _coerce(hints[k], raw[k], _join(path, k)) for k in raw}
    return cls(**values)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def _coerce(tp: Any, value: Any, path: str) -> Any:
    """Check / convert one value against a type hint; raise ConfigError naming ``path``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"{path}: must not be null")
        inner = [a for a in args if a is not type(None)]
        errors = []
        for option in inner:
            try:
                return _coerce(option, value, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0])
    if origin is Literal:
        if value is False and "off" in args:
            value = "off"  # YAML 1.1 reads a bare `off` as false
        if value not in args:
            raise ConfigError(f"{path}: must be one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, path)
    if value is None:
        raise ConfigError(f"{path}: must not be null (expected {_type_name(tp)})")
    if origin is list:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{path}: expected a list, got {type(value).__name__} {value!r}")
        (item_tp,) = args or (Any,)
        return [_coerce(item_tp, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {type(value).__name__} {value!r}")
        return {str(k): v for k, v in value.items()}
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if tp is float:
        # YAML 1.1 reads "1e-4" (no dot) as a string; accept it as the number it obviously is.
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"{path}: expected a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return str(value)
    raise ConfigError(f"{path}: unsupported type {tp!r}")  # pragma: no cover - a bug in this module


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


def _to_plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {f.name: _to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        if isinstance(obj, DatasetConfig):
            # Written back inline, the way users write them.
            options = out.pop("options")
            out.update(options)
        return out
    if isinstance(obj, list | tuple):
        return [_to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    return obj
