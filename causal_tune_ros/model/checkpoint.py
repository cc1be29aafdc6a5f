"""Causal-Tune checkpoints: one safetensors file with the trained tensors and the config that built them.

Layout of a checkpoint file:

- tensors: the segmenter's state dict without the frozen backbone (``tuner.tokens_a``, ``tuner.tokens_b``,
  ``tuner.mlp_token.*``, ``tuner.mlp_out.*``, ``tuner.scale``, ``head.*`` including normalisation running
  statistics); with ``include_backbone=True`` also the backbone's (``backbone.*``), so the file is
  self-contained (the shipped demo model, whose tiny ViT is not a downloadable DINOv2);
- metadata: one JSON document under the key ``"causal_tune"``::

      {"format": "causal_tune_ros.checkpoint", "format_version": 1,
       "backbone": {"arch": "vits14", "config": {...DinoV2 config...}, "embedded": false},
       "segmenter": {...CausalTuneSegmenter.config, with "head": {...}...},
       "class_names": ["road", ...] | null, "train_band": [0.2, 0.7] | null,
       "user": {...free-form...}}

A backbone given at load time must match the recorded one field by field; any difference, a corrupt or
truncated file, missing or unexpected tensors and shape mismatches raise
:class:`~causal_tune_ros.errors.CheckpointError` saying exactly what is wrong (never a silently wrong model).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from causal_tune_ros.band import Band
from causal_tune_ros.errors import CheckpointError, ConfigError
from causal_tune_ros.fileio import atomic_path
from causal_tune_ros.model.causal_tune import CausalTuneSegmenter
from causal_tune_ros.model.dinov2 import interpolation_convention
from causal_tune_ros.model.heads import build_head

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "METADATA_KEY",
    "load_checkpoint",
    "read_checkpoint_metadata",
    "save_checkpoint",
]

#: Metadata key of the JSON document, and the document's ``format`` value.
METADATA_KEY = "causal_tune"
FORMAT_NAME = "causal_tune_ros.checkpoint"
#: Incremented on incompatible layout changes; files from a newer version are refused with a clear error.
FORMAT_VERSION = 1

_BACKBONE_PREFIX = "backbone."
_MAX_LISTED = 8


def _few(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    return shown + (f", ... (+{len(items) - _MAX_LISTED} more)" if len(items) > _MAX_LISTED else "")


def _jsonable(value: Any) -> Any:
    """Round-trip through JSON so tuples become lists and comparisons match what a file holds."""
    return json.loads(json.dumps(value))


def _band_list(band: Band | Sequence[float] | torch.Tensor | None) -> list[float] | None:
    if band is None:
        return None
    if isinstance(band, Band):
        return list(band.as_tuple())
    values = band.detach().cpu().flatten().tolist() if isinstance(band, torch.Tensor) else list(band)
    if len(values) != 2:
        raise ConfigError(f"train band must be (r_low, r_high), got {values!r}")
    return list(Band(float(values[0]), float(values[1])).as_tuple())  # validates 0 < low < high <= 1


# ---------------------------------------------------------------------------------------------- saving


def save_checkpoint(
    path: str | os.PathLike[str],
    model: CausalTuneSegmenter,
    metadata: Mapping[str, Any] | None = None,
    include_backbone: bool = False,
    *,
    class_names: Sequence[str] | None = None,
    band: Band | Sequence[float] | torch.Tensor | None = None,
) -> Path:
    """Write a Causal-Tune checkpoint (atomically: a partly written file never replaces a good one).

    Args:
        path: Output file (conventionally ``*.safetensors``); parent folders are created.
        model: The segmenter to save.
        metadata: Free-form JSON-able user metadata (dataset, iterations, mIoU, ...), stored under ``"user"``.
        include_backbone: Also store the frozen backbone's tensors so the file loads on its own.
        class_names: Names of the ``num_classes`` outputs, in order (e.g. the 19 Cityscapes classes).
        band: The band ``(r_low, r_high)`` used in training (a ``Band``, a pair or a (2,) tensor).

    Returns:
        The path written.

    Raises:
        ConfigError: For class names that do not match ``num_classes``, a bad band, or metadata that is
            not JSON-serialisable.
        CheckpointError: If the model's backbone has no ``config`` or the file cannot be written.
    """
    backbone_config = getattr(model.backbone, "config", None)
    if not isinstance(backbone_config, Mapping):
        raise CheckpointError(
            "the model's backbone has no 'config' dict; cannot record which backbone it needs"
        )
    names = None if class_names is None else [str(n) for n in class_names]
    if names is not None and len(names) != model.num_classes:
        raise ConfigError(f"{len(names)} class names given for a model with {model.num_classes} classes")
    document = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "backbone": {
            "arch": getattr(model.backbone, "arch", backbone_config.get("arch")),
            "config": dict(backbone_config),
            "embedded": bool(include_backbone),
            # Position-embedding resampling (also in config as interpolate_*): a readable name.
            "interpolation": interpolation_convention(dict(backbone_config)),
        },
        "segmenter": model.config,
        "class_names": names,
        "train_band": _band_list(band),
        "user": dict(metadata) if metadata is not None else {},
    }
    try:
        text = json.dumps(document, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"checkpoint metadata must be JSON-serialisable: {exc}") from exc

    # clone(): safetensors refuses tensors that share storage, and this detaches from the live model.
    tensors = {
        name: tensor.detach().to("cpu").contiguous().clone()
        for name, tensor in model.state_dict().items()
        if include_backbone or not name.startswith(_BACKBONE_PREFIX)
    }
    target = Path(path)
    try:
        with atomic_path(target) as tmp:
            save_file(tensors, str(tmp), metadata={METADATA_KEY: text, "format": "pt"})
    except OSError as exc:
        raise CheckpointError(f"cannot write checkpoint {target}: {exc}") from exc
    return target


# ---------------------------------------------------------------------------------------------- reading


#: safetensors' own limit on the JSON header; a larger length field means "not this format".
_MAX_HEADER_BYTES = 100 * 1024 * 1024
#: Deepest nesting of the metadata document accepted (ours is 4 levels deep).
_MAX_METADATA_DEPTH = 32
_NOT_A_CHECKPOINT = (
    "a Causal-Tune checkpoint is the one .safetensors file that save_checkpoint or causal-tune train writes"
)


def _check_container(path: Path) -> None:
    """Tell "not safetensors at all" from "a truncated safetensors file" before the library tries."""
    try:
        with path.open("rb") as handle:
            prefix = handle.read(9)
            size = os.fstat(handle.fileno()).st_size
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
    length = int.from_bytes(prefix[:8], "little") if len(prefix) >= 8 else -1
    if len(prefix) < 9 or prefix[8:9] != b"{" or not 2 <= length <= _MAX_HEADER_BYTES:
        raise CheckpointError(f"{path} is not a safetensors checkpoint ({_NOT_A_CHECKPOINT})")
    if 8 + length > size:
        raise CheckpointError(
            f"{path} is truncated: its safetensors header needs {length} bytes, the file has {size - 8}"
        )


def _open(path: Path) -> Any:
    """``safe_open`` with every failure turned into a CheckpointError naming the file."""
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if not path.is_file():
        raise CheckpointError(f"checkpoint path is not a file: {path}")
    _check_container(path)
    try:
        return safe_open(str(path), framework="pt", device="cpu")
    except Exception as exc:  # SafetensorError (header/size checks) or OSError
        raise CheckpointError(
            f"{path} is not a readable safetensors file ({exc}); it may be truncated, corrupt, or another "
            f"format ({_NOT_A_CHECKPOINT})"
        ) from exc


def _depth(value: Any) -> int:
    """Nesting depth of a JSON value, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level)
            if level > _MAX_METADATA_DEPTH:
                break
            stack.extend((child, level + 1) for child in item)
    return deepest


def _parse_metadata(path: Path, raw: Mapping[str, str] | None) -> dict[str, Any]:
    if not raw or METADATA_KEY not in raw:
        raise CheckpointError(
            f"{path} is a safetensors file without Causal-Tune metadata: not a Causal-Tune checkpoint "
            "(a backbone weights file? load those with DinoV2.from_pretrained)"
        )
    try:
        document = json.loads(raw[METADATA_KEY])
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: Causal-Tune metadata is not valid JSON ({exc})") from exc
    except RecursionError:
        raise CheckpointError(f"{path}: Causal-Tune metadata is nested too deeply to be ours") from None
    if _depth(document) > _MAX_METADATA_DEPTH:
        raise CheckpointError(
            f"{path}: Causal-Tune metadata is nested more than {_MAX_METADATA_DEPTH} levels deep; not ours"
        )
    if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{path}: metadata does not describe a {FORMAT_NAME} file")
    version = document.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise CheckpointError(f"{path}: bad format_version {version!r}")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {version}, newer than this package reads "
            f"({FORMAT_VERSION}); update causal_tune_ros"
        )
    missing = [
        key for key in ("backbone", "segmenter", "class_names", "train_band", "user") if key not in document
    ]
    backbone = document.get("backbone")
    if not isinstance(backbone, dict) or not isinstance(backbone.get("config"), dict):
        missing.append("backbone.config")
    segmenter = document.get("segmenter")
    if not isinstance(segmenter, dict) or not isinstance(segmenter.get("head"), dict):
        missing.append("segmenter.head")
    if missing:
        raise CheckpointError(f"{path}: metadata lacks {', '.join(missing)}")
    return document


def read_checkpoint_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint's metadata without loading any tensor.

    Args:
        path: Checkpoint file.

    Returns:
        The metadata document (see the module docstring): ``format``, ``format_version``, ``backbone``
        (``arch``, ``config``, ``embedded``), ``segmenter``, ``class_names``, ``train_band``, ``user``.

    Raises:
        CheckpointError: Missing file, not safetensors, truncated, no / bad / too new Causal-Tune metadata.
    """
    file = Path(path)
    with _open(file) as handle:
        raw = handle.metadata()
    return _parse_metadata(file, raw)


def backbone_differences(recorded: Mapping[str, Any], backbone: nn.Module) -> list[str]:
    """Fields in which a backbone differs from a checkpoint's recorded backbone.

    Args:
        recorded: The checkpoint's ``metadata["backbone"]`` (``arch`` and ``config``).
        backbone: The backbone offered at load time (needs a ``config`` dict).

    Returns:
        One ``"field: checkpoint X, given Y"`` line per differing field; empty when they match.
    """
    given_config = getattr(backbone, "config", None)
    if not isinstance(given_config, Mapping):
        return [f"config: checkpoint has one, the given {type(backbone).__name__} has no 'config' dict"]
    want = _jsonable(dict(recorded["config"]))
    have = _jsonable(dict(given_config))
    if "arch" not in want and recorded.get("arch") is not None:
        want["arch"] = recorded["arch"]
        have.setdefault("arch", getattr(backbone, "arch", None))
    return [
        f"{key}: checkpoint {want.get(key, '<absent>')!r}, given {have.get(key, '<absent>')!r}"
        for key in sorted(set(want) | set(have))
        if want.get(key, "<absent>") != have.get(key, "<absent>")
    ]


def _build_embedded_backbone(path: Path, recorded: Mapping[str, Any]) -> nn.Module:
    from causal_tune_ros.model.dinov2 import DinoV2  # lazy: only self-contained files need it

    try:
        return DinoV2(**dict(recorded["config"]))
    except Exception as exc:  # CausalTuneError, TypeError, ValueError, RuntimeError from odd values
        raise CheckpointError(f"{path}: cannot rebuild the embedded backbone from its config: {exc}") from exc


def recorded_input_size(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """The network input ``(H, W)`` a checkpoint says it was trained or validated at, if it says so.

    Read from the free-form metadata (``user.input_size``, written by ``causal-tune train``) and rounded
    to the nearest multiple of the backbone's patch size, so the paper's 512 gives 518.

    Raises:
        CheckpointError: If the file is missing or is not a checkpoint.
    """
    meta = read_checkpoint_metadata(path)
    user = meta.get("user")
    size = user.get("input_size") if isinstance(user, dict) else None
    if not (isinstance(size, (list, tuple)) and len(size) == 2):
        return None
    backbone = meta.get("backbone")
    patch = backbone.get("patch_size", 14) if isinstance(backbone, dict) else 14
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v < 2**16 for v in (*size, patch)):
        raise CheckpointError(f"{path}: recorded input size {size!r} (patch {patch!r}) is not plausible")
    return tuple(max(patch, round(side / patch) * patch) for side in size)  # type: ignore[return-value]


def _build_model(file: Path, document: Mapping[str, Any], backbone: nn.Module | None) -> CausalTuneSegmenter:
    """The model the metadata describes, on ``backbone`` (``None``: the embedded one, rebuilt)."""
    if backbone is None:
        backbone = _build_embedded_backbone(file, document["backbone"])
    segmenter_config = document["segmenter"]
    try:
        head = build_head(segmenter_config["head"])
        keys = CausalTuneSegmenter.CONSTRUCTOR_KEYS
        kwargs = {k: segmenter_config[k] for k in keys if k in segmenter_config}
        return CausalTuneSegmenter(backbone, head, **kwargs)
    except CheckpointError:
        raise
    except Exception as exc:  # CausalTuneError, TypeError, ValueError, RuntimeError from odd values
        raise CheckpointError(f"{file}: cannot rebuild the model from its recorded config: {exc}") from exc


def _check_shapes(file: Path, handle: Any, document: Mapping[str, Any], backbone: nn.Module | None) -> None:
    """Check the declared architecture against the tensor shapes in the file header, allocating nothing.

    The model is built on PyTorch's ``meta`` device (shapes only), so a metadata document asking for a
    huge network costs nothing when the file does not hold its tensors.
    """
    load_backbone = backbone is None
    stored = set(handle.keys())
    if not load_backbone:
        stored = {name for name in stored if not name.startswith(_BACKBONE_PREFIX)}
    else:
        # Block count first: the meta build of an absurd depth would still cost time and memory.
        config = document["backbone"]["config"]
        declared = config.get("depth")
        blocks = {name.split(".")[2] for name in stored if name.startswith(_BACKBONE_PREFIX + "blocks.")}
        if isinstance(declared, int) and declared > len(blocks):
            raise CheckpointError(
                f"{file} does not fit the model its metadata describes: backbone depth {declared} "
                f"declared, the file holds {len(blocks)} blocks"
            )
    with torch.device("meta"):
        model = _build_model(file, document, backbone)
    expected = {
        name: tuple(tensor.shape)
        for name, tensor in model.state_dict().items()
        if load_backbone or not name.startswith(_BACKBONE_PREFIX)
    }
    missing = sorted(set(expected) - stored)
    unexpected = sorted(stored - set(expected))
    problems = []
    if missing:
        problems.append(f"missing tensors: {_few(missing)}")
    if unexpected:
        problems.append(f"unexpected tensors: {_few(unexpected)}")
    for name in sorted(stored & set(expected)):
        shape = tuple(handle.get_slice(name).get_shape())
        if shape != expected[name]:
            problems.append(f"{name}: shape {shape} in the file, the model needs {expected[name]}")
    if problems:
        raise CheckpointError(f"{file} does not fit the model its metadata describes: " + "; ".join(problems))


def _trained_on(document: dict[str, Any]) -> str | None:
    """The backbone weights the recorded training config names (``model.backbone.weights``), if any."""
    train_config = (document.get("user") or {}).get("train_config")
    if not isinstance(train_config, dict):
        return None
    weights = ((train_config.get("model") or {}).get("backbone") or {}).get("weights")
    return str(weights) if weights else None


def load_checkpoint(path: str | os.PathLike[str], backbone: nn.Module | None = None) -> CausalTuneSegmenter:
    """Rebuild a :class:`CausalTuneSegmenter` from a checkpoint.

    Args:
        path: Checkpoint file written by :func:`save_checkpoint`.
        backbone: The frozen backbone the checkpoint was trained on (e.g.
            ``DinoV2.from_pretrained("dinov2_vits14_pretrain.pth")``); it must match the recorded config.
            ``None``: use the backbone embedded in the file (``include_backbone=True`` at save time).

    Returns:
        The segmenter in eval mode, on the given backbone's device (CPU for an embedded backbone).

    Raises:
        CheckpointError: Missing / corrupt / truncated / non-safetensors file; no backbone given for a file
            without one; a backbone differing from the recorded one (each differing field named);
            missing or unexpected tensors; tensor shape mismatches; a config that cannot be rebuilt.
    """
    file = Path(path)
    with _open(file) as handle:
        document = _parse_metadata(file, handle.metadata())
        recorded = document["backbone"]
        embedded = bool(recorded.get("embedded"))
        if backbone is None:
            if not embedded:
                trained_on = _trained_on(document)
                raise CheckpointError(
                    f"{file} does not embed its backbone: the backbone must be given (`--backbone FILE` "
                    f"on the command line; load_checkpoint(path, backbone=DinoV2.from_pretrained(FILE)) "
                    f"in Python) with the {recorded.get('arch')!r} weights it was trained on"
                    + (f", which its training config names: {trained_on}" if trained_on else "")
                    + f" (recorded config: {json.dumps(recorded['config'], sort_keys=True)})"
                )
            load_backbone = True
        else:
            differences = backbone_differences(recorded, backbone)
            if differences:
                raise CheckpointError(
                    f"the given backbone does not match the one {file} was trained on: "
                    + "; ".join(differences)
                )
            load_backbone = False

        _check_shapes(file, handle, document, None if load_backbone else backbone)
        model = _build_model(file, document, None if load_backbone else backbone)
        expected = [
            name for name in model.state_dict() if load_backbone or not name.startswith(_BACKBONE_PREFIX)
        ]
        try:
            tensors = {name: handle.get_tensor(name) for name in expected}
        except Exception as exc:  # data region unreadable
            raise CheckpointError(
                f"{file}: cannot read tensor data ({exc}); the file may be truncated"
            ) from exc

    model.load_state_dict(tensors, strict=False)
    device = next(iter(model.backbone.parameters()), torch.empty(0)).device
    return model.to(device).eval()
