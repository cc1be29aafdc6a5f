"""What a fleet output folder holds, what in it is complete, and how a bag's results are committed.

Layout of ``OUT``::

    OUT/<name>/                 output bag of input bag <name> (what `causal-tune replay` writes)
    OUT/index.parquet           frame index of every complete bag in OUT
    OUT/fleet_summary.json      the last run's summary
    OUT/.fleet/parts/<name>.parquet   one bag's index rows + JSON metadata (options, input, summary)
    OUT/.fleet/tmp/             attempts in progress (removed when a run starts)
    OUT/.fleet/lock             held by the running fleet command

A bag is *complete* when both its output bag and its part file exist. A worker writes both under
``.fleet/tmp/``; the driver then renames the part into place, then the bag, so an interrupted run leaves
either nothing visible or a part without its bag, which the next run redoes.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from causal_tune_ros.errors import FleetError
from causal_tune_ros.fleet.index import read_metadata
from causal_tune_ros.fleet.inputs import BagJob

#: Bag states found by :func:`bag_state`.
TODO = "todo"
DONE = "done"
STALE = "stale"
FOREIGN = "foreign"


@dataclass(frozen=True)
class Layout:
    """Paths inside a fleet output folder ``out``."""

    out: Path

    @property
    def private(self) -> Path:
        """``OUT/.fleet``: the fleet's own bookkeeping."""
        return self.out / ".fleet"

    @property
    def parts(self) -> Path:
        """Folder of the per-bag index parts."""
        return self.private / "parts"

    @property
    def tmp(self) -> Path:
        """Folder of attempts in progress."""
        return self.private / "tmp"

    @property
    def index(self) -> Path:
        """``OUT/index.parquet``."""
        return self.out / "index.parquet"

    @property
    def summary(self) -> Path:
        """``OUT/fleet_summary.json``."""
        return self.out / "fleet_summary.json"

    def output(self, name: str) -> Path:
        """Output bag of bag ``name``."""
        return self.out / name

    def part(self, name: str) -> Path:
        """Index part of bag ``name``."""
        return self.parts / (file_key(name) + ".parquet")

    def new_attempt(self, name: str) -> Path:
        """A fresh folder path for one attempt at bag ``name`` (not created)."""
        return self.tmp / f"{file_key(name)}.{uuid.uuid4().hex[:12]}"


def file_key(name: str) -> str:
    """A file name for bag ``name``: readable, unique, only ``[A-Za-z0-9._-]`` (SQLite opens bags through
    URIs, where ``%`` and ``?`` would be decoded)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "bag"
    return f"{slug}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


def fingerprint(settings: dict[str, Any]) -> str:
    """A short stable hash of the settings that shape the outputs (JSON-able values)."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def bag_state(layout: Layout, job: BagJob, settings_hash: str) -> tuple[str, dict[str, Any] | None, str]:
    """Whether ``job``'s outputs in ``layout`` are complete and current.

    Returns:
        ``(state, part metadata or None, note)`` with state :data:`DONE` (complete, same input and
        settings), :data:`STALE` (complete, but made from another input file or other settings),
        :data:`FOREIGN` (``OUT/<name>`` exists but no finished fleet run wrote it) or :data:`TODO`.
    """
    output = layout.output(job.name)
    part = layout.part(job.name)
    has_output = output.exists()
    meta = read_metadata(part) if part.exists() else None
    if meta is None:
        if has_output:
            return FOREIGN, None, f"{output} exists but was not written by a finished fleet run"
        return TODO, None, ""
    if not has_output:
        return TODO, meta, ""
    if meta.get("input") != job.identity:
        return STALE, meta, "the input bag changed since its output was written"
    if meta.get("settings") != settings_hash:
        return STALE, meta, "its output was made with other settings"
    return DONE, meta, ""


def commit(layout: Layout, name: str, attempt: Path, overwrite: bool = False) -> Path:
    """Move a finished attempt into place: the index part first, then the output bag.

    Args:
        layout: The output folder.
        name: Bag name.
        attempt: The attempt folder, holding ``bag/`` and ``index.parquet``.
        overwrite: Replace an existing output bag (only a rosbag2 folder is ever removed).

    Returns:
        The output bag path.

    Raises:
        FleetError: The output exists (and ``overwrite`` is false, or it is not a rosbag2 folder) or
            the renames fail.
    """
    output = layout.output(name)
    part = layout.part(name)
    if output.exists():
        if not overwrite:
            raise FleetError(f"output bag {output} exists already (pass --overwrite to replace it)")
        if not (output / "metadata.yaml").is_file():
            raise FleetError(f"{output} exists and is not a rosbag2 folder; refusing to replace it")
    try:
        layout.parts.mkdir(parents=True, exist_ok=True)
        # The part goes first and the old one is gone before the old bag: no state pairs a new part
        # with an old bag.
        part.unlink(missing_ok=True)
        if output.exists():
            shutil.rmtree(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        os.replace(attempt / "index.parquet", part)
        os.rename(attempt / "bag", output)
    except OSError as exc:
        raise FleetError(f"cannot move the results of {name} into {layout.out}: {exc}") from exc
    shutil.rmtree(attempt, ignore_errors=True)
    return output


def complete_parts(layout: Layout) -> list[Path]:
    """Part files whose output bag exists, sorted by bag name."""
    if not layout.parts.is_dir():
        return []
    found = []
    for part in sorted(layout.parts.glob("*.parquet")):
        meta = read_metadata(part)
        if meta is not None and layout.output(str(meta.get("name", ""))).exists():
            found.append((str(meta["name"]), part))
    return [p for _, p in sorted(found)]


@contextmanager
def locked(layout: Layout) -> Iterator[None]:
    """Hold ``OUT/.fleet/lock`` so two fleet commands never write the same folder; clear old attempts.

    Raises:
        FleetError: If another fleet command holds the lock, or the folder cannot be created.
    """
    try:
        layout.private.mkdir(parents=True, exist_ok=True)
        handle = open(layout.private / "lock", "a+")  # noqa: SIM115 (held until the block ends)
    except OSError as exc:
        raise FleetError(f"cannot create the fleet output folder {layout.out}: {exc}") from exc
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise FleetError(f"another causal-tune fleet command is writing {layout.out}") from None
            raise FleetError(f"cannot lock {layout.out}: {exc}") from exc
        # Leftovers of interrupted runs: nothing else writes here while we hold the lock.
        shutil.rmtree(layout.tmp, ignore_errors=True)
        layout.tmp.mkdir(parents=True, exist_ok=True)
        yield
    finally:
        handle.close()
