"""Tensor names: Hugging Face ``Dinov2Model`` layouts -> the official facebookresearch names.

The official layout (``cls_token``, ``pos_embed``, ``blocks.N.attn.qkv.weight``, ...) is what
:class:`~causal_tune_ros.model.dinov2.DinoV2` uses. The chunked form ``blocks.C.N.*``, ``module.`` and
``backbone.`` prefixes are normalised; Hugging Face's separate q, k and v are fused into ``qkv``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from causal_tune_ros.errors import CheckpointError

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
