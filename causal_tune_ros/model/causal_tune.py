"""The segmenter: a frozen DINOv2 backbone, Causal-Tune refinement (:mod:`.tuner`) and a decode head.

Images go in as float32 RGB in [0, 1] (ImageNet normalisation happens inside the graph, so exported
engines take raw images); the run-time band selects the causal frequency component (docs/METHOD.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from causal_tune_ros.errors import ConfigError
from causal_tune_ros.model.band_pass import gaussian_band_pass, released_causal_weight
from causal_tune_ros.model.tuner import (
    LINEAR_BIAS_INITS,
    OPERATORS,
    TOKEN_INITS,
    CausalTune,
    Prepared,
    evenly_spaced_layers,
    is_being_exported,
)

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LINEAR_BIAS_INITS",
    "OPERATORS",
    "TOKEN_INITS",
    "CausalTune",
    "CausalTuneSegmenter",
    "Prepared",
    "evenly_spaced_layers",
]

#: ImageNet statistics DINOv2 was trained with (RGB, images in [0, 1]).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class CausalTuneSegmenter(nn.Module):
    """Frozen DINOv2 backbone + Causal-Tune refinement + decode head: images in [0, 1] -> class logits.

    Args:
        backbone: A :class:`~causal_tune_ros.model.dinov2.DinoV2` (or any module with ``prepare_tokens``,
            ``blocks``, ``norm``, ``embed_dim``, ``depth``, ``patch_size``, ``num_prefix_tokens``). It is
            frozen here: ``requires_grad`` off and kept in eval mode by :meth:`train`.
        head: Decode head with ``num_inputs``, ``in_channels``, ``num_classes``, ``config`` and
            ``forward(features, out_size)`` (e.g. :class:`~causal_tune_ros.model.heads.LightHead`).
        layers: Blocks refined by Causal-Tune (indices, negative allowed); ``None`` = all blocks.
        num_tokens: Tokens per layer ``m`` (100).
        rank: Token rank ``r`` (16).
        scale_init: Initial refinement scale ``s`` (1e-3).
        feature_layers: Blocks whose (refined, final-LayerNormed) patch tokens feed the head; ``None`` =
            ``head.num_inputs`` evenly spaced blocks (:func:`evenly_spaced_layers`).
        band_pass_enabled: When ``False`` the refinement sees the full spectrum ``X`` instead of ``G * X``
            whatever band is passed (the "filter off" ablation). Also settable later as an attribute.
        feature_norm: Apply the backbone's final LayerNorm to the head's input grids (the released code
            feeds them without it).
        operator, attention_sink, token_init, token_init_patch, linear_bias_init: See :class:`CausalTune`.

    A head with ``link_queries`` (Rein's query linking, :class:`~.mask2former_head.Mask2FormerHead`) gets
    the tuner's tokens (``tokens=`` keyword); its ``num_queries`` must equal ``num_tokens``.

    Attributes:
        backbone, tuner (:class:`CausalTune`), head, num_classes, feature_layers, band_pass_enabled.

    Raises:
        ConfigError: For layer indices out of range, a head that does not fit the backbone or the tuner, or
            a bad tuner option.
    """

    def __init__(
        self,
        backbone: nn.Module,
        head: nn.Module,
        layers: Sequence[int] | None = None,
        num_tokens: int = 100,
        rank: int = 16,
        scale_init: float = 1e-3,
        feature_layers: Sequence[int] | None = None,
        band_pass_enabled: bool = True,
        feature_norm: bool = True,
        operator: str = "spatial",
        attention_sink: bool = False,
        token_init: str = "dim",
        token_init_patch: int | None = None,
        linear_bias_init: str = "zero",
    ) -> None:
        super().__init__()
        depth = int(backbone.depth)
        embed_dim = int(backbone.embed_dim)
        tuned = sorted(
            {self._layer_index(i, depth, "layers") for i in (range(depth) if layers is None else layers)}
        )
        if not tuned:
            raise ConfigError("layers is empty; pass None to tune every block")
        if feature_layers is None:
            feature_layers = evenly_spaced_layers(depth, int(head.num_inputs))
        feature_layers = [self._layer_index(i, depth, "feature_layers") for i in feature_layers]
        if len(feature_layers) != int(head.num_inputs):
            raise ConfigError(
                f"the head takes {head.num_inputs} feature grids but feature_layers has {len(feature_layers)}"
            )
        if int(head.in_channels) != embed_dim:
            raise ConfigError(f"head in_channels {head.in_channels} != backbone embed_dim {embed_dim}")

        self.backbone = backbone
        for p in self.backbone.parameters():
            p.requires_grad_(False)
        self.backbone.eval()
        self.tuner = CausalTune(
            embed_dim,
            tuned,
            num_tokens=num_tokens,
            rank=rank,
            scale_init=scale_init,
            patch_size=backbone.patch_size,
            operator=operator,
            attention_sink=attention_sink,
            token_init=token_init,
            token_init_patch=token_init_patch,
            linear_bias_init=linear_bias_init,
        )
        self.link_queries = bool(getattr(head, "link_queries", False))
        if self.link_queries and int(head.num_queries) != num_tokens:
            raise ConfigError(
                f"the head links its {head.num_queries} queries to the tuner's tokens, so num_queries must "
                f"equal num_tokens ({num_tokens})"
            )
        self.head = head
        self.num_classes: int = int(head.num_classes)
        self.feature_layers: tuple[int, ...] = tuple(feature_layers)
        self.band_pass_enabled = bool(band_pass_enabled)
        self.feature_norm = bool(feature_norm)
        # Normalisation lives in the graph (exported engines take [0, 1] RGB); not saved in checkpoints.
        self.register_buffer("pixel_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @staticmethod
    def _layer_index(index: int, depth: int, what: str) -> int:
        index = int(index)
        if not -depth <= index < depth:
            raise ConfigError(f"{what}: block index {index} out of range for a {depth}-block backbone")
        return index % depth

    # ------------------------------------------------------------------ configuration

    @property
    def config(self) -> dict[str, Any]:
        """JSON-able dict of everything but the backbone needed to rebuild this model.

        ``CausalTuneSegmenter(backbone, build_head(c["head"]), **{k: c[k] for k in CONSTRUCTOR_KEYS})``.
        """
        return {
            "layers": list(self.tuner.layers),
            "num_tokens": self.tuner.num_tokens,
            "rank": self.tuner.rank,
            "scale_init": self.tuner.scale_init,
            "feature_layers": list(self.feature_layers),
            "band_pass_enabled": self.band_pass_enabled,
            "feature_norm": self.feature_norm,
            "operator": self.tuner.operator,
            "attention_sink": self.tuner.attention_sink,
            "token_init": self.tuner.token_init,
            "token_init_patch": self.tuner.token_init_patch,
            "linear_bias_init": self.tuner.linear_bias_init,
            "num_classes": self.num_classes,
            "head": dict(self.head.config),
        }

    #: Keys of :attr:`config` that are constructor arguments (the rest: ``head``, ``num_classes``).
    #: Keys missing from older checkpoints take the constructor defaults (the behaviour they were made with).
    CONSTRUCTOR_KEYS = (
        "layers",
        "num_tokens",
        "rank",
        "scale_init",
        "feature_layers",
        "band_pass_enabled",
        "feature_norm",
        "operator",
        "attention_sink",
        "token_init",
        "token_init_patch",
        "linear_bias_init",
    )

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The parameters an optimiser should update: tokens, projections, scale and head.

        Returns:
            List of parameters with ``requires_grad`` set (the backbone contributes none).
        """
        return [p for p in (*self.tuner.parameters(), *self.head.parameters()) if p.requires_grad]

    def train(self, mode: bool = True) -> CausalTuneSegmenter:
        """Set training mode on the tuner and head; the frozen backbone always stays in eval mode.

        Args:
            mode: Training (True) or evaluation (False).

        Returns:
            ``self``.
        """
        super().train(mode)
        self.backbone.eval()
        return self

    # ------------------------------------------------------------------ forward

    def _band_mask(
        self, band: torch.Tensor | None, grid: tuple[int, int], like: torch.Tensor
    ) -> torch.Tensor | None:
        if band is not None and not isinstance(band, torch.Tensor):
            raise TypeError(
                f"band must be a float32 tensor (2,) = (r_low, r_high) or None, got {type(band).__name__}"
            )
        if band is None or not self.band_pass_enabled or self.tuner.operator == "rein":
            return None
        h, w = self.tuner.spectrum_grid(grid)
        if self.tuner.operator == "released":  # fixed weight: the band does not enter
            return released_causal_weight(h, w, dtype=like.dtype, device=like.device)
        mask = gaussian_band_pass(h, w, band.to(device=like.device, dtype=torch.float32))
        return mask.to(like.dtype)

    def _check_images(self, images: torch.Tensor) -> None:
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"images must be a (B, 3, H, W) RGB tensor in [0, 1], got {shape}")
        if not images.dtype.is_floating_point:
            raise ValueError(f"images must be floating point in [0, 1], got {images.dtype}")

    def features(self, images: torch.Tensor, band: torch.Tensor | None) -> list[torch.Tensor]:
        """Run the refined backbone and return the head's input grids.

        Args:
            images: (B, 3, H, W) float RGB in [0, 1], H and W multiples of the patch size (14).
            band: (2,) float tensor ``(r_low, r_high)``, or ``None`` for the full, unfiltered spectrum.

        Returns:
            One (B, C, H / 14, W / 14) grid per ``feature_layers`` entry: refined tokens after that block,
            final LayerNorm applied when ``feature_norm`` (a channel-last view, no copy).

        Raises:
            ValueError: For a bad image tensor (shape, dtype, sides not multiples of 14).
            TypeError: If ``band`` is neither a tensor nor ``None``.
        """
        self._check_images(images)
        B, _, H, W = images.shape
        backbone = self.backbone
        x = backbone.prepare_tokens((images - self.pixel_mean) / self.pixel_std)
        # int(): exported graphs are built for one input size; keeps tracers from turning sides into tensors.
        grid = (int(H) // backbone.patch_size, int(W) // backbone.patch_size)
        prefix = backbone.num_prefix_tokens
        mask = self._band_mask(band, grid, x)
        prepared = self.tuner.prepare()
        tuned = self.tuner._slot
        wanted = set(self.feature_layers)
        captured: dict[int, torch.Tensor] = {}
        for i, block in enumerate(backbone.blocks[: max(self.feature_layers) + 1]):
            x = block(x)
            if i in tuned:
                x = self.tuner.refine(x, i, grid, prefix, mask, prepared)
            if i in wanted:
                captured[i] = x
        grids = []
        for i in self.feature_layers:
            tokens = backbone.norm(captured[i]) if self.feature_norm else captured[i]
            patches = tokens[:, prefix:]
            grids.append(patches.reshape(B, grid[0], grid[1], -1).permute(0, 3, 1, 2))
        return grids

    def forward(self, images: torch.Tensor, band: torch.Tensor | None) -> torch.Tensor:
        """Segment a batch.

        Args:
            images: (B, 3, H, W) float32 RGB in [0, 1], H and W multiples of 14.
            band: (2,) float32 ``(r_low, r_high)`` (a run-time input; exported graphs keep it as one), or
                ``None`` to run with the band-pass off.

        Returns:
            (B, num_classes, H // 4, W // 4) logits.

        Raises:
            ValueError: For a bad image tensor.
            TypeError: If ``band`` is neither a tensor nor ``None``.
            ConfigError: When exported (ONNX, ``torch.export``) with ``operator="released"``.
        """
        if self.tuner.operator == "released" and is_being_exported():
            raise ConfigError(
                "operator 'released' cannot be exported: its spectrum weight is fixed, so an engine's band "
                "input would do nothing, and its complex inverse FFT is no deployable op; it exists to "
                "reproduce the released code's numbers in PyTorch. Export a model with operator 'spatial' "
                "or 'channel'"
            )
        feats = self.features(images, band)
        out_size = (images.shape[-2] // 4, images.shape[-1] // 4)
        if self.link_queries:
            return self.head(feats, out_size, tokens=self.tuner.tokens())
        return self.head(feats, out_size)
