"""Artefact files on disk: ownership and permission checks, content digests, atomic writes.

The lowest layer of the artefact cache (:mod:`.cache`) and the trust index (:mod:`.trust`).
"""

from __future__ import annotations

import hashlib
import os
import stat as stat_mode
import tempfile
from pathlib import Path

from causal_tune_ros.errors import BackendError

#: Environment variable overriding the default cache folder.
CACHE_ENV = "CAUSAL_TUNE_CACHE"
_CHUNK = 1 << 22
#: Artefacts are readable by others (mkstemp would leave them 0600), never writable by them.
FILE_MODE = 0o644
#: Mode of the folders this package creates (cache root, trust index folder).
_PRIVATE_DIR_MODE = 0o700
_digest_memo: dict[tuple[str, int, int], str] = {}


class UntrustedArtefactError(BackendError):
    """A cache folder, artefact, sidecar or trust index whose owner or permissions let others change it."""


def _current_uid() -> int | None:
    getuid = getattr(os, "geteuid", None)
    return None if getuid is None else int(getuid())


def check_permissions(path: str | Path, what: str, *, allow_sticky: bool = False) -> None:
    """Refuse a file or folder another user could have written.

    Accepted: owned by the current user or root, and not writable by group or others. With
    ``allow_sticky`` a folder writable by others is accepted when it has the sticky bit (like ``/tmp``:
    only a file's owner may rename or delete it there). No check where the OS has no user ids.

    Args:
        path: An existing file or folder (symlinks are followed).
        what: What it is, for the message (``"cache folder"``, ``"artefact"``, ...).
        allow_sticky: See above.

    Raises:
        UntrustedArtefactError: Saying who owns it or who may write it, and the command that fixes it.
        BackendError: If it cannot be examined.
    """
    uid = _current_uid()
    if uid is None:
        return
    path = Path(path)
    try:
        info = path.stat()
    except OSError as exc:
        raise BackendError(f"cannot examine {what} {path}: {exc}") from exc
    if info.st_uid not in (uid, 0):
        raise UntrustedArtefactError(
            f"{what} {path} is owned by uid {info.st_uid}, not by you (uid {uid}) or root, so it is not "
            f"used: remove it, point {CACHE_ENV} (or engine.cache_dir) at a folder you own, or, if you "
            f"trust it, `chown {uid} {path}`"
        )
    writable = info.st_mode & (stat_mode.S_IWGRP | stat_mode.S_IWOTH)
    is_dir = stat_mode.S_ISDIR(info.st_mode)
    if writable and not (allow_sticky and is_dir and info.st_mode & stat_mode.S_ISVTX):
        who = " and ".join(
            name
            for bit, name in ((stat_mode.S_IWGRP, "group"), (stat_mode.S_IWOTH, "others"))
            if info.st_mode & bit
        )
        fix = f"chmod 700 {path}" if is_dir else f"chmod go-w {path}"
        raise UntrustedArtefactError(
            f"{what} {path} is writable by {who} (mode {stat_mode.S_IMODE(info.st_mode):04o}): anyone who "
            f"can write it could plant a graph or program that runs here. Fix the permissions: {fix}"
        )


def private_dir(path: str | Path, what: str = "cache folder") -> Path:
    """Create a folder only its owner can write (mode 0700 when created here) and check an existing one.

    Args:
        path: The folder; missing parents are created with the default mode.
        what: What it is, for messages.

    Returns:
        ``path``.

    Raises:
        UntrustedArtefactError: If it exists with another owner or is writable by group/others.
        BackendError: If it cannot be created.
    """
    path = Path(path)
    if not path.is_dir():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.mkdir(mode=_PRIVATE_DIR_MODE)
            os.chmod(path, _PRIVATE_DIR_MODE)  # mkdir's mode is filtered by the umask
        except FileExistsError:
            pass  # created concurrently: checked below like any existing folder
        except OSError as exc:
            raise BackendError(f"cannot create {what} {path}: {exc}") from exc
    check_permissions(path, what)
    return path


def sidecar_path(artefact: str | Path) -> Path:
    """The sidecar of an artefact: the artefact's path with ``.json`` appended."""
    artefact = Path(artefact)
    return artefact.with_name(artefact.name + ".json")


def file_digest(path: str | Path) -> str:
    """sha256 of a file (memoised on path, size and modification time: big weights hash once per run).

    Raises:
        BackendError: If the file cannot be read.
    """
    path = Path(path)
    try:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if key in _digest_memo:
            return _digest_memo[key]
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise BackendError(f"cannot read {path}: {exc}") from exc
    _digest_memo[key] = digest.hexdigest()
    return _digest_memo[key]


def _weight_files(path: Path) -> list[Path]:
    """The files that define a weights path: the file itself, or a folder's JSON + weight files."""
    if path.is_dir():
        files = sorted(
            p for p in path.iterdir() if p.is_file() and p.suffix in {".json", ".safetensors", ".pth"}
        )
        if not files:
            raise BackendError(f"weights folder {path} holds no .json/.safetensors/.pth file")
        return files
    if not path.is_file():
        raise BackendError(f"weights file {path} does not exist")
    return [path]


def model_hash(checkpoint: str | Path, backbone: str | Path | None = None) -> str:
    """Identity of a model: sha256 over the digests of the checkpoint and backbone files.

    Args:
        checkpoint: Causal-Tune checkpoint file.
        backbone: Backbone weights file or Hugging Face folder; ``None`` when embedded in the checkpoint.

    Returns:
        64 hex digits; the same files always give the same hash wherever they lie.

    Raises:
        BackendError: If a file is missing or unreadable.
    """
    paths = [Path(checkpoint)] + ([] if backbone is None else [Path(backbone)])
    combined = hashlib.sha256()
    for role, path in zip(("checkpoint", "backbone"), paths, strict=False):
        for file in _weight_files(path):
            combined.update(f"{role}:{file.name if path.is_dir() else ''}:{file_digest(file)}\n".encode())
    return combined.hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file beside it (fsync, mode 0644, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
