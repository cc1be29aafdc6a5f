"""Loading the segmenter a backend runs or exports, and the sidecar facts naming its source files.

The lowest module of ``backends/`` that touches the model package (imported lazily, so a backend that
runs a prebuilt artefact never imports torch through here).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def load_segmenter(checkpoint: str | Path, backbone: str | Path | None = None) -> Any:
    """Load a :class:`~causal_tune_ros.model.causal_tune.CausalTuneSegmenter` (eval mode, CPU).

    Args:
        checkpoint: Causal-Tune checkpoint file.
        backbone: DINOv2 weights (official ``.pth``, HF folder, ...); ``None`` when the checkpoint embeds it.

    Returns:
        The model.

    Raises:
        CheckpointError: Missing, corrupt or mismatching files (from the model package).
    """
    from causal_tune_ros.model.checkpoint import load_checkpoint
    from causal_tune_ros.model.dinov2 import DinoV2

    module = None if backbone is None else DinoV2.from_pretrained(backbone)
    return load_checkpoint(checkpoint, backbone=module).eval()


def source_metadata(checkpoint: str | Path, backbone: str | Path | None) -> dict[str, Any]:
    """Sidecar entries naming the files an artefact was built from (file names only)."""
    return {
        "checkpoint": Path(checkpoint).name,
        "backbone": None if backbone is None else Path(backbone).name,
    }
