"""The DINOv2 vision transformer (ViT-S/B/L/g 14, with or without register tokens), pure PyTorch.

Parameter names are the official facebookresearch ones (``cls_token``, ``pos_embed``,
``blocks.N.attn.qkv.weight``, ...), so an official ``dinov2_*_pretrain.pth`` loads as it is and
:func:`causal_tune_ros.model.weights.save_official_checkpoint` writes that layout back. Hugging Face
folders are converted on load (:mod:`causal_tune_ros.model.weights`).

Images go in ImageNet-normalised, (B, 3, H, W) float, H and W multiples of 14; tokens come out as
(B, 1 + R + N, C): the class token, R register tokens, then the N = (H / 14) * (W / 14) patch tokens row
by row. The Causal-Tune wrapper runs ``prepare_tokens`` and then the public ``blocks`` one by one,
refining the tokens between blocks, and ends with ``norm``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from causal_tune_ros.errors import ConfigError
from causal_tune_ros.model.archs import ARCHS, COMMON_DEFAULTS, CUSTOM_ARCH, parse_arch
from causal_tune_ros.model.layers import FFN_LAYERS, Block, PatchEmbed
from causal_tune_ros.model.weights.load import build_from_weights


def interpolate_pos_embed(
    pos_embed: torch.Tensor, grid_h: int, grid_w: int, *, antialias: bool, offset: float
) -> torch.Tensor:
    """Resample a square grid of position embeddings to ``grid_h`` x ``grid_w`` (bicubic), as DINOv2 does.

    The class-token embedding passes unchanged. At the pretraining grid (square input of the native size)
    the embeddings are returned as they are. Otherwise the patch embeddings are resampled in float32 with
    ``F.interpolate(mode="bicubic", align_corners=False)``:

    - ``offset > 0`` (official DINOv2 without registers: ``interpolate_offset=0.1``, no antialias): the
      resize is given as ``scale_factor = ((grid_h + offset) / M, (grid_w + offset) / M)``, a historical
      kludge kept for compatibility. The output size is the same, but the source sampling positions
      depend on the scale, so values differ slightly from a resize given by output size.
    - ``offset == 0`` (official DINOv2 *with* registers: antialias on, offset 0): resize to
      ``size=(grid_h, grid_w)``. With ``antialias=True`` PyTorch uses its anti-aliased (PIL-style, a = -0.5)
      bicubic kernel, which differs from the plain one (a = -0.75) even when upsampling.

    transformers (5.x) reproduces the registers variant exactly, but its ``Dinov2Model`` (no registers)
    resizes by ``size`` without the 0.1 offset, so it differs from the official model at non-native input
    sizes (identical at the native grid). ``DinoV2(..., interpolate_offset=0.0)`` reproduces it, and
    :meth:`DinoV2.from_pretrained` sets that for Hugging Face sources.

    Args:
        pos_embed: (1, 1 + M * M, C) position embeddings of the pretraining grid M x M.
        grid_h: Patch rows of the input.
        grid_w: Patch columns of the input.
        antialias: Use PyTorch's anti-aliased bicubic kernel.
        offset: See above; 0 resizes by output size.

    Returns:
        (1, 1 + grid_h * grid_w, C) embeddings in ``pos_embed``'s dtype.

    Raises:
        ValueError: If ``pos_embed`` does not hold a square grid.
    """
    num_patches = pos_embed.shape[1] - 1
    side = math.isqrt(num_patches)
    if side * side != num_patches:
        raise ValueError(f"position embeddings hold {num_patches} patches, not a square grid")
    if grid_h == side and grid_w == side:
        return pos_embed
    dim = pos_embed.shape[-1]
    patch_pos = pos_embed[:, 1:].float().reshape(1, side, side, dim).permute(0, 3, 1, 2)
    if offset:
        resize: dict[str, Any] = {"scale_factor": ((grid_h + offset) / side, (grid_w + offset) / side)}
    else:
        resize = {"size": (grid_h, grid_w)}
    patch_pos = F.interpolate(patch_pos, mode="bicubic", align_corners=False, antialias=antialias, **resize)
    patch_pos = patch_pos.to(pos_embed.dtype).permute(0, 2, 3, 1).reshape(1, grid_h * grid_w, dim)
    return torch.cat((pos_embed[:, :1], patch_pos), dim=1)


def interpolation_convention(config: dict[str, Any]) -> str:
    """Name the position-embedding resampling a backbone config uses (recorded in checkpoints).

    Args:
        config: A :attr:`DinoV2.config`.

    Returns:
        ``"official+transformers"`` (register models: both agree), ``"official"`` (+0.1 offset, no
        antialias), ``"transformers"`` (by size, no antialias, no registers) or ``"custom"``.
    """
    registers = int(config.get("num_register_tokens", 0))
    offset, antialias = (
        float(config.get("interpolate_offset", 0.0)),
        bool(config.get("interpolate_antialias")),
    )
    if offset == 0.0 and antialias == (registers > 0):
        return "official+transformers" if registers else "transformers"
    if registers == 0 and offset == 0.1 and not antialias:
        return "official"
    return "custom"


def _resolve_config(arch: str, num_register_tokens: int, overrides: dict[str, Any]) -> dict[str, Any]:
    """Merge arch defaults, common defaults and overrides into a complete, validated config."""
    base, arch_registers = parse_arch(arch)
    if arch_registers is not None:
        if num_register_tokens not in (0, arch_registers):
            raise ConfigError(
                f"arch {arch!r} implies {arch_registers} register tokens but num_register_tokens="
                f"{num_register_tokens} was given"
            )
        num_register_tokens = arch_registers
    known = set(ARCHS["vits14"]) | set(COMMON_DEFAULTS)
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(
            f"unknown DinoV2 option(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    if base == CUSTOM_ARCH:
        absent = [k for k in ("embed_dim", "depth", "num_heads") if k not in overrides]
        if absent:
            raise ConfigError(f"arch 'custom' needs {', '.join(absent)}")
        arch_defaults: dict[str, Any] = {"mlp_ratio": 4.0, "ffn_layer": "mlp"}
    else:
        arch_defaults = ARCHS[base]
    cfg: dict[str, Any] = {"arch": base, "num_register_tokens": int(num_register_tokens)}
    cfg.update(arch_defaults)
    cfg.update(COMMON_DEFAULTS)
    cfg.update(overrides)

    for key in ("embed_dim", "depth", "num_heads", "patch_size", "img_size", "in_chans"):
        if not isinstance(cfg[key], int) or isinstance(cfg[key], bool) or cfg[key] <= 0:
            raise ConfigError(f"{key} must be a positive integer, got {cfg[key]!r}")
    if cfg["num_register_tokens"] < 0:
        raise ConfigError(f"num_register_tokens must be >= 0, got {cfg['num_register_tokens']}")
    if cfg["embed_dim"] % cfg["num_heads"]:
        raise ConfigError(f"num_heads ({cfg['num_heads']}) must divide embed_dim ({cfg['embed_dim']})")
    if cfg["img_size"] % cfg["patch_size"]:
        raise ConfigError(
            f"img_size ({cfg['img_size']}) must be a multiple of patch_size ({cfg['patch_size']})"
        )
    if cfg["ffn_layer"] not in FFN_LAYERS:
        raise ConfigError(f"unknown ffn_layer {cfg['ffn_layer']!r}; expected one of {', '.join(FFN_LAYERS)}")
    if cfg["ffn_layer"] == "swiglu":
        cfg["ffn_layer"] = "swiglufused"  # the same layer in DINOv2
    cfg["mlp_ratio"] = float(cfg["mlp_ratio"])
    if cfg["mlp_ratio"] <= 0:
        raise ConfigError(f"mlp_ratio must be > 0, got {cfg['mlp_ratio']}")
    if cfg["layerscale_init"] is not None:
        cfg["layerscale_init"] = float(cfg["layerscale_init"])
    cfg["layer_norm_eps"] = float(cfg["layer_norm_eps"])
    # Official hub models: without registers (False, 0.1); with registers (True, 0.0).
    if cfg["interpolate_antialias"] is None:
        cfg["interpolate_antialias"] = cfg["num_register_tokens"] > 0
    if cfg["interpolate_offset"] is None:
        cfg["interpolate_offset"] = 0.0 if cfg["num_register_tokens"] > 0 else 0.1
    cfg["interpolate_antialias"] = bool(cfg["interpolate_antialias"])
    cfg["interpolate_offset"] = float(cfg["interpolate_offset"])
    if cfg["interpolate_offset"] < 0:
        raise ConfigError(f"interpolate_offset must be >= 0, got {cfg['interpolate_offset']}")
    order = ["arch", "num_register_tokens", *ARCHS["vits14"], *COMMON_DEFAULTS]
    return {key: cfg[key] for key in order}


class DinoV2(nn.Module):
    """DINOv2 ViT backbone (official parameter names), returning tokens rather than a class prediction.

    Args:
        arch: ``"vits14"``, ``"vitb14"``, ``"vitl14"``, ``"vitg14"`` (SwiGLU FFN) or ``"custom"``; the hub
            forms ``"dinov2_vitb14_reg4"`` / ``"vitb14_reg"`` are accepted and set the register count.
        num_register_tokens: Register tokens (0 or 4 for the released models).
        **overrides: Replace any architecture setting: ``embed_dim``, ``depth``, ``num_heads``,
            ``mlp_ratio``, ``ffn_layer`` (``mlp`` | ``swiglufused``), ``patch_size``, ``img_size``
            (pretraining side, 518 -> a 37 x 37 position grid), ``in_chans``, ``qkv_bias``,
            ``proj_bias``, ``ffn_bias``, ``layerscale_init`` (``None``/0: no LayerScale),
            ``layer_norm_eps``, ``interpolate_antialias``, ``interpolate_offset`` (see
            :func:`interpolate_pos_embed`; default: as the official model with this register count).

    Attributes:
        arch: Base architecture name (``"vits14"``, ..., ``"custom"``).
        embed_dim, depth, num_heads, patch_size, num_register_tokens: The architecture.
        num_prefix_tokens: ``1 + num_register_tokens`` tokens before the patch tokens.
        blocks: ``nn.ModuleList`` of :class:`~causal_tune_ros.model.layers.Block`, each tokens -> tokens.
        norm: Final ``LayerNorm``.

    Raises:
        ConfigError: For an unknown arch or option, or inconsistent values.
    """

    def __init__(self, arch: str = "vits14", num_register_tokens: int = 0, **overrides: Any) -> None:
        super().__init__()
        cfg = _resolve_config(arch, num_register_tokens, overrides)
        self._config = cfg
        self.arch: str = cfg["arch"]
        self.embed_dim: int = cfg["embed_dim"]
        self.depth: int = cfg["depth"]
        self.num_heads: int = cfg["num_heads"]
        self.patch_size: int = cfg["patch_size"]
        self.in_chans: int = cfg["in_chans"]
        self.num_register_tokens: int = cfg["num_register_tokens"]
        self.num_prefix_tokens: int = 1 + self.num_register_tokens
        #: Side of the pretraining patch grid the position embeddings are stored for (37 for 518 px).
        self.pretrain_grid: int = cfg["img_size"] // cfg["patch_size"]

        dim = self.embed_dim
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.pretrain_grid**2, dim))
        if self.num_register_tokens:
            self.register_tokens = nn.Parameter(torch.zeros(1, self.num_register_tokens, dim))
        # Unused at inference (masked-image training only); kept so official checkpoints load and round-trip.
        self.mask_token = nn.Parameter(torch.zeros(1, dim))
        self.patch_embed = PatchEmbed(self.patch_size, self.in_chans, dim)
        self.blocks = nn.ModuleList(
            Block(
                dim,
                self.num_heads,
                mlp_ratio=cfg["mlp_ratio"],
                qkv_bias=cfg["qkv_bias"],
                proj_bias=cfg["proj_bias"],
                ffn_bias=cfg["ffn_bias"],
                ffn_layer=cfg["ffn_layer"],
                layerscale_init=cfg["layerscale_init"],
                layer_norm_eps=cfg["layer_norm_eps"],
            )
            for _ in range(self.depth)
        )
        self.norm = nn.LayerNorm(dim, eps=cfg["layer_norm_eps"])
        # Position embeddings precomputed for one input size (cache_pos_embed); not part of the weights.
        self.register_buffer("_pos_cache", None, persistent=False)
        self._pos_cache_grid: tuple[int, int] | None = None
        self.init_weights()

    # ------------------------------------------------------------------ construction

    @property
    def config(self) -> dict[str, Any]:
        """JSON-able dict of every architecture setting: ``DinoV2(**model.config)`` rebuilds the model."""
        return dict(self._config)

    def init_weights(self) -> None:
        """Random initialisation as in DINOv2 (tests, from-scratch use); pretrained weights overwrite it."""
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        if self.num_register_tokens:
            nn.init.normal_(self.register_tokens, std=1e-6)
        nn.init.zeros_(self.mask_token)
        for module in self.blocks.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    @classmethod
    def from_pretrained(cls, path_or_folder: str | Path, **overrides: Any) -> DinoV2:
        """Build the backbone a weights file or folder describes and load its weights (eval mode, CPU).

        Accepts an official checkpoint (``dinov2_vits14_pretrain.pth``, ``dinov2_vitb14_reg4_pretrain.pth``,
        ...), a Hugging Face folder (``config.json`` + ``model.safetensors``), a hub name
        (``facebook/dinov2-large``, ``dinov2_vitl14``) or a file written by
        :func:`causal_tune_ros.model.weights.save_official_checkpoint`. See
        :func:`causal_tune_ros.model.weights.build_from_weights` for how overrides combine with the file.

        Args:
            path_or_folder: The file or folder.
            **overrides: Settings replacing inferred ones (``num_heads`` for non-standard widths,
                ``interpolate_offset=0.1`` to resample position embeddings of a Hugging Face
                model as the official repository does, ...);
                ``arch=...`` insists on an architecture and the file must then match it.

        Returns:
            The loaded model in eval mode.

        Raises:
            CheckpointError: Missing, unreadable, corrupt or mismatching weights.
        """
        return build_from_weights(cls, path_or_folder, **overrides)

    def extra_repr(self) -> str:
        return f"arch={self.arch!r}, num_register_tokens={self.num_register_tokens}"

    # ------------------------------------------------------------------ forward

    def feature_grid(self, height: int, width: int) -> tuple[int, int]:
        """Patch grid of an input image size.

        Args:
            height: Image height in pixels.
            width: Image width in pixels.

        Returns:
            ``(height // patch_size, width // patch_size)``.

        Raises:
            ValueError: If a side is not a positive multiple of ``patch_size``.
        """
        p = self.patch_size
        if height <= 0 or width <= 0 or height % p or width % p:
            raise ValueError(
                f"DINOv2 input height and width must be positive multiples of the patch size {p}, got "
                f"{height}x{width}; resize or pad to e.g. {max(p, round(height / p) * p)}x"
                f"{max(p, round(width / p) * p)}"
            )
        return height // p, width // p

    def cache_pos_embed(self, height: int, width: int) -> None:
        """Precompute the position embeddings for one input size (frozen backbone, fixed-size export).

        Inputs of that size then use the stored tensor instead of resampling: a constant in an exported
        graph, so no bicubic (possibly anti-aliased) resize op has to be exported to ONNX / TensorRT
        (the TorchScript ONNX exporter has no anti-aliased bicubic). Call again after changing
        ``pos_embed``; other sizes still resample.

        Args:
            height: Input height in pixels (multiple of 14).
            width: Input width in pixels (multiple of 14).

        Raises:
            ValueError: If a side is not a multiple of the patch size.
        """
        grid = self.feature_grid(height, width)
        self._pos_cache_grid = None  # compute from the weights, not from an older cache
        with torch.no_grad():
            self._pos_cache = self.interpolate_pos_encoding(*grid).detach().clone()
        self._pos_cache_grid = grid

    def clear_pos_embed_cache(self) -> None:
        """Forget the size stored by :meth:`cache_pos_embed`."""
        self._pos_cache = None
        self._pos_cache_grid = None

    def interpolate_pos_encoding(self, grid_h: int, grid_w: int) -> torch.Tensor:
        """Position embeddings for a ``grid_h`` x ``grid_w`` patch grid (see :func:`interpolate_pos_embed`).

        Args:
            grid_h: Patch rows.
            grid_w: Patch columns.

        Returns:
            (1, 1 + grid_h * grid_w, C): class-token embedding then patch embeddings, row by row.
        """
        if self._pos_cache is not None and self._pos_cache_grid == (grid_h, grid_w):
            return self._pos_cache
        return interpolate_pos_embed(
            self.pos_embed,
            grid_h,
            grid_w,
            antialias=self._config["interpolate_antialias"],
            offset=self._config["interpolate_offset"],
        )

    def prepare_tokens(self, images: torch.Tensor) -> torch.Tensor:
        """Embed patches, add position embeddings and insert the class and register tokens.

        Args:
            images: (B, in_chans, H, W) ImageNet-normalised float images, H and W multiples of 14.

        Returns:
            (B, 1 + R + N, C) tokens: class, R registers (no position embedding, as in DINOv2), N patches.

        Raises:
            ValueError: For a tensor that is not (B, in_chans, H, W) or sides that are not multiples of 14.
        """
        if images.ndim != 4 or images.shape[1] != self.in_chans:
            raise ValueError(
                f"expected images of shape (B, {self.in_chans}, H, W), got {tuple(images.shape)}"
            )
        B, _, H, W = images.shape
        grid_h, grid_w = self.feature_grid(int(H), int(W))
        pos = self.interpolate_pos_encoding(grid_h, grid_w).to(images.dtype)
        patches = self.patch_embed(images) + pos[:, 1:]
        parts = [(self.cls_token + pos[:, :1]).expand(B, -1, -1)]
        if self.num_register_tokens:
            parts.append(self.register_tokens.expand(B, -1, -1))
        parts.append(patches)
        return torch.cat(parts, dim=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """All tokens after the last block and the final LayerNorm (== transformers' ``last_hidden_state``).

        Args:
            images: (B, in_chans, H, W) ImageNet-normalised float images, H and W multiples of 14.

        Returns:
            (B, 1 + R + N, C) normalised tokens.

        Raises:
            ValueError: For a bad image shape (see :meth:`prepare_tokens`).
        """
        x = self.prepare_tokens(images)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def _layer_indices(self, layers: int | Sequence[int]) -> list[int]:
        """Normalise ``layers`` (last n, or indices, negative allowed) to sorted-as-given block indices."""
        if isinstance(layers, int) and not isinstance(layers, bool):
            if not 1 <= layers <= self.depth:
                raise ValueError(f"layers={layers}: ask for between 1 and {self.depth} last layers")
            return list(range(self.depth - layers, self.depth))
        indices = []
        for index in layers:
            if not -self.depth <= int(index) < self.depth:
                raise ValueError(f"layer index {index} out of range for a {self.depth}-block model")
            indices.append(int(index) % self.depth)
        if not indices:
            raise ValueError("layers is empty")
        return indices

    def get_intermediate_layers(
        self,
        images: torch.Tensor,
        layers: int | Sequence[int] = 1,
        norm: bool = True,
        reshape: bool = False,
        return_class_token: bool = False,
    ) -> tuple[Any, ...]:
        """Patch tokens after chosen blocks (as DINOv2's ``get_intermediate_layers``).

        Blocks after the last one asked for are not run.

        Args:
            images: (B, in_chans, H, W) ImageNet-normalised images, H and W multiples of 14.
            layers: ``n`` for the last n blocks, or a sequence of block indices (0-based, negative allowed),
                returned in the order given.
            norm: Apply the final LayerNorm to each output (as DINOv2 does by default).
            reshape: Return patch tokens as (B, C, H / 14, W / 14) maps instead of (B, N, C).
            return_class_token: Return ``(patch_tokens, class_token (B, C))`` pairs instead.

        Returns:
            One entry per requested layer: patch tokens (register and class tokens dropped), or pairs.

        Raises:
            ValueError: For a bad image shape or layer selection.
        """
        indices = self._layer_indices(layers)
        wanted = set(indices)
        x = self.prepare_tokens(images)  # validates the shape first
        B, _, H, W = images.shape
        grid_h, grid_w = H // self.patch_size, W // self.patch_size
        captured: dict[int, torch.Tensor] = {}
        for i, block in enumerate(self.blocks[: max(indices) + 1]):
            x = block(x)
            if i in wanted:
                captured[i] = x
        outputs = []
        for i in indices:
            out = self.norm(captured[i]) if norm else captured[i]
            patches = out[:, self.num_prefix_tokens :]
            if reshape:
                patches = patches.reshape(B, grid_h, grid_w, -1).permute(0, 3, 1, 2).contiguous()
            outputs.append((patches, out[:, 0]) if return_class_token else patches)
        return tuple(outputs)


def load_backbone(path: str | Path, **overrides: Any) -> DinoV2:
    """The same as :meth:`DinoV2.from_pretrained` (kept as a function for the package's public API).

    Args:
        path: Weights file, Hugging Face folder, or hub name.
        **overrides: ``DinoV2`` keyword arguments replacing inferred settings.

    Returns:
        The loaded model in eval mode.

    Raises:
        CheckpointError: Missing, unreadable, corrupt or mismatching weights.
    """
    return DinoV2.from_pretrained(path, **overrides)
