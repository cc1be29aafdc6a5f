"""Build a DINOv2 backbone from a weights source, load weights into one, save the official layout.

:func:`build_from_weights` is what :meth:`~causal_tune_ros.model.dinov2.DinoV2.from_pretrained` runs; it
takes the model class as an argument, so this module sits below the model and never imports it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from causal_tune_ros.errors import CheckpointError, ConfigError
from causal_tune_ros.fileio import atomic_path
from causal_tune_ros.model.weights.config import (
    config_from_hf,
    config_from_state_dict,
    hf_interpolation,
    merge_overrides,
)
from causal_tune_ros.model.weights.layouts import is_hf_layout, normalize_official, official_from_hf
from causal_tune_ros.model.weights.sources import (
    few,
    read_hf_weights,
    read_json_object,
    read_weights_file,
    resolve_backbone_source,
)

#: Metadata key holding the model config in safetensors files written by :func:`save_official_checkpoint`.
CONFIG_METADATA_KEY = "causal_tune_ros.dinov2_config"
_OPTIONAL_KEYS = ("mask_token",)  # unused at inference; HF configs with use_mask_token=False omit it

#: A backbone (``DinoV2``): built from keyword arguments, with ``config`` and ``clear_pos_embed_cache()``.
M = TypeVar("M", bound=nn.Module)


def load_state_dict_strict(
    model: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str = "checkpoint"
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
        problems.append(f"missing keys ({len(missing)}): {few(missing)}")
    if unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): {few(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatch ({len(mismatched)}): {few(mismatched)}")
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


def _build(cls: type[M], config: dict[str, Any], source: str) -> M:
    """``cls(**config)`` on the meta device (no random init of a model about to be overwritten)."""
    try:
        with torch.device("meta"):
            return cls(**config)
    except ConfigError as exc:
        raise CheckpointError(
            f"{source}: cannot build a backbone from its settings and the overrides given: {exc}"
        ) from exc


def build_from_weights(cls: type[M], path: str | os.PathLike[str], **overrides: Any) -> M:
    """Build a DINOv2 backbone of class ``cls`` from an official checkpoint, a Hugging Face folder, our files.

    The architecture comes from the source (tensor shapes, ``config.json``, or the config stored by
    :func:`save_official_checkpoint`); ``overrides`` replace single settings (e.g. ``num_heads`` for a
    non-official width, ``interpolate_offset=0.0`` to resample position embeddings exactly as
    transformers' ``Dinov2Model``). Passing ``arch`` builds ``DinoV2(**overrides)`` as given, and the
    weights must then fit it. Position embeddings are resampled as the source's own code does: as
    ``transformers`` for Hugging Face sources (:func:`hf_interpolation`), as the official repository for
    official checkpoints (see :func:`causal_tune_ros.model.dinov2.interpolate_pos_embed`).

    Args:
        cls: The backbone class (:class:`~causal_tune_ros.model.dinov2.DinoV2`), built as ``cls(**config)``.
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
        inferred = config_from_hf(read_json_object(cfg_file), str(cfg_file))
        inferred.update(hf_interpolation(int(inferred.get("num_register_tokens", 0))))
        tensors = read_hf_weights(path)
        state = official_from_hf(tensors) if is_hf_layout(tensors) else normalize_official(tensors)
    else:
        tensors, metadata = read_weights_file(path)
        if is_hf_layout(tensors):
            state = official_from_hf(tensors)
            sibling = path.parent / "config.json"
            inferred = (
                config_from_hf(read_json_object(sibling), str(sibling))
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
    model = _build(cls, merge_overrides(inferred, overrides, source), source)
    load_state_dict_strict(model, state, source)
    return model.eval()


def load_weights(model: M, path: str | os.PathLike[str]) -> M:
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
        tensors = read_hf_weights(path)
    else:
        tensors = read_weights_file(path)[0]
    state = official_from_hf(tensors) if is_hf_layout(tensors) else normalize_official(tensors)
    load_state_dict_strict(model, state, str(path))
    return model


def save_official_checkpoint(model: nn.Module, path: str | os.PathLike[str]) -> Path:
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
