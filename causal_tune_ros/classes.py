"""Class names, colours and ids, loaded from configuration (``config/classes.yaml`` by default)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import yaml

from causal_tune_ros.errors import ConfigError
from causal_tune_ros.resources import config_path

IGNORE_ID = 255


@dataclass(frozen=True)
class ClassSet:
    """An ordered list of semantic classes; the index of a class is its train id.

    Attributes:
        names: Class names in train-id order.
        colors: ``(K, 3)`` uint8 RGB palette in train-id order.
        ignore_id: Label value for unlabelled pixels (never predicted).
    """

    names: tuple[str, ...]
    colors: np.ndarray
    ignore_id: int = IGNORE_ID

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        """Train id of ``name``.

        Raises:
            ConfigError: If the class is unknown.
        """
        try:
            return self.names.index(name)
        except ValueError:
            raise ConfigError(f"unknown class {name!r}; known: {', '.join(self.names)}") from None

    def palette(self) -> np.ndarray:
        """A ``(256, 3)`` uint8 lookup table: train id -> colour, black for ids without a class."""
        lut = np.zeros((256, 3), dtype=np.uint8)
        lut[: len(self.names)] = self.colors
        return lut

    def colorize(self, mask: np.ndarray) -> np.ndarray:
        """``(H, W)`` train ids -> ``(H, W, 3)`` RGB colours."""
        return self.palette()[mask]


def load_classes(path: str | Path | None = None) -> ClassSet:
    """Read a class set from YAML (default: the packaged Cityscapes 19 classes).

    Args:
        path: A YAML file with ``classes: [{name, color}, ...]`` and optional ``ignore_id``.

    Raises:
        ConfigError: If the file is missing or malformed.
    """
    if path is None:
        return _default_classes()
    return _load(Path(path))


@lru_cache(maxsize=1)
def _default_classes() -> ClassSet:
    return _load(config_path("classes.yaml"))


def _load(path: Path) -> ClassSet:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read class file {path}: {exc}") from exc
    try:
        entries = doc["classes"]
        names = tuple(str(e["name"]) for e in entries)
        colors = np.array([e["color"] for e in entries], dtype=np.int64)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: expected 'classes: [{{name, color: [r, g, b]}}, ...]' ({exc})") from exc
    if not names or colors.shape != (len(names), 3) or colors.min() < 0 or colors.max() > 255:
        raise ConfigError(f"{path}: every class needs a name and an RGB colour in 0..255")
    ignore_id = int(doc.get("ignore_id", IGNORE_ID))
    if len(names) > 254 or ignore_id < len(names):
        raise ConfigError(f"{path}: at most 254 classes and ignore_id ({ignore_id}) above the last train id")
    return ClassSet(names=names, colors=colors.astype(np.uint8), ignore_id=ignore_id)
