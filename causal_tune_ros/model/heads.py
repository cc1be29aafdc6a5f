"""Decode heads that turn ViT feature grids into per-pixel class logits.

:class:`LightHead` is the default real-time head (docs/METHOD.md): features from four evenly spaced layers,
each projected by a 1x1 convolution + normalisation + ReLU, concatenated and fused by another 1x1
convolution, classified per pixel and brought to 1/4 of the input resolution by bilinear interpolation.
It uses only Conv2d, BatchNorm/GroupNorm, ReLU, concat and resize, all native TensorRT layers.

Every head exposes ``num_classes``, ``in_channels``, ``num_inputs`` and a JSON-able ``config`` (with a
``"type"`` entry) that :func:`build_head` turns back into the same head.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from causal_tune_ros.errors import ConfigError
from causal_tune_ros.model.head_checks import check_dropout, check_feature_grids, check_positive_ints
from causal_tune_ros.model.mask2former_head import Mask2FormerHead

__all__ = ["HEADS", "LightHead", "build_head"]

_NORMS = ("bn", "gn")


def _norm_layer(kind: str, channels: int) -> nn.Module:
    if kind == "bn":
        return nn.BatchNorm2d(channels)
    # GroupNorm with the largest of 32, 16, ... groups that divides the width (batch-size independent).
    groups = next(g for g in (32, 16, 8, 4, 2, 1) if channels % g == 0)
    return nn.GroupNorm(groups, channels)


class _ConvNormAct(nn.Sequential):
    """1x1 convolution (no bias: the norm has one) -> BatchNorm/GroupNorm -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int, norm: str) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False)
        self.norm = _norm_layer(norm, out_channels)
        self.act = nn.ReLU(inplace=True)


class LightHead(nn.Module):
    """Light multi-layer segmentation head (the default; TensorRT friendly).

    The per-pixel classifier runs at the feature-grid resolution and the logits are then resized
    bilinearly to the output size. Because both the 1x1 classifier and bilinear interpolation are linear
    (and the interpolation weights sum to one, so the bias passes through), this equals resizing the fused
    features first and classifying every output pixel, at about (14 / 4)^2 = 12x less classifier work.

    Args:
        in_channels: Width ``C`` of every input feature grid (the backbone's ``embed_dim``).
        num_classes: Number of output classes ``K``.
        num_inputs: Number of feature grids fused (4 evenly spaced layers by default).
        channels: Hidden width of the projections and of the fused map.
        norm: ``"bn"`` (BatchNorm, folds into the convolutions at export) or ``"gn"`` (GroupNorm, for
            very small training batches).
        dropout: Channel dropout before the classifier during training.

    Raises:
        ConfigError: For a non-positive size, an unknown ``norm`` or a dropout outside [0, 1).
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        num_inputs: int = 4,
        channels: int = 256,
        norm: str = "bn",
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        check_positive_ints(
            "LightHead",
            (
                ("in_channels", in_channels),
                ("num_classes", num_classes),
                ("num_inputs", num_inputs),
                ("channels", channels),
            ),
        )
        if norm not in _NORMS:
            raise ConfigError(f"LightHead norm must be one of {', '.join(_NORMS)}, got {norm!r}")
        check_dropout("LightHead", dropout)
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.num_inputs = num_inputs
        self.channels = channels
        self.norm = norm
        self.dropout_p = float(dropout)

        self.projections = nn.ModuleList(_ConvNormAct(in_channels, channels, norm) for _ in range(num_inputs))
        self.fuse = _ConvNormAct(num_inputs * channels, channels, norm)
        self.dropout = nn.Dropout2d(self.dropout_p)
        self.classifier = nn.Conv2d(channels, num_classes, kernel_size=1)
        nn.init.normal_(self.classifier.weight, std=0.01)
        nn.init.zeros_(self.classifier.bias)

    @property
    def config(self) -> dict[str, Any]:
        """JSON-able constructor arguments plus ``"type"``; :func:`build_head` rebuilds the head."""
        return {
            "type": type(self).__name__,
            "in_channels": self.in_channels,
            "num_classes": self.num_classes,
            "num_inputs": self.num_inputs,
            "channels": self.channels,
            "norm": self.norm,
            "dropout": self.dropout_p,
        }

    def forward(self, features: Sequence[torch.Tensor], out_size: tuple[int, int]) -> torch.Tensor:
        """Fuse the feature grids and predict class logits.

        Args:
            features: ``num_inputs`` tensors (B, in_channels, h, w), all the same shape.
            out_size: Output ``(height, width)``, usually ``(H // 4, W // 4)`` of the input image.

        Returns:
            (B, num_classes, *out_size) logits.

        Raises:
            ValueError: For the wrong number of features or mismatched / wrongly sized grids.
        """
        check_feature_grids("LightHead", features, self.num_inputs, self.in_channels)
        x = torch.cat([proj(f) for proj, f in zip(self.projections, features, strict=True)], dim=1)
        x = self.classifier(self.dropout(self.fuse(x)))
        return F.interpolate(
            x, size=(int(out_size[0]), int(out_size[1])), mode="bilinear", align_corners=False
        )


#: Head classes by the ``"type"`` name their ``config`` carries.
HEADS: dict[str, type[nn.Module]] = {
    "LightHead": LightHead,
    # "mask2former" is the short name configs use; head.config always writes the class name.
    "Mask2FormerHead": Mask2FormerHead,
    "mask2former": Mask2FormerHead,
}


def build_head(config: dict[str, Any]) -> nn.Module:
    """Rebuild a head from its ``config`` (as written by ``head.config``).

    Args:
        config: Dict with ``"type"`` (a key of :data:`HEADS`) and the constructor arguments.

    Returns:
        A freshly initialised head of that type.

    Raises:
        ConfigError: For an unknown type or arguments the head does not accept.
    """
    if not isinstance(config, dict) or "type" not in config:
        raise ConfigError(f"head config must be a dict with a 'type' entry, got {config!r}")
    kind = config["type"]
    if kind not in HEADS:
        raise ConfigError(f"unknown head type {kind!r}; known: {', '.join(HEADS)}")
    kwargs = {k: v for k, v in config.items() if k != "type"}
    try:
        return HEADS[kind](**kwargs)
    except TypeError as exc:
        raise ConfigError(f"bad arguments for head {kind}: {exc}") from exc
