"""The ``DinoV2`` settings a weights source describes: from tensor shapes or a Hugging Face ``config.json``.

The head count, which no tensor shows, comes from the official width table (384 -> 6, 768 -> 12,
1024 -> 16, 1536 -> 24) or from ``num_heads=...``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import torch

from causal_tune_ros.errors import CheckpointError
from causal_tune_ros.model.archs import ARCHS
from causal_tune_ros.model.layers import swiglu_hidden_features
from causal_tune_ros.model.weights.sources import few

#: Head count of the official widths (no tensor shape reveals it; every official model uses 64-wide heads).
OFFICIAL_NUM_HEADS = {spec["embed_dim"]: spec["num_heads"] for spec in ARCHS.values()}

#: Hugging Face ``model_type`` values this loader understands.
HF_MODEL_TYPES = ("dinov2", "dinov2_with_registers")


def _swiglu_ratio(embed_dim: int, hidden: int) -> float | None:
    """An ``mlp_ratio`` whose SwiGLU hidden width is ``hidden`` (4.0 for ViT-g), or None."""
    for ratio in (4.0, hidden * 1.5 / embed_dim, hidden / embed_dim):
        if swiglu_hidden_features(int(embed_dim * ratio)) == hidden:
            return ratio
    return None


def config_from_state_dict(
    state_dict: Mapping[str, torch.Tensor], source: str = "checkpoint"
) -> dict[str, Any]:
    """Infer ``DinoV2`` keyword arguments from official-layout tensors.

    ``num_heads`` is set only for the official widths; ``interpolate_*`` are left to the model's defaults
    (official behaviour for the register count found).

    Args:
        state_dict: Official-layout tensors (see :func:`normalize_official`).
        source: Name of the file, for messages.

    Returns:
        Keyword arguments for :class:`DinoV2` (``arch`` is the official name when the width, depth and
        FFN match one, else ``"custom"``).

    Raises:
        CheckpointError: If the tensors are not a DINOv2 backbone.
    """
    required = ("cls_token", "pos_embed", "patch_embed.proj.weight")
    absent = [k for k in required if k not in state_dict]
    if absent:
        raise CheckpointError(
            f"{source} is not a DINOv2 backbone checkpoint: no {', '.join(absent)} "
            f"(its keys start with: {few(sorted(state_dict))})"
        )
    embed_dim = int(state_dict["cls_token"].shape[-1])
    proj = state_dict["patch_embed.proj.weight"]
    if proj.ndim != 4 or proj.shape[-1] != proj.shape[-2]:
        raise CheckpointError(
            f"{source}: patch_embed.proj.weight has shape {tuple(proj.shape)}, not a square conv"
        )
    patch_size, in_chans = int(proj.shape[-1]), int(proj.shape[1])
    num_positions = int(state_dict["pos_embed"].shape[1]) - 1
    grid = math.isqrt(num_positions)
    if grid * grid != num_positions:
        raise CheckpointError(f"{source}: pos_embed holds {num_positions} patch positions, not a square grid")
    block_ids = {int(m.group(1)) for k in state_dict if (m := re.match(r"^blocks\.(\d+)\.", k))}
    if not block_ids:
        raise CheckpointError(f"{source} has no transformer blocks (no blocks.N.* keys)")
    depth = max(block_ids) + 1
    registers = int(state_dict["register_tokens"].shape[1]) if "register_tokens" in state_dict else 0

    if "blocks.0.mlp.w12.weight" in state_dict:
        ffn_layer = "swiglufused"
        hidden = int(state_dict["blocks.0.mlp.w12.weight"].shape[0]) // 2
        mlp_ratio = _swiglu_ratio(embed_dim, hidden)
        if mlp_ratio is None:
            raise CheckpointError(f"{source}: no mlp_ratio gives a SwiGLU hidden width of {hidden}")
        ffn_bias = "blocks.0.mlp.w12.bias" in state_dict
    elif "blocks.0.mlp.fc1.weight" in state_dict:
        ffn_layer = "mlp"
        mlp_ratio = int(state_dict["blocks.0.mlp.fc1.weight"].shape[0]) / embed_dim
        ffn_bias = "blocks.0.mlp.fc1.bias" in state_dict
    else:
        raise CheckpointError(f"{source}: block 0 has no feed-forward weights (mlp.fc1 or mlp.w12)")

    config: dict[str, Any] = {
        "arch": "custom",
        "num_register_tokens": registers,
        "embed_dim": embed_dim,
        "depth": depth,
        "mlp_ratio": mlp_ratio,
        "ffn_layer": ffn_layer,
        "patch_size": patch_size,
        "img_size": grid * patch_size,
        "in_chans": in_chans,
        "qkv_bias": "blocks.0.attn.qkv.bias" in state_dict,
        "proj_bias": "blocks.0.attn.proj.bias" in state_dict,
        "ffn_bias": ffn_bias,
        "layerscale_init": 1.0 if "blocks.0.ls1.gamma" in state_dict else None,
    }
    if embed_dim in OFFICIAL_NUM_HEADS:
        config["num_heads"] = OFFICIAL_NUM_HEADS[embed_dim]
    for name, spec in ARCHS.items():
        if (spec["embed_dim"], spec["depth"], spec["ffn_layer"]) == (embed_dim, depth, ffn_layer):
            config["arch"] = name
    return config


def config_from_hf(hf_config: Mapping[str, Any], source: str = "config.json") -> dict[str, Any]:
    """Translate a transformers ``Dinov2Config`` / ``Dinov2WithRegistersConfig`` dict to ``DinoV2`` kwargs.

    Args:
        hf_config: The parsed ``config.json``.
        source: Name of the file, for messages.

    Returns:
        Keyword arguments for :class:`DinoV2` (``interpolate_*`` left to the official defaults).

    Raises:
        CheckpointError: For an unsupported ``model_type``, activation or field value.
    """
    model_type = hf_config.get("model_type")
    if model_type not in HF_MODEL_TYPES:
        raise CheckpointError(
            f"{source}: unsupported model_type {model_type!r}; expected one of {', '.join(HF_MODEL_TYPES)}"
        )
    if hf_config.get("hidden_act", "gelu") != "gelu":
        raise CheckpointError(
            f"{source}: unsupported hidden_act {hf_config['hidden_act']!r} (DINOv2 uses gelu)"
        )

    def side(name: str, default: int) -> int:
        value = hf_config.get(name, default)
        if isinstance(value, (list, tuple)):
            if len(value) != 2 or value[0] != value[1]:
                raise CheckpointError(f"{source}: only square {name} is supported, got {value}")
            value = value[0]
        return int(value)

    try:
        embed_dim = int(hf_config.get("hidden_size", 768))
        config: dict[str, Any] = {
            "arch": "custom",
            "num_register_tokens": int(hf_config.get("num_register_tokens", 4))
            if model_type == "dinov2_with_registers"
            else 0,
            "embed_dim": embed_dim,
            "depth": int(hf_config.get("num_hidden_layers", 12)),
            "num_heads": int(hf_config.get("num_attention_heads", 12)),
            "mlp_ratio": float(hf_config.get("mlp_ratio", 4)),
            "ffn_layer": "swiglufused" if hf_config.get("use_swiglu_ffn", False) else "mlp",
            "patch_size": side("patch_size", 14),
            "img_size": side("image_size", 518),
            "in_chans": int(hf_config.get("num_channels", 3)),
            "qkv_bias": bool(hf_config.get("qkv_bias", True)),
            # transformers always builds LayerScale (lambda1 tensors exist even for a 0 init value).
            "layerscale_init": float(hf_config.get("layerscale_value", 1.0)) or 1.0,
            "layer_norm_eps": float(hf_config.get("layer_norm_eps", 1e-6)),
        }
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{source}: malformed field ({exc})") from exc
    for name, spec in ARCHS.items():
        if (spec["embed_dim"], spec["depth"], spec["num_heads"], spec["ffn_layer"]) == (
            embed_dim,
            config["depth"],
            config["num_heads"],
            config["ffn_layer"],
        ):
            config["arch"] = name
    return config


def merge_overrides(inferred: dict[str, Any], overrides: dict[str, Any], source: str) -> dict[str, Any]:
    """The settings to build: overrides replace inferred ones; ``arch=...`` in overrides disables inference.

    Args:
        inferred: Settings read from the source (:func:`config_from_state_dict`, :func:`config_from_hf`).
        overrides: ``DinoV2`` keyword arguments given by the caller.
        source: Name of the file, for messages.

    Returns:
        ``DinoV2`` keyword arguments.

    Raises:
        CheckpointError: If the head count is neither inferred nor given.
    """
    if "arch" in overrides:
        return dict(overrides)
    config = {**inferred, **overrides}
    if "num_heads" not in config:
        raise CheckpointError(
            f"{source}: embed_dim {config['embed_dim']} is not an official DINOv2 width, so the number of "
            "attention heads cannot be inferred; pass num_heads=..."
        )
    return config


def hf_interpolation(num_register_tokens: int) -> dict[str, Any]:
    """``DinoV2`` settings that resample position embeddings exactly as ``transformers`` does.

    Args:
        num_register_tokens: Register tokens of the model (``Dinov2WithRegistersModel`` antialiases).

    Returns:
        ``{"interpolate_offset": 0.0, "interpolate_antialias": num_register_tokens > 0}``.
    """
    return {"interpolate_offset": 0.0, "interpolate_antialias": num_register_tokens > 0}
