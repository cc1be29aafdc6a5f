"""The per-user trust index: digests of every artefact this user built, kept outside the cache folders.

A cache entry is used only when the index holds its path with the same artefact and sidecar digests
(see :mod:`.cache`), so a planted or swapped file is rebuilt, never loaded.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from causal_tune_ros.backends.files import (
    atomic_write_bytes,
    check_permissions,
    file_digest,
    private_dir,
    sidecar_path,
)
from causal_tune_ros.errors import BackendError

#: File name of the per-user trust index (under :func:`trust_index_path`'s folder).
TRUST_INDEX_NAME = "trusted_artefacts.json"
#: Bumped when the trust index layout changes; an index of another version is ignored (all stale).
TRUST_INDEX_VERSION = 1
_LOGGER = logging.getLogger("causal_tune_ros.backends")


def trust_index_path() -> Path:
    """The per-user trust index: ``$XDG_STATE_HOME/causal_tune_ros/trusted_artefacts.json``, else
    ``~/.local/state/causal_tune_ros/trusted_artefacts.json``; never inside a cache folder it describes."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base).expanduser() / "causal_tune_ros" / TRUST_INDEX_NAME


def _index_key(artefact: Path) -> str:
    return os.path.realpath(artefact)


@contextlib.contextmanager
def _index_lock(index: Path) -> Iterator[None]:
    """Serialise read-modify-write of the index between processes (POSIX advisory lock)."""
    try:
        import fcntl
    except ImportError:  # no POSIX locks: last writer wins, an entry lost is only a rebuild
        yield
        return
    lock = index.with_name(index.name + ".lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _read_index(index: Path) -> dict[str, dict[str, Any]]:
    """The index's entries; ``{}`` when it is missing or unreadable (every artefact is then stale)."""
    if not index.exists():
        return {}
    check_permissions(index.parent, "trust index folder")
    check_permissions(index, "trust index")
    try:
        content = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        _LOGGER.warning("ignoring unreadable trust index %s (%s): cached artefacts are rebuilt", index, exc)
        return {}
    if not isinstance(content, dict) or content.get("version") != TRUST_INDEX_VERSION:
        return {}
    entries = content.get("artefacts")
    return {k: v for k, v in entries.items() if isinstance(v, dict)} if isinstance(entries, dict) else {}


def trusted_record(artefact: str | Path) -> dict[str, Any] | None:
    """The trust index's record of an artefact (``sha256``, ``bytes``, ``sidecar_sha256``), or ``None``.

    Raises:
        UntrustedArtefactError: If the index or its folder is not yours or is writable by others.
    """
    return _read_index(trust_index_path()).get(_index_key(Path(artefact)))


def record_trusted(artefact: str | Path) -> None:
    """Record an artefact and its sidecar, as they are now, in the per-user trust index.

    Call it only for files this user built (:func:`publish` does) or has checked. Entries of files that
    no longer exist are dropped on the way.

    Raises:
        UntrustedArtefactError: If the index or its folder is not yours or is writable by others.
        BackendError: If the artefact, its sidecar or the index cannot be read or written.
    """
    artefact = Path(artefact)
    try:
        record = {
            "sha256": file_digest(artefact),
            "bytes": artefact.stat().st_size,
            "sidecar_sha256": file_digest(sidecar_path(artefact)),
        }
    except OSError as exc:
        raise BackendError(f"cannot record {artefact} in the trust index: {exc}") from exc
    index = trust_index_path()
    private_dir(index.parent, "trust index folder")
    try:
        with _index_lock(index):
            entries = _read_index(index)
            entries = {key: value for key, value in entries.items() if os.path.exists(key)}
            entries[_index_key(artefact)] = record
            document = {"version": TRUST_INDEX_VERSION, "artefacts": entries}
            atomic_write_bytes(index, (json.dumps(document, indent=1, sort_keys=True) + "\n").encode())
            os.chmod(index, 0o600)
    except OSError as exc:
        raise BackendError(f"cannot update the trust index {index}: {exc}") from exc
