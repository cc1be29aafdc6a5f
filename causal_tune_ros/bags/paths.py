"""Where a bag lies on disk: storage choice, the paths it occupies, what may be replaced or written."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from causal_tune_ros.errors import BagError

STORAGES = ("sqlite3", "mcap")
#: Storage plugin of a storage-file suffix.
STORAGE_OF_SUFFIX = {".mcap": "mcap", ".db3": "sqlite3"}

#: File-format magics of the storage files a bare-file bag can be.
_MAGIC = {".mcap": b"\x89MCAP0\r\n", ".db3": b"SQLite format 3\x00"}


def storage_for(path: str | Path, storage: str | None = None, like: str | Path | None = None) -> str:
    """Storage plugin to write ``path`` with: ``storage`` if given, else from a ``.mcap``/``.db3`` suffix,
    else the storage of the existing bag ``like`` (a replay writes what it read), else ``mcap`` (the ROS 2
    default since Iron).

    Raises:
        BagError: For an unknown storage name.
    """
    if storage is not None:
        if storage not in STORAGES:
            raise BagError(f"unknown storage {storage!r}; expected one of {', '.join(STORAGES)}")
        return storage
    if Path(path).suffix in STORAGE_OF_SUFFIX:
        return STORAGE_OF_SUFFIX[Path(path).suffix]
    return "mcap" if like is None else storage_of(like)


def storage_of(path: str | Path) -> str:
    """Storage plugin of an existing bag: a bare file's suffix, else the storage files in its folder."""
    path = Path(path)
    if path.is_file():
        return STORAGE_OF_SUFFIX.get(path.suffix, "sqlite3")
    return "mcap" if any(path.glob("*.mcap")) else "sqlite3"


def _resolve(path: str | Path) -> Path:
    """Absolute path with every symbolic link followed (also for a path that does not exist yet)."""
    return Path(os.path.realpath(os.path.abspath(os.fspath(path))))


def bag_paths(path: str | Path) -> list[Path]:
    """Every file-system path a bag occupies, resolved (symlinks followed).

    The bag path itself, and for a bag folder each entry directly inside it (a storage file linked in
    from elsewhere counts where it really lies).
    """
    root = Path(path)
    result = [_resolve(root)]
    if root.is_dir():
        with os.scandir(root) as entries:
            result.extend(_resolve(e.path) for e in entries)
    return result


def check_not_overlapping(output: str | Path, protected: Sequence[str | Path], what: str = "output") -> None:
    """Refuse an output path that is, contains or lies inside a protected path.

    Paths are compared resolved, with symbolic links followed, so ``drive/../drive``, a link to the
    input or a folder holding it are all caught.

    Args:
        output: Path about to be written (or replaced).
        protected: Paths that must not be touched (the input bag and its files).
        what: Name of the output in the message (``"output bag"``, ``"video"``).

    Raises:
        BagError: On any overlap.
    """
    out = _resolve(output)
    for item in protected:
        src = _resolve(item)
        if out == src:
            raise BagError(f"the {what} {output} is the input {item}; choose another path")
        if out.is_relative_to(src):
            raise BagError(f"the {what} {output} lies inside the input {item}; choose a path outside it")
        if src.is_relative_to(out):
            raise BagError(
                f"the {what} {output} contains the input {item}; replacing it would destroy the input"
            )


def not_a_bag_reason(path: str | Path) -> str | None:
    """Why ``path`` is not a rosbag2 bag that may be replaced, or ``None`` if it is one.

    A bag is a folder whose ``metadata.yaml`` is rosbag2 metadata and lists every storage file in the
    folder (and nothing else is in it besides SQLite's ``-wal`` / ``-shm`` companions), or a bare
    ``.mcap`` / ``.db3`` file with that format's magic bytes.
    """
    import yaml

    p = Path(path)
    if p.is_symlink():
        return "it is a symbolic link"
    if p.is_file():
        magic = _MAGIC.get(p.suffix)
        if magic is None:
            return "it is a file, not a bag folder or a .mcap / .db3 bag file"
        with p.open("rb") as f:
            if f.read(len(magic)) != magic:
                return f"it is not a {p.suffix} file"
        return None
    if not p.is_dir():
        return "it is not a regular file or folder"
    meta = p / "metadata.yaml"
    if not meta.is_file():
        return "it has no metadata.yaml"
    try:
        info = yaml.safe_load(meta.read_text(encoding="utf-8"))["rosbag2_bagfile_information"]
        listed = {Path(str(f)).name for f in info.get("relative_file_paths") or []}
    except Exception:  # unreadable YAML, wrong structure: not ours to delete
        return "its metadata.yaml is not rosbag2 metadata"
    allowed = {"metadata.yaml"} | listed | {f"{n}-wal" for n in listed} | {f"{n}-shm" for n in listed}
    others = sorted(e.name for e in p.iterdir() if e.name not in allowed)
    if others:
        shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        return f"it holds files its metadata.yaml does not list ({shown})"
    return None


def storage_file_stem(path: str | Path) -> str:
    """Name (without suffix) of the storage file inside the bag folder ``path``, as ``ros2 bag record``
    names its first file: ``drive_seg.mcap`` -> ``drive_seg_0``; ``run7`` -> ``run7_0``."""
    p = Path(path)
    stem = p.stem if p.suffix in STORAGE_OF_SUFFIX else p.name
    return f"{stem}_0"
