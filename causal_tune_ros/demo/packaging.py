"""``causal-tune demo --package-model``: store a trained checkpoint as the shipped demo model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from causal_tune_ros.demo.layout import DEFAULT_SIZE

DEMO_TRAIN_COMMAND = "causal-tune train --config config/train/synthetic_pocket.yaml"
DEMO_PACKAGE_COMMAND = (
    "causal-tune demo --package-model runs/synthetic_pocket/model.safetensors "
    "--package-to models/demo/causal_tune_demo.safetensors --train-seconds <wall time of the training>"
)


def _describe_trained(train_config: dict[str, Any], depth: int, width: int, patch: int) -> tuple[str, str]:
    """``(description, backbone note)`` of a trained demo model: its training config and backbone shape."""
    model = train_config.get("model") or {}
    backbone = model.get("backbone") or {}
    tuner = model.get("tuner") or {}
    size = f"{depth} blocks, width {width}, patch {patch}"
    if backbone.get("weights"):
        what = f"small ViT ({size}) pretrained without labels on synthetic scenes, frozen; NOT DINOv2"
        note = f"pocket ViT pretrained without semantic labels ({backbone['weights']}), embedded; not DINOv2"
    else:
        what = f"small random-init ViT ({size}; NOT DINOv2, frozen random weights)"
        note = "random-init ViT, never trained (frozen random weights), embedded in this file; not DINOv2"
    if tuner.get("operator") == "rein":
        tokens = "Rein-style tokens without the band-pass (the demo's ablation)"
    elif tuner.get("frozen"):
        tokens = "no tokens (decode head only)"
    else:
        tokens = "Causal-Tune tokens"
    description = (
        f"DEMO model: {what} + {tokens} and light head trained on clear synthetic street scenes only "
        "(snow, rain, fog, night unseen); for trying the package, not for real roads"
    )
    return description, note


def package_demo_model(
    trained: str | Path,
    out: str | Path = "models/demo/causal_tune_demo.safetensors",
    train_seconds: float | None = None,
    train_command: str = DEMO_TRAIN_COMMAND,
) -> Path:
    """Turn a trained synthetic checkpoint into the shipped demo model.

    Stores the tensors as float16 (halves the file; loading casts back to float32, and the demo's mIoU
    moves by less than 0.1 point) and labels the file as a demo: description, the recipe that made it,
    the training time and the network input size it was trained at (``user.input_size``, which replay,
    the node and the demo use as their default).

    Args:
        trained: ``model.safetensors`` written by ``causal-tune train`` with an embedded backbone.
        out: Output file.
        train_seconds: Wall time of the training run, recorded in the metadata.
        train_command: The command that trained it, recorded in the metadata.

    Returns:
        The written path.

    Raises:
        CheckpointError: The input is not a loadable checkpoint, or the backbone weights its training
            config names (when it embeds none) cannot be loaded.
    """
    from causal_tune_ros.model.checkpoint import load_checkpoint, read_checkpoint_metadata, save_checkpoint

    meta = read_checkpoint_metadata(trained)
    user = dict(meta.get("user") or {})
    train_config = user.get("train_config") or {}
    weights = ((train_config.get("model") or {}).get("backbone") or {}).get("weights")
    backbone = None
    if weights and not (meta.get("backbone") or {}).get("embedded"):
        from causal_tune_ros.model.dinov2 import DinoV2

        backbone = DinoV2.from_pretrained(weights)  # what it was trained on; embedded below
    model = load_checkpoint(trained, backbone=backbone)
    crop = (train_config.get("augment") or {}).get("crop_size") or list(DEFAULT_SIZE)
    bb = model.backbone
    description, backbone_note = _describe_trained(train_config, bb.depth, bb.embed_dim, bb.patch_size)
    labels = {
        "description": description,
        "demo": True,
        "backbone_note": backbone_note,
        "input_size": [int(crop[0]), int(crop[1])],
        "train_command": train_command,
        "package_command": DEMO_PACKAGE_COMMAND,
        "train_seconds": None if train_seconds is None else round(float(train_seconds), 1),
        "train_conditions": ["clear"],
        "dtype": "float16",
    }
    user.update(labels)
    path = save_checkpoint(
        out,
        model.half(),
        metadata=user,
        include_backbone=True,
        class_names=meta.get("class_names"),
        band=meta.get("train_band"),
    )
    path.chmod(0o644)  # a shipped data file: readable by every user of an installed package
    return path
