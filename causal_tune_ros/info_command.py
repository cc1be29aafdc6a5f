"""``causal-tune info``: versions, devices and optional backends available on this machine."""

from __future__ import annotations

import argparse
import importlib
import platform

from causal_tune_ros import __version__

HELP = "print package, library and device information"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options."""


def _version(module: str) -> str:
    try:
        mod = importlib.import_module(module)
    except Exception:  # optional library missing or broken: report, never fail
        return "not installed"
    return str(getattr(mod, "__version__", "installed"))


def run(args: argparse.Namespace) -> int:
    """Print one ``key: value`` line per fact."""
    import torch

    print(f"causal_tune_ros: {__version__}")
    print(f"python: {platform.python_version()} ({platform.machine()})")
    print(f"torch: {torch.__version__}; cuda: {torch.cuda.is_available()}")
    for name in ("torch_tensorrt", "onnxruntime", "onnx", "rclpy", "rosbags", "cv2"):
        print(f"{name}: {_version(name)}")
    return 0
