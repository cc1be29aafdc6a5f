"""Load DINOv2 backbone weights from official checkpoints and Hugging Face folders; save the official layout.

Sources understood by :func:`load_backbone` / :meth:`DinoV2.from_pretrained`:

- **Official facebookresearch checkpoints** (``dinov2_vits14_pretrain.pth``,
  ``dinov2_vitb14_reg4_pretrain.pth``, ...): a plain state dict with ``cls_token, pos_embed,
  [register_tokens], mask_token, patch_embed.proj.*, blocks.N.{norm1, attn.qkv, attn.proj, ls1.gamma,
  norm2, mlp.fc1 | mlp.w12, mlp.fc2 | mlp.w3, ls2.gamma}, norm.*``. The chunked form ``blocks.C.N.*``
  (``block_chunks > 0``), ``module.`` / ``backbone.`` prefixes and ``{"model" | "state_dict" |
  "teacher": ...}`` wrappers are accepted. The architecture (width, depth, FFN type, register count,
  pretraining grid) is read from the tensors; the head count, which no tensor shows, comes from the
  official width table (384 -> 6, 768 -> 12, 1024 -> 16, 1536 -> 24) or from ``num_heads=...``.
- **Hugging Face folders** (``config.json`` + ``model.safetensors``, sharded
  ``model.safetensors.index.json`` or ``pytorch_model.bin``) of ``model_type`` ``dinov2`` or
  ``dinov2_with_registers``; names are mapped to the official ones (q, k and v fused into ``qkv``).
- **Files written by** :func:`save_official_checkpoint` (``.pth``: official layout; ``.safetensors``:
  official layout plus the model config in the metadata, so any size reloads without hints).

- **Hub names**: ``facebook/dinov2-large`` (any ``org/name`` that is not a local path) resolves through
  ``huggingface_hub`` and its standard cache (``HF_HUB_CACHE`` / ``HF_HOME``); ``dinov2_vitl14`` (the
  ``torch.hub`` names ``dinov2_vit{s,b,l,g}14[_reg]``) through the official download URL into
  ``torch.hub``'s cache (``<torch.hub.get_dir()>/checkpoints``, as ``torch.hub.load`` stores it). A cached
  copy is used without any network access; ``HF_HUB_OFFLINE=1`` forbids downloads for both hubs.

Position embeddings are resampled for non-native input sizes the way the source's own code does:
Hugging Face sources (folders, hub names, HF-layout files) as ``transformers`` (by output size; with
antialias for register models), official checkpoints as the facebookresearch repository (a +0.1
scale-factor offset without registers). The choice is part of the model's ``config``
(``interpolate_offset``, ``interpolate_antialias``), so checkpoints record it; ``overrides`` change it.

Files are recognised by content, not by extension. Every failure raises
:class:`~causal_tune_ros.errors.CheckpointError` saying what is wrong and where.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from causal_tune_ros.errors import CheckpointError, ConfigError
from causal_tune_ros.fileio import atomic_path
from causal_tune_ros.model.dinov2 import ARCHS, DinoV2
from causal_tune_ros.model.layers import swiglu_hidden_features

#: Head count of the official widths (no tensor shape reveals it; every official model uses 64-wide heads).
OFFICIAL_NUM_HEADS = {spec["embed_dim"]: spec["num_heads"] for spec in ARCHS.values()}

#: Hugging Face ``model_type`` values this loader understands.
HF_MODEL_TYPES = ("dinov2", "dinov2_with_registers")

#: Metadata key holding the model config in safetensors files written by :func:`save_official_checkpoint`.
CONFIG_METADATA_KEY = "causal_tune_ros.dinov2_config"

_HF_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")

#: Official checkpoint URL of a ``torch.hub`` name (``dinov2_vitl14`` or ``dinov2_vitl14_reg``).
OFFICIAL_URL = "https://dl.fbaipublicfiles.com/dinov2/{arch}/{arch}{reg}_pretrain.pth"
_TORCH_HUB_NAME = re.compile(r"^(dinov2_vit[sblg]14)(_reg)?$")
_HF_REPO_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors", ".json")
_HF_PATTERNS = ["config.json", "model.safetensors", "model.safetensors.index.json", "model-*.safetensors"]
_OPTIONAL_KEYS = ("mask_token",)  # unused at inference; HF configs with use_mask_token=False omit it
_MAX_LISTED = 5


def _few(items: list[str]) -> str:
    """``a, b, c, ... (+N more)`` for error messages."""
    shown = ", ".join(items[:_MAX_LISTED])
    return shown + (f", ... (+{len(items) - _MAX_LISTED} more)" if len(items) > _MAX_LISTED else "")


# ---------------------------------------------------------------------------------------------- reading


def _sniff(path: Path) -> str:
    """Return ``"torch"`` or ``"safetensors"`` from a file's first bytes."""
    try:
        with path.open("rb") as handle:
            head = handle.read(16)
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from exc
    if not head:
        raise CheckpointError(f"{path} is empty, not a checkpoint")
    if head[:4] == b"PK\x03\x04" or head[:1] == b"\x80":  # torch zip archive, or legacy pickle
        return "torch"
    if len(head) >= 9 and head[8:9] == b"{":  # safetensors: u64 header length, then a JSON header
        return "safetensors"
    raise CheckpointError(f"{path} is not a checkpoint (neither a PyTorch file nor safetensors)")


def _read_torch(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``torch.save`` file, refusing arbitrary pickled objects."""
    # No mmap: the tensors are then assigned to the model as they are, and a mapped file that is later
    # rewritten in place would crash the process.
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # zip, pickle and EOF errors all mean the same to the user
        raise CheckpointError(
            f"cannot read {path}: the file is truncated, corrupt or not a plain tensor checkpoint ({exc})"
        ) from exc
    return _unwrap(obj, path)


def _unwrap(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    """Find the state dict inside common training-checkpoint wrappers and check it holds tensors."""
    for _ in range(3):
        if isinstance(obj, Mapping) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
            inner = next(
                (obj[k] for k in ("model", "state_dict", "teacher") if isinstance(obj.get(k), Mapping)), None
            )
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path} is not a state dict (found {type(obj).__name__})")
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(f"{path} holds no tensors (keys: {_few([str(k) for k in obj])})")
    return tensors


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and string metadata of a safetensors file."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = dict(handle.metadata() or {})
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 (not a dict)
    except Exception as exc:  # SafetensorError, OSError, ...: truncated header or data
        raise CheckpointError(
            f"cannot read {path}: the safetensors file is truncated or corrupt ({exc})"
        ) from exc
    if not tensors:
        raise CheckpointError(f"{path} holds no tensors")
    return tensors, metadata


def _read_file(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors (and safetensors metadata) of one weights file of either format."""
    if _sniff(path) == "torch":
        return _read_torch(path), {}
    return _read_safetensors(path)


def _read_json(path: Path) -> dict[str, Any]:
    """A JSON object from a file (``config.json``)."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from exc
    if not isinstance(value, dict):
        raise CheckpointError(f"{path} is not a JSON object")
    return value


def _read_hf_weights(folder: Path) -> dict[str, torch.Tensor]:
    """All tensors of a Hugging Face folder (single file, sharded safetensors or pytorch_model.bin)."""
    single = folder / "model.safetensors"
    if single.is_file():
        return _read_safetensors(single)[0]
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            shards = sorted(set(weight_map.values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CheckpointError(f"cannot read shard index {index}: {exc}") from exc
        tensors: dict[str, torch.Tensor] = {}
        for shard in shards:
            shard_path = folder / shard
            if not shard_path.is_file():
                raise CheckpointError(f"{index} names shard {shard}, which is missing")
            tensors.update(_read_safetensors(shard_path)[0])
        return tensors
    legacy = folder / "pytorch_model.bin"
    if legacy.is_file():
        return _read_torch(legacy)
    raise CheckpointError(
        f"{folder} has config.json but no weights: expected one of {', '.join(_HF_WEIGHT_FILES)}"
    )


# ---------------------------------------------------------------------------------------------- key layouts

_CHUNKED_RE = re.compile(r"^blocks\.\d+\.(\d+)\.")
_HF_LAYER_RE = re.compile(r"^encoder\.layer\.(\d+)\.(.+)$")
_HF_EMBEDDINGS = {
    "embeddings.cls_token": "cls_token",
    "embeddings.mask_token": "mask_token",
    "embeddings.position_embeddings": "pos_embed",
    "embeddings.register_tokens": "register_tokens",
    "embeddings.patch_embeddings.projection.weight": "patch_embed.proj.weight",
    "embeddings.patch_embeddings.projection.bias": "patch_embed.proj.bias",
    "layernorm.weight": "norm.weight",
    "layernorm.bias": "norm.bias",
}
# Per-layer renames (transformers' hub names, and its 5.x in-memory names when saved without reversal).
_HF_LAYER_RENAMES = {
    "norm1.": "norm1.",
    "norm2.": "norm2.",
    "attention.output.dense.": "attn.proj.",
    "attention.o_proj.": "attn.proj.",
    "layer_scale1.lambda1": "ls1.gamma",
    "layer_scale2.lambda1": "ls2.gamma",
    "mlp.fc1.": "mlp.fc1.",
    "mlp.fc2.": "mlp.fc2.",
    "mlp.weights_in.": "mlp.w12.",
    "mlp.weights_out.": "mlp.w3.",
    "mlp.down_proj.": "mlp.w3.",
}
_HF_QKV = (
    ("attention.attention.query.", "attention.attention.key.", "attention.attention.value."),
    ("attention.q_proj.", "attention.k_proj.", "attention.v_proj."),
)
_HF_GATE_UP = ("mlp.gate_proj.", "mlp.up_proj.")


def is_hf_layout(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """Whether a state dict uses transformers' DINOv2 names (``embeddings.*``, ``encoder.layer.N.*``).

    Args:
        state_dict: Tensors by name (a ``dinov2.`` prefix is allowed).

    Returns:
        True for the Hugging Face layout.
    """
    return any(k.removeprefix("dinov2.").startswith(("embeddings.", "encoder.layer.")) for k in state_dict)


def official_from_hf(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a transformers DINOv2 state dict to the official layout (q, k, v fused into ``qkv``).

    Names it does not know are kept as they are, so that the strict load reports them as unexpected.

    Args:
        state_dict: ``Dinov2Model`` / ``Dinov2WithRegistersModel`` tensors (``dinov2.`` prefix allowed).

    Returns:
        Tensors under official names.

    Raises:
        CheckpointError: If a layer has some but not all of its q / k / v (or gate / up) tensors.
    """
    out: dict[str, torch.Tensor] = {}
    pending: dict[tuple[int, str], dict[str, torch.Tensor]] = {}  # (layer, fused name) -> parts
    for raw_key, tensor in state_dict.items():
        key = raw_key.removeprefix("dinov2.")
        if key in _HF_EMBEDDINGS:
            out[_HF_EMBEDDINGS[key]] = tensor
            continue
        match = _HF_LAYER_RE.match(key)
        if match is None:
            out[raw_key] = tensor
            continue
        layer, rest = int(match.group(1)), match.group(2)
        prefix = f"blocks.{layer}."
        for old, new in _HF_LAYER_RENAMES.items():
            if rest.startswith(old):
                out[prefix + new + rest[len(old) :]] = tensor
                break
        else:
            for parts in (*_HF_QKV, _HF_GATE_UP):
                part = next((p for p in parts if rest.startswith(p)), None)
                if part is not None:
                    fused = "attn.qkv." if parts in _HF_QKV else "mlp.w12."
                    suffix = rest[len(part) :]
                    pending.setdefault((layer, fused + suffix), {})[part] = tensor
                    break
            else:
                out[raw_key] = tensor
    for (layer, fused_name), parts in pending.items():
        order = next(group for group in (*_HF_QKV, _HF_GATE_UP) if set(parts) <= set(group))
        absent = [p for p in order if p not in parts]
        if absent:
            raise CheckpointError(
                f"layer {layer} of the Hugging Face weights lacks "
                + ", ".join(p + fused_name.rsplit(".", 1)[-1] for p in absent)
            )
        out[f"blocks.{layer}.{fused_name}"] = torch.cat([parts[p] for p in order], dim=0)
    return out


def normalize_official(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official-layout state dict without wrappers' prefixes and with chunked block names flattened.

    ``module.`` (DDP) and ``backbone.`` (training checkpoints; other heads are then dropped) prefixes are
    removed and ``blocks.C.N.*`` (``block_chunks > 0``) becomes ``blocks.N.*``.

    Args:
        state_dict: Tensors by name.

    Returns:
        Tensors under flat official names.
    """
    items = {k.removeprefix("module."): v for k, v in state_dict.items()}
    if any(k.startswith("backbone.") for k in items):
        items = {k.removeprefix("backbone."): v for k, v in items.items() if k.startswith("backbone.")}
    return {_CHUNKED_RE.sub(r"blocks.\1.", k): v for k, v in items.items()}


# ---------------------------------------------------------------------------------------------- configs


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
            f"(its keys start with: {_few(sorted(state_dict))})"
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


# ---------------------------------------------------------------------------------------------- loading


def load_state_dict_strict(
    model: DinoV2, state_dict: Mapping[str, torch.Tensor], source: str = "checkpoint"
) -> None:
    """Copy official-layout tensors into ``model``, refusing any mismatch before touching the model.

    ``mask_token`` (unused at inference) may be absent and is then zero.

    Args:
        model: The backbone (may live on the ``meta`` device: its tensors are then replaced).
        state_dict: Official-layout tensors.
        source: Name of the file, for messages.

    Raises:
        CheckpointError: Listing missing keys, unexpected keys and shape mismatches (key, expected, got),
            or a non-floating tensor.
    """
    expected = model.state_dict()
    state = dict(state_dict)
    missing = [k for k in expected if k not in state and k not in _OPTIONAL_KEYS]
    unexpected = sorted(k for k in state if k not in expected)
    mismatched = [
        f"{k} (expected {tuple(v.shape)}, got {tuple(state[k].shape)})"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing keys ({len(missing)}): {_few(missing)}")
    if unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): {_few(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatch ({len(mismatched)}): {_few(mismatched)}")
    if problems:
        cfg = model.config
        described = (
            f"DinoV2(arch={cfg['arch']!r}, embed_dim={cfg['embed_dim']}, depth={cfg['depth']}, "
            f"num_register_tokens={cfg['num_register_tokens']}, ffn_layer={cfg['ffn_layer']!r})"
        )
        raise CheckpointError(f"{source} does not match {described}: " + "; ".join(problems))
    for key, tensor in state.items():
        if not tensor.is_floating_point():
            raise CheckpointError(f"{source}: {key} has dtype {tensor.dtype}, expected floating point")
    on_meta = any(p.is_meta for p in model.parameters())
    for key in _OPTIONAL_KEYS:
        if key not in state:
            state[key] = torch.zeros(expected[key].shape)
    # The model stays float32 whatever the file stores (bf16 / fp16 exports exist).
    state = {k: v.to(torch.float32) for k, v in state.items()}
    # A meta-device model gets the loaded tensors themselves (no second copy in memory).
    model.load_state_dict(state, strict=True, assign=on_meta)
    model.clear_pos_embed_cache()  # computed from the old pos_embed


def _build(config: dict[str, Any], source: str) -> DinoV2:
    """``DinoV2(**config)`` on the meta device (no random init of a model about to be overwritten)."""
    try:
        with torch.device("meta"):
            return DinoV2(**config)
    except ConfigError as exc:
        raise CheckpointError(
            f"{source}: cannot build a backbone from its settings and the overrides given: {exc}"
        ) from exc


def _merge(inferred: dict[str, Any], overrides: dict[str, Any], source: str) -> dict[str, Any]:
    """Overrides replace inferred settings; ``arch=...`` in overrides disables inference altogether."""
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


def _offline(offline: bool | None) -> bool:
    if offline is not None:
        return bool(offline)
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _from_torch_hub(name: str, offline: bool) -> Path:
    match = _TORCH_HUB_NAME.match(name)
    assert match is not None
    arch, reg = match.group(1), "_reg4" if match.group(2) else ""
    url = OFFICIAL_URL.format(arch=arch, reg=reg)
    target = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[1]
    if target.is_file():
        return target
    if offline:
        raise CheckpointError(
            f"{name}: {target.name} is not in torch.hub's cache ({target.parent}) and downloads are off "
            f"(HF_HUB_OFFLINE): download {url} there, or pass the file's path"
        )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(url, str(target), progress=True)  # writes beside, then renames
    except Exception as exc:  # URLError, HTTPError, OSError: all mean "not downloaded"
        raise CheckpointError(
            f"{name}: cannot download {url} into torch.hub's cache {target.parent} ({exc}); "
            "download it by hand into that folder, or pass the file's path"
        ) from exc
    return target


def _from_hf_hub(name: str, offline: bool) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:
        raise CheckpointError(
            f"{name} looks like a Hugging Face model name, but huggingface_hub is not installed "
            "(pip install huggingface_hub); or pass a local file or folder"
        ) from exc
    try:
        return Path(snapshot_download(repo_id=name, allow_patterns=_HF_PATTERNS, local_files_only=offline))
    except Exception as exc:  # offline misses, unknown repos and network errors all end here
        where = (
            "it is not in the Hugging Face cache while downloads are off (HF_HUB_OFFLINE)"
            if offline
            else "it could not be fetched from the Hugging Face hub"
        )
        raise CheckpointError(
            f"{name} is not a local file or folder, and {where}: {type(exc).__name__}: {exc}. "
            f"Run once online (or `hf download {name}`), or pass a local path"
        ) from exc


def resolve_backbone_source(name: str | os.PathLike[str], offline: bool | None = None) -> Path:
    """The local file or folder a backbone name stands for (see the module docstring for hub names).

    Args:
        name: A path, a Hugging Face model name (``facebook/dinov2-large``) or a ``torch.hub`` name
            (``dinov2_vitl14``, ``dinov2_vitl14_reg``). An existing path always wins.
        offline: Never download; ``None`` reads ``HF_HUB_OFFLINE`` from the environment.

    Returns:
        The path (unchanged for anything that is not a hub name; it may not exist).

    Raises:
        CheckpointError: For a hub name that is neither cached nor downloadable.
    """
    path = Path(name).expanduser()
    text = str(name)
    if path.exists():
        return path
    if _TORCH_HUB_NAME.match(text):
        return _from_torch_hub(text, _offline(offline))
    if _HF_REPO_NAME.match(text) and not text.lower().endswith(_WEIGHT_SUFFIXES):
        return _from_hf_hub(text, _offline(offline))
    return path


def load_backbone(path: str | os.PathLike[str], **overrides: Any) -> DinoV2:
    """Build and load a DINOv2 backbone from an official checkpoint, a Hugging Face folder, or our files.

    The architecture comes from the source (tensor shapes, ``config.json``, or the config stored by
    :func:`save_official_checkpoint`); ``overrides`` replace single settings (e.g. ``num_heads`` for a
    non-official width, ``interpolate_offset=0.0`` to resample position embeddings exactly as
    transformers' ``Dinov2Model``). Passing ``arch`` builds ``DinoV2(**overrides)`` as given, and the
    weights must then fit it. Position embeddings are resampled as the source's own code does: as
    ``transformers`` for Hugging Face sources (:func:`hf_interpolation`), as the official repository for
    official checkpoints (see :func:`causal_tune_ros.model.dinov2.interpolate_pos_embed`).

    Args:
        path: File, folder or hub name (:func:`resolve_backbone_source`).
        **overrides: ``DinoV2`` keyword arguments.

    Returns:
        The model, float32, on the CPU, in eval mode.

    Raises:
        CheckpointError: Path missing; not a checkpoint; truncated or corrupt file; folder without
            weights; unsupported ``model_type``; missing / unexpected keys or shape mismatches; a hub
            name neither cached nor downloadable.
    """
    path = resolve_backbone_source(path)
    source = str(path)
    if not path.exists():
        raise CheckpointError(f"backbone weights not found: {path} does not exist")
    if path.is_dir():
        cfg_file = path / "config.json"
        if not cfg_file.is_file():
            raise CheckpointError(
                f"{path} is a folder without config.json, not a Hugging Face DINOv2 folder "
                "(pass the .pth file itself for official checkpoints)"
            )
        inferred = config_from_hf(_read_json(cfg_file), str(cfg_file))
        inferred.update(hf_interpolation(int(inferred.get("num_register_tokens", 0))))
        tensors = _read_hf_weights(path)
        state = official_from_hf(tensors) if is_hf_layout(tensors) else normalize_official(tensors)
    else:
        tensors, metadata = _read_file(path)
        if is_hf_layout(tensors):
            state = official_from_hf(tensors)
            sibling = path.parent / "config.json"
            inferred = (
                config_from_hf(_read_json(sibling), str(sibling))
                if sibling.is_file()
                else config_from_state_dict(state, source)
            )
            inferred.update(hf_interpolation(int(inferred.get("num_register_tokens", 0))))
        else:
            state = normalize_official(tensors)
            inferred = config_from_state_dict(state, source)
        if CONFIG_METADATA_KEY in metadata:
            try:
                inferred = dict(json.loads(metadata[CONFIG_METADATA_KEY]))
            except (TypeError, ValueError) as exc:
                raise CheckpointError(f"{source}: malformed {CONFIG_METADATA_KEY} metadata ({exc})") from exc
    model = _build(_merge(inferred, overrides, source), source)
    load_state_dict_strict(model, state, source)
    return model.eval()


def load_weights(model: DinoV2, path: str | os.PathLike[str]) -> DinoV2:
    """Load a weights file or folder into an existing backbone, which must match it exactly.

    Args:
        model: The backbone to fill (its architecture is kept; nothing is inferred).
        path: Official checkpoint, Hugging Face folder or file from :func:`save_official_checkpoint`.

    Returns:
        ``model``.

    Raises:
        CheckpointError: As :func:`load_backbone`, in particular when the weights are for another
            architecture (e.g. ViT-B weights into a ViT-S model).
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise CheckpointError(f"backbone weights not found: {path} does not exist")
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise CheckpointError(f"{path} is a folder without config.json, not a Hugging Face DINOv2 folder")
        tensors = _read_hf_weights(path)
    else:
        tensors = _read_file(path)[0]
    state = official_from_hf(tensors) if is_hf_layout(tensors) else normalize_official(tensors)
    load_state_dict_strict(model, state, str(path))
    return model


def save_official_checkpoint(model: DinoV2, path: str | os.PathLike[str]) -> Path:
    """Write a backbone's weights in the official facebookresearch layout (atomically).

    ``.safetensors`` paths get a safetensors file that also stores ``model.config`` in its metadata (so
    any size reloads with no hints); any other suffix gets a ``torch.save`` state dict identical in
    layout to ``dinov2_*_pretrain.pth`` (loadable by the official code and by :func:`load_backbone`).

    Args:
        model: The backbone.
        path: Destination file; parent folders are created.

    Returns:
        The path written.

    Raises:
        CheckpointError: If the file cannot be written.
    """
    path = Path(path).expanduser()
    state = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}
    try:
        with atomic_path(path) as tmp:
            if path.suffix == ".safetensors":
                from safetensors.torch import save_file

                save_file(state, str(tmp), metadata={CONFIG_METADATA_KEY: json.dumps(model.config)})
            else:
                torch.save(state, tmp)
    except OSError as exc:
        raise CheckpointError(f"cannot write {path}: {exc}") from exc
    return path
