"""Class names, colours and ids, loaded from configuration (``config/classes.yaml`` by default)."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import yaml

from causal_tune_ros.errors import ConfigError
from causal_tune_ros.resources import config_path

IGNORE_ID = 255
#: Largest class file read (a class list is a few kilobytes; the name can come from any ROS peer).
MAX_CLASS_FILE_BYTES = 1 << 20


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


def _read_regular_file(path: Path, limit: int) -> str:
    """The UTF-8 text of ``path`` if it is a regular file of at most ``limit`` bytes.

    The file is opened non-blocking and checked on the open descriptor, so a FIFO, a device such as
    ``/dev/zero`` or a file swapped in between never stalls or exhausts the caller. Errors never quote
    the file's contents.

    Raises:
        ConfigError: If it cannot be opened, is not a regular file, is too large or is not UTF-8.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise ConfigError(f"cannot open class file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"class file {path} is not a regular file")
        if info.st_size > limit:
            raise ConfigError(f"class file {path} is larger than {limit} bytes")
        try:
            data = f.read(limit + 1)
        except OSError as exc:
            raise ConfigError(f"cannot read class file {path}: {exc.strerror}") from None
    if len(data) > limit:
        raise ConfigError(f"class file {path} is larger than {limit} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"class file {path} is not UTF-8 text") from None


def _load(path: Path) -> ClassSet:
    text = _read_regular_file(path, MAX_CLASS_FILE_BYTES)
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise ConfigError(f"class file {path} is not valid YAML{where}") from None
    # Messages below describe the expected layout only: the file may hold anything (never echo it).
    expected = f"{path}: expected 'classes: [{{name, color: [r, g, b]}}, ...]' and an optional ignore_id"
    try:
        entries = doc["classes"]
        names = tuple(str(e["name"]) for e in entries)
        colors = np.array([e["color"] for e in entries], dtype=np.int64)
        ignore_id = int(doc.get("ignore_id", IGNORE_ID))
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
        raise ConfigError(expected) from None
    if not names or colors.shape != (len(names), 3) or colors.min() < 0 or colors.max() > 255:
        raise ConfigError(f"{path}: every class needs a name and an RGB colour in 0..255")
    if len(names) > 254 or ignore_id < len(names):
        raise ConfigError(f"{path}: at most 254 classes and ignore_id ({ignore_id}) above the last train id")
    return ClassSet(names=names, colors=colors.astype(np.uint8), ignore_id=ignore_id)
