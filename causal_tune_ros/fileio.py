"""Small file helpers shared across the package (a leaf module: imports nothing of ours)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _default_mode() -> int:
    # What open() would give a new file: 0o666 minus the umask (mkstemp alone leaves 0o600, which
    # hides weights and engines from the other users of a shared vehicle computer).
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def fsync_file(path: str | os.PathLike[str]) -> None:
    """Flush a file's data to the disk (so a rename that publishes it never outlives its content).

    Raises:
        OSError: If the file cannot be opened or synced.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Flush a folder's entries (a rename or new file in it) to the disk; a no-op where the OS cannot."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a folder
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success move it over ``target`` in one step.

    Readers never see a half-written file, and a failed write leaves any old ``target`` untouched. The
    file is flushed to disk before the rename and the folder after it, so a power cut cannot leave an
    empty or partial file under the final name.

    Args:
        target: The file to create or replace; its folder is created if missing.

    Raises:
        OSError: If the folder cannot be created or the file cannot be synced or moved into place.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, _default_mode())
        fsync_file(tmp)
        os.replace(tmp, target)
        fsync_dir(target.parent)
    finally:
        tmp.unlink(missing_ok=True)
