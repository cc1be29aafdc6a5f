"""The sections of a training configuration (``model``, ``data``, ``augment``, ``optim``, ``run``, ``eval``,
``ddp``) as typed dataclasses with their defaults, and the two settings derived from them.

Loading and validation live in :mod:`~causal_tune_ros.training.config`, which also exports these names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from causal_tune_ros.band import DEFAULT_HIGH, DEFAULT_LOW, Band
from causal_tune_ros.errors import ConfigError
from causal_tune_ros.training.config_mapping import join_key, to_plain


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

    #: Keys of their own; any other key in a YAML data set goes into ``options``.
    OWN_KEYS: ClassVar[frozenset[str]] = frozenset({"name", "root", "split", "input_size"})

    def describe(self) -> str:
        """``name:root:split`` for logs and metadata."""
        return f"{self.name}:{self.root or ''}:{self.split}"

    @classmethod
    def normalise_raw(cls, raw: dict[str, Any], path: str) -> dict[str, Any]:
        """Collect the reader's keyword arguments, written inline in YAML, into ``options``.

        Raises:
            ConfigError: Without ``name``.
        """
        extra = {k: raw.pop(k) for k in list(raw) if k not in cls.OWN_KEYS and k != "options"}
        options = dict(raw.pop("options", None) or {})
        options.update(extra)
        raw["options"] = options
        if "name" not in raw:
            raise ConfigError(
                f"{join_key(path, 'name')}: missing; name the data set (e.g. synthetic, cityscapes)"
            )
        return raw

    def plain_inline(self, plain: dict[str, Any]) -> dict[str, Any]:
        """The plain mapping with ``options`` written back inline, the way users write them."""
        options = plain.pop("options")
        plain.update(options)
        return plain


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
        return to_plain(self)


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
