"""Export a checkpoint to a deployable artefact (ONNX graph or TensorRT program) and inspect one.

The top of the export code: the ONNX exporter lives in :mod:`.onnx_export`, the TensorRT builder in
:mod:`.tensorrt_backend`; this module dispatches between them, checks an ONNX artefact against PyTorch and
describes an artefact's sidecar for the CLI. The names of :mod:`.onnx_export` are re-exported here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from causal_tune_ros.backends.base import parse_size
from causal_tune_ros.backends.cache import model_hash, sidecar_path
from causal_tune_ros.backends.onnx_export import (
    DEFAULT_OPSET,
    FORMATS,
    MIN_OPSET,
    OUTPUT_NAME,
    backbone_linear_nodes,
    export_checkpoint_onnx,
    export_onnx,
    export_onnx_graph,
    onnx_versions,
    quantize_int8,
)
from causal_tune_ros.backends.onnxruntime_backend import make_session
from causal_tune_ros.backends.segmenter import load_segmenter, source_metadata
from causal_tune_ros.backends.tensorrt_backend import build_tensorrt
from causal_tune_ros.errors import ConfigError


def export_artefact(
    checkpoint: str | Path,
    output: str | Path,
    input_size: tuple[int, int] | str,
    fmt: str = "onnx",
    precision: str = "fp32",
    *,
    backbone: str | Path | None = None,
    opset: int = DEFAULT_OPSET,
    fused_attention: bool = True,
) -> Path:
    """Export a checkpoint (and its backbone) to an ONNX file or TensorRT program with a sidecar.

    Args:
        checkpoint: Causal-Tune checkpoint.
        output: Artefact path.
        input_size: ``(H, W)`` or ``"HxW"``.
        fmt: ``onnx`` or ``tensorrt``.
        precision: ``fp32`` / ``fp16`` / ``int8`` (int8: ONNX only).
        backbone: Backbone weights, ``None`` when embedded in the checkpoint.
        opset: ONNX opset.
        fused_attention: ONNX only, see :func:`export_onnx_graph`.

    Returns:
        The artefact path (its sidecar is ``<path>.json``).

    Raises:
        ConfigError: Bad format / precision / size combination.
        CheckpointError: Unreadable or mismatching weights.
        BackendError: Export failure or missing library.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")
    size = parse_size(input_size)
    if fmt == "onnx":
        return export_checkpoint_onnx(
            checkpoint,
            output,
            size,
            precision,
            backbone=backbone,
            opset=opset,
            fused_attention=fused_attention,
        )
    return build_tensorrt(
        load_segmenter(checkpoint, backbone),
        output,
        size,
        precision,
        model_id=model_hash(checkpoint, backbone),
        metadata=source_metadata(checkpoint, backbone),
    )


def verify_onnx(
    artefact: str | Path, model: Any, band: tuple[float, float] = (0.2, 0.7), seed: int = 0
) -> dict[str, float]:
    """Compare an ONNX artefact with the PyTorch model on one random image.

    Args:
        artefact: ONNX file (fp32 or int8).
        model: The fp32 segmenter it was exported from.
        band: Band to run both with.
        seed: Seed of the random image.

    Returns:
        ``{"max_abs_diff": ..., "class_agreement": ...}``.

    Raises:
        BackendError: If onnxruntime is missing or the session fails.
    """
    import torch

    meta = json.loads(sidecar_path(artefact).read_text(encoding="utf-8"))
    h, w = meta["input_size"]
    rng = np.random.default_rng(seed)
    images = rng.random((1, 3, h, w), dtype=np.float32)
    band_arr = np.asarray(band, dtype=np.float32)
    session = make_session(artefact, device="cpu")
    got = session.run([OUTPUT_NAME], {"images": images, "band": band_arr})[0]
    with torch.inference_mode():
        want = model.float()(torch.from_numpy(images), torch.from_numpy(band_arr)).numpy()
    return {
        "max_abs_diff": float(np.abs(got - want).max()),
        "class_agreement": float((got.argmax(1) == want.argmax(1)).mean()),
    }


def describe_artefact(path: str | Path) -> str:
    """One line per sidecar fact, for the CLI."""
    meta = json.loads(sidecar_path(path).read_text(encoding="utf-8"))
    lines = [f"artefact: {path} ({os.path.getsize(path) / 1e6:.1f} MB)", f"sidecar: {sidecar_path(path)}"]
    for key in (
        "format",
        "precision",
        "input_size",
        "model_hash",
        "opset",
        "exporter",
        "num_classes",
        "versions",
    ):
        if key in meta:
            lines.append(f"{key}: {meta[key]}")
    return "\n".join(lines)


__all__ = [
    "DEFAULT_OPSET",
    "FORMATS",
    "MIN_OPSET",
    "backbone_linear_nodes",
    "describe_artefact",
    "export_artefact",
    "export_checkpoint_onnx",
    "export_onnx",
    "export_onnx_graph",
    "load_segmenter",
    "onnx_versions",
    "quantize_int8",
    "verify_onnx",
]
