"""DINOv2 backbone weights: official checkpoints, Hugging Face folders and hub names in; official layout out.

One job per module: :mod:`.sources` (files, folders, hub names), :mod:`.layouts` (tensor names),
:mod:`.config` (architecture from the tensors or ``config.json``), :mod:`.load` (build, load, save).
Nothing here imports the model class: :meth:`DinoV2.from_pretrained` passes itself to
:func:`build_from_weights`.

Sources understood by :meth:`DinoV2.from_pretrained`:

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

from causal_tune_ros.model.weights.config import config_from_hf, config_from_state_dict, hf_interpolation
from causal_tune_ros.model.weights.layouts import is_hf_layout, normalize_official, official_from_hf
from causal_tune_ros.model.weights.load import (
    CONFIG_METADATA_KEY,
    build_from_weights,
    load_state_dict_strict,
    load_weights,
    save_official_checkpoint,
)
from causal_tune_ros.model.weights.sources import OFFICIAL_URL, resolve_backbone_source

__all__ = [
    "CONFIG_METADATA_KEY",
    "OFFICIAL_URL",
    "build_from_weights",
    "config_from_hf",
    "config_from_state_dict",
    "hf_interpolation",
    "is_hf_layout",
    "load_state_dict_strict",
    "load_weights",
    "normalize_official",
    "official_from_hf",
    "resolve_backbone_source",
    "save_official_checkpoint",
]
