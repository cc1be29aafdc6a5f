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


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success move it over ``target`` in one step.

    Readers never see a half-written file, and a failed write leaves any old ``target`` untouched.

    Args:
        target: The file to create or replace; its folder is created if missing.

    Raises:
        OSError: If the folder cannot be created or the file cannot be moved into place.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, _default_mode())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
