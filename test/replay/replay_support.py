"""Helpers shared by the replay tests."""

from __future__ import annotations

from pathlib import Path


def replay_args(in_bag: Path, out: Path, checkpoint: Path, *extra: str) -> list[str]:
    """``causal-tune replay`` arguments for the tiny test model: eager, 28x42, clear band, quiet."""
    return [
        "replay",
        str(in_bag),
        "-o",
        str(out),
        "--checkpoint",
        str(checkpoint),
        "--backend",
        "eager",
        "--input-size",
        "28x42",
        "--weather",
        "clear",
        "--quiet",
        *extra,
    ]
