"""Find the bags of a fleet run: bag folders, bare ``.mcap`` / ``.db3`` files, and folders holding them.

Each bag gets a *name*: its path relative to the folder it was found under (the bag folder's own name,
or the file name without its suffix, when the bag itself was named). The output bag is ``OUT/<name>``
and the index's ``bag`` column holds the name, so names are unique within a run.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from causal_tune_ros.errors import FleetError

#: Suffixes of bare bag files.
BAG_SUFFIXES = (".mcap", ".db3")
#: Names under OUT that the fleet writes itself; no bag may be named like them.
RESERVED_NAMES = frozenset({"index.parquet", "fleet_summary.json", ".fleet"})


@dataclass(frozen=True)
class BagJob:
    """One input bag.

    Attributes:
        name: Unique name in the run (relative path, ``/``-separated, no storage suffix).
        path: The bag: a rosbag2 folder or a bare ``.mcap`` / ``.db3`` file (absolute).
        size: Bytes of the bag's files (part of its identity for resume).
        mtime_ns: Latest modification time of the bag's files (part of its identity for resume).
    """

    name: str
    path: Path
    size: int
    mtime_ns: int

    @property
    def identity(self) -> dict[str, object]:
        """What identifies this input for resume: path, size and modification time."""
        return {"path": str(self.path), "size": self.size, "mtime_ns": self.mtime_ns}


def is_bag_folder(path: Path) -> bool:
    """Whether ``path`` is a rosbag2 folder (holds ``metadata.yaml``)."""
    return path.is_dir() and (path / "metadata.yaml").is_file()


def is_bag_file(path: Path) -> bool:
    """Whether ``path`` is a bare bag file (``.mcap`` or ``.db3``)."""
    return path.is_file() and path.suffix in BAG_SUFFIXES


def _identity(path: Path) -> tuple[int, int]:
    files = [path] if path.is_file() else [p for p in path.iterdir() if p.is_file()]
    stats = [f.stat() for f in files]
    return sum(s.st_size for s in stats), max((s.st_mtime_ns for s in stats), default=0)


def _walk(root: Path, exclude: Path | None) -> Iterator[Path]:
    """Bags under a plain folder, depth first, not descending into bags, hidden folders or ``exclude``."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        here = Path(dirpath)
        keep = []
        for d in sorted(dirnames):
            sub = here / d
            if d.startswith(".") or (exclude is not None and sub.resolve() == exclude):
                continue
            if is_bag_folder(sub):
                yield sub
            else:
                keep.append(d)
        dirnames[:] = keep
        for f in sorted(filenames):
            if not f.startswith(".") and Path(f).suffix in BAG_SUFFIXES:
                yield here / f


def _name(path: Path, base: Path) -> str:
    rel = path.relative_to(base)
    if path.is_file():
        rel = rel.with_suffix("")
    return rel.as_posix()


def find_bags(paths: Sequence[str | Path], exclude: str | Path | None = None) -> list[BagJob]:
    """The bags named by or found under ``paths``, sorted by name.

    Args:
        paths: Bag folders, bare bag files, or folders searched recursively for them (hidden folders
            are skipped; a bag folder is not searched inside).
        exclude: A folder never searched (the output folder, when it lies inside an input folder).

    Returns:
        One :class:`BagJob` per distinct bag.

    Raises:
        FleetError: A path does not exist or is no bag and holds none, two bags would get the same
            name, or no bag was found at all.
    """
    skip = Path(exclude).resolve() if exclude is not None else None
    found: dict[Path, str] = {}
    for given in paths:
        path = Path(given)
        if not path.exists():
            raise FleetError(f"input {path} does not exist")
        if is_bag_folder(path) or is_bag_file(path):
            candidates: Iterable[tuple[Path, str]] = [(path, _name(path, path.parent))]
        elif path.is_dir():
            bags = [(b, _name(b, path)) for b in _walk(path, skip)]
            if not bags:
                raise FleetError(f"{path} holds no rosbag2 (no folder with metadata.yaml, no .mcap / .db3)")
            candidates = bags
        else:
            raise FleetError(f"{path} is not a rosbag2 (a folder with metadata.yaml, or a .mcap / .db3 file)")
        for bag, name in candidates:
            found.setdefault(bag.resolve(), name)
    by_name: dict[str, Path] = {}
    for bag, name in found.items():
        if name in by_name:
            raise FleetError(
                f"two input bags would both be written to OUT/{name}: {by_name[name]} and {bag}; "
                "rename one, or pass their parent folders so their names differ"
            )
        if name.split("/")[0] in RESERVED_NAMES:
            raise FleetError(f"input bag {bag} cannot be named {name!r} (reserved under OUT)")
        by_name[name] = bag
    if not by_name:
        raise FleetError("no input bag given")
    jobs = []
    for name in sorted(by_name):
        size, mtime = _identity(by_name[name])
        jobs.append(BagJob(name=name, path=by_name[name], size=size, mtime_ns=mtime))
    return jobs
