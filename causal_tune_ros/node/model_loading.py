"""Loading the model for the node: parameters -> backend spec, and the log bridge for backend messages."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from causal_tune_ros.backends import BackendSpec, recorded_input_size_or_none
from causal_tune_ros.errors import ConfigError
from causal_tune_ros.node.parameters.settings import NodeSettings
from causal_tune_ros.resources import data_path

if TYPE_CHECKING:
    from rclpy.impl.rcutils_logger import RcutilsLogger

DEMO_MODEL = ("models", "demo", "causal_tune_demo.safetensors")


class RosLogHandler(logging.Handler):
    """Forwards the package's Python ``logging`` records (backends, engine builds) to the node's logger."""

    def __init__(self, ros_logger: RcutilsLogger) -> None:
        super().__init__(level=logging.INFO)
        self._ros_logger = ros_logger

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            if record.levelno >= logging.ERROR:
                self._ros_logger.error(text)
            elif record.levelno >= logging.WARNING:
                self._ros_logger.warning(text)
            else:
                self._ros_logger.info(text)
        except Exception:  # logging must never break the caller
            self.handleError(record)


def resolve_checkpoint(path: str) -> str:
    """The checkpoint file to load: ``path``, or the shipped demo model when it is ''.

    Raises:
        ConfigError: If '' is given and the demo model is not installed.
    """
    if path:
        return path
    try:
        return str(data_path(*DEMO_MODEL))
    except ConfigError as exc:
        raise ConfigError(f"model.checkpoint is '' (the demo model) but it is not installed: {exc}") from None


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when PyTorch sees a GPU, else ``cpu``; others unchanged."""
    if device != "auto":
        return device
    import torch  # only to ask for a GPU; the node handles no tensors

    return "cuda" if torch.cuda.is_available() else "cpu"


def backend_spec(settings: NodeSettings) -> BackendSpec:
    """The :class:`~causal_tune_ros.backends.BackendSpec` the parameters ask for.

    Raises:
        ConfigError: For values the backends reject.
    """
    fields: dict[str, Any] = {
        "name": settings.backend,
        "checkpoint": resolve_checkpoint(settings.checkpoint),
        "backbone": settings.backbone or None,
        "device": resolve_device(settings.device),
        "precision": settings.precision,
        "cache_dir": settings.engine_cache_dir or None,
        "force_rebuild": settings.engine_force_rebuild,
        "num_threads": settings.cpu_threads or None,
    }
    size = settings.input_size or recorded_input_size_or_none(fields["checkpoint"])
    if size is not None:
        fields["input_size"] = size
    return BackendSpec(**fields)
