"""Where DINOv2 weights come from: local files and folders, Hugging Face and ``torch.hub`` names.

Files are recognised by content, not by extension (a ``torch.save`` zip or pickle, or safetensors);
``torch.save`` files load with ``weights_only=True``. Hub names resolve through each hub's standard cache
(``HF_HUB_CACHE`` / ``HF_HOME``, ``<torch.hub.get_dir()>/checkpoints``); a cached copy is used without any
network access and ``HF_HUB_OFFLINE=1`` forbids downloads for both hubs. Every failure raises
:class:`~causal_tune_ros.errors.CheckpointError` saying what is wrong and where.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from causal_tune_ros.errors import CheckpointError

_HF_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")

#: Official checkpoint URL of a ``torch.hub`` name (``dinov2_vitl14`` or ``dinov2_vitl14_reg``).
OFFICIAL_URL = "https://dl.fbaipublicfiles.com/dinov2/{arch}/{arch}{reg}_pretrain.pth"
_TORCH_HUB_NAME = re.compile(r"^(dinov2_vit[sblg]14)(_reg)?$")
_HF_REPO_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors", ".json")
_HF_PATTERNS = ["config.json", "model.safetensors", "model.safetensors.index.json", "model-*.safetensors"]
_MAX_LISTED = 5


def few(items: list[str]) -> str:
    """``a, b, c, ... (+N more)`` for error messages."""
    shown = ", ".join(items[:_MAX_LISTED])
    return shown + (f", ... (+{len(items) - _MAX_LISTED} more)" if len(items) > _MAX_LISTED else "")


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
        raise CheckpointError(f"{path} holds no tensors (keys: {few([str(k) for k in obj])})")
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


def read_weights_file(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors (and safetensors metadata) of one weights file of either format, told apart by content.

    Raises:
        CheckpointError: Unreadable, empty, truncated or corrupt file, or one that holds no tensors.
    """
    if _sniff(path) == "torch":
        return _read_torch(path), {}
    return _read_safetensors(path)


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON object from a file (``config.json``).

    Raises:
        CheckpointError: Unreadable file, invalid JSON, or JSON that is not an object.
    """
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from exc
    if not isinstance(value, dict):
        raise CheckpointError(f"{path} is not a JSON object")
    return value


def read_hf_weights(folder: Path) -> dict[str, torch.Tensor]:
    """All tensors of a Hugging Face folder (single file, sharded safetensors or pytorch_model.bin).

    Raises:
        CheckpointError: No weights file, a missing shard, or an unreadable one.
    """
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
