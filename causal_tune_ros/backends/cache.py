"""Artefact cache: exported ONNX graphs and TensorRT programs with a JSON sidecar that says what they are.

Every artefact ``X`` has a sidecar ``X.json`` holding the model hash (sha256 of the checkpoint and
backbone files), the input size, the precision, the format, the library versions that built it, and the
artefact's own size and sha256. An artefact is used only when its sidecar matches what is asked for and
the file still has the recorded size and digest; anything else is *stale* and is rebuilt, never used.

Files are written to a temporary name and renamed into place, and the sidecar is written last, so a build
that dies half way leaves no valid entry behind.

Trust: a sidecar only says what a file claims to be; whoever can write the folder can write both. So

- a folder, artefact or sidecar that is not owned by the current user (or root) or is writable by group or
  others is refused (:class:`UntrustedArtefactError`, saying how to fix the permissions);
- the digests of every artefact this user builds are recorded in a per-user *trust index* outside the
  cache (:func:`trust_index_path`, itself permission-checked). A cache entry is used only when the index
  holds its path with the same artefact and sidecar digests; a planted or swapped file is stale and is
  rebuilt. An artefact named explicitly (``BackendSpec.artefact``) is refused when it differs from its
  record, and used with a warning when it has none (the user vouches for a file they name).

File checks and digests live in :mod:`.files`, the trust index in :mod:`.trust`; their public names are
re-exported here.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from causal_tune_ros import __version__
from causal_tune_ros.backends.files import (
    CACHE_ENV,
    FILE_MODE,
    UntrustedArtefactError,
    atomic_write_bytes,
    check_permissions,
    file_digest,
    model_hash,
    private_dir,
    sidecar_path,
)
from causal_tune_ros.backends.trust import (
    TRUST_INDEX_NAME,
    TRUST_INDEX_VERSION,
    record_trusted,
    trust_index_path,
    trusted_record,
)
from causal_tune_ros.errors import BackendError

#: Bumped when the sidecar layout changes; older sidecars are then stale.
SIDECAR_VERSION = 1
_LOGGER = logging.getLogger("causal_tune_ros.backends")


def default_cache_dir() -> Path:
    """``$CAUSAL_TUNE_CACHE``, else ``$XDG_CACHE_HOME/causal_tune_ros``, else ``~/.cache/causal_tune_ros``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "causal_tune_ros"


def temporary_path(final: str | Path) -> Path:
    """A fresh path beside ``final`` for a writer that needs a file name (``torch.onnx.export``, ...).

    Rename it into place with :func:`publish`; it is unique, so concurrent builds never collide. The
    folder is created (0700) when missing, and refused before any work when others could write it.

    Raises:
        UntrustedArtefactError: If the folder is not yours or is writable by group/others (no sticky bit).
        BackendError: If the folder cannot be created.
    """
    final = Path(final)
    if not final.parent.is_dir():
        private_dir(final.parent, "artefact folder")
    check_permissions(final.parent, "artefact folder", allow_sticky=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=final.suffix, dir=final.parent)
    os.close(fd)
    return Path(tmp)


def publish(tmp: str | Path, final: str | Path, metadata: Mapping[str, Any]) -> Path:
    """Move a finished artefact into place and write its sidecar (size and digest added) last.

    The artefact and sidecar digests are then recorded in the per-user trust index (see
    :func:`record_trusted`): what this user built is what later runs may use.

    Args:
        tmp: The finished file (from :func:`temporary_path`).
        final: Its final path.
        metadata: Sidecar content (format, precision, input_size, model_hash, versions, ...).

    Returns:
        ``final``.

    Raises:
        BackendError: If the file cannot be moved, the sidecar written or the trust index updated.
    """
    final = Path(final)
    try:
        with open(tmp, "rb") as handle:  # on disk before the rename makes it visible
            os.fsync(handle.fileno())
        sidecar_path(final).unlink(missing_ok=True)  # an old sidecar must never describe the new file
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, final)
        write_sidecar(final, metadata)
    except OSError as exc:
        raise BackendError(f"cannot write {final}: {exc}") from exc
    record_trusted(final)
    return final


def write_sidecar(artefact: str | Path, metadata: Mapping[str, Any]) -> Path:
    """Write ``<artefact>.json`` describing an existing artefact.

    Adds ``artefact_bytes``, ``artefact_sha256``, ``sidecar_version``, ``causal_tune_ros`` (package
    version) and ``created`` (UTC, ISO 8601) to ``metadata``.

    Returns:
        The sidecar path.

    Raises:
        BackendError: If the artefact is missing or the sidecar cannot be written.
    """
    artefact = Path(artefact)
    content = dict(metadata)
    try:
        content["artefact_bytes"] = artefact.stat().st_size
    except OSError as exc:
        raise BackendError(f"artefact {artefact} does not exist: {exc}") from exc
    content["artefact_sha256"] = file_digest(artefact)
    content["sidecar_version"] = SIDECAR_VERSION
    content.setdefault("causal_tune_ros", __version__)
    content.setdefault("created", datetime.now(timezone.utc).isoformat(timespec="seconds"))
    path = sidecar_path(artefact)
    atomic_write_bytes(path, (json.dumps(content, indent=2, sort_keys=True) + "\n").encode())
    return path


def read_sidecar(artefact: str | Path) -> dict[str, Any]:
    """Read an artefact's sidecar.

    Raises:
        BackendError: If the sidecar is missing, unreadable or not a JSON object.
    """
    path = sidecar_path(artefact)
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackendError(
            f"{artefact} has no sidecar {path.name}; re-export it with `causal-tune export`"
        ) from None
    except (OSError, ValueError) as exc:
        raise BackendError(f"cannot read sidecar {path}: {exc}") from exc
    if not isinstance(content, dict):
        raise BackendError(f"sidecar {path} is not a JSON object")
    return content


def _normalise(value: Any) -> Any:
    """Compare tuples and lists alike (JSON turns tuples into lists)."""
    if isinstance(value, (tuple, list)):
        return [_normalise(v) for v in value]
    return value


def check_location(artefact: str | Path) -> None:
    """Permission checks of an existing artefact: its folder(s), the file and its sidecar.

    The folder may be a sticky world-writable one (``/tmp``); files must be yours (or root's) and not
    writable by group/others. A symlink's target folder is checked too.

    Raises:
        UntrustedArtefactError: See :func:`check_permissions`.
    """
    artefact = Path(artefact)
    for folder in dict.fromkeys((artefact.parent, Path(os.path.realpath(artefact)).parent)):
        check_permissions(folder, "artefact folder", allow_sticky=True)
    check_permissions(artefact, "artefact")
    if sidecar_path(artefact).exists():
        check_permissions(sidecar_path(artefact), "sidecar")


def is_valid(
    artefact: str | Path,
    expected: Mapping[str, Any],
    check_digest: bool = True,
    *,
    require_record: bool = True,
) -> tuple[bool, str]:
    """Whether an artefact may be used for what ``expected`` describes.

    Args:
        artefact: The artefact file.
        expected: Sidecar keys and the values they must have, e.g. ``{"format": "onnx", "precision":
            "fp32", "input_size": (518, 1036), "model_hash": "..."}``; ``None`` values are not checked.
        check_digest: Also re-hash the file and compare with the recorded sha256 (the size is always
            compared); catches corruption that keeps the size.
        require_record: The trust index must hold the artefact (cache entries). ``False``: a file
            without a record passes (an artefact the user names), one whose record differs does not.

    Returns:
        ``(True, "ok")`` or ``(False, reason)`` with a reason a user can act on (stale: rebuild it).

    Raises:
        UntrustedArtefactError: If the file, its sidecar or its folder could have been written by another
            user (never "stale": rebuilding into such a folder would not help).
    """
    artefact = Path(artefact)
    if not artefact.is_file():
        return False, f"{artefact} does not exist"
    check_location(artefact)
    try:
        meta = read_sidecar(artefact)
    except BackendError as exc:
        return False, str(exc)
    if meta.get("sidecar_version") != SIDECAR_VERSION:
        return (
            False,
            f"sidecar version {meta.get('sidecar_version')} != {SIDECAR_VERSION} (another release wrote it)",
        )
    for key, want in expected.items():
        if want is None:
            continue
        have = meta.get(key)
        if _normalise(have) != _normalise(want):
            return False, f"{key} mismatch: artefact has {have!r}, expected {want!r}"
    size = artefact.stat().st_size
    if size != meta.get("artefact_bytes"):
        return (
            False,
            f"{artefact.name} is {size} bytes, its sidecar says {meta.get('artefact_bytes')} "
            "(truncated or replaced)",
        )
    if check_digest and file_digest(artefact) != meta.get("artefact_sha256"):
        return (
            False,
            f"{artefact.name} content does not match the sha256 in its sidecar (corrupt or replaced)",
        )
    return _matches_record(artefact, meta, check_digest, require_record)


def _matches_record(
    artefact: Path, meta: Mapping[str, Any], check_digest: bool, require_record: bool
) -> tuple[bool, str]:
    record = trusted_record(artefact)
    if record is None:
        if require_record:
            return (
                False,
                f"{artefact.name} is not in your trust index {trust_index_path()} (not built by you "
                "here, or planted)",
            )
        return True, "ok"
    digest = meta.get("artefact_sha256") if check_digest else None
    if record.get("bytes") != artefact.stat().st_size or (digest and record.get("sha256") != digest):
        return (
            False,
            f"{artefact.name} differs from the digest your trust index recorded when it was built "
            "(replaced since)",
        )
    if record.get("sidecar_sha256") != file_digest(sidecar_path(artefact)):
        return False, f"{sidecar_path(artefact).name} was rewritten after the artefact was built"
    return True, "ok"


def check_named_artefact(artefact: str | Path, expected: Mapping[str, Any]) -> tuple[bool, str]:
    """:func:`is_valid` for an artefact the user names (not a cache entry).

    Refused when its permissions are unsafe or it differs from its trust-index record; used with a
    logged warning when the index has no record of it (built elsewhere or by someone else).

    Returns:
        ``(True, "ok")`` or ``(False, reason)``.

    Raises:
        UntrustedArtefactError: See :func:`is_valid`.
    """
    ok, reason = is_valid(artefact, expected, require_record=False)
    if ok and trusted_record(artefact) is None:
        _LOGGER.warning(
            "%s is not in your trust index %s (not built by you on this machine): using it because it was "
            "named explicitly",
            artefact,
            trust_index_path(),
        )
    return ok, reason


class ArtefactCache:
    """A folder of artefacts named by what they hold, each with its sidecar.

    Args:
        root: Cache folder (default :func:`default_cache_dir`); created (0700) on first use.
    """

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()

    def prepare(self) -> Path:
        """Create the cache folder (0700) or check the existing one; returns it.

        Raises:
            UntrustedArtefactError: If it is not yours or is writable by group/others.
        """
        return private_dir(self.root, "cache folder")

    def path_for(
        self, model_hash: str, input_size: Iterable[int], precision: str, fmt: str, tag: str = ""
    ) -> Path:
        """Artefact path for a key: ``<hash16>_<H>x<W>_<precision>[_<tag>].<ext>``.

        Args:
            model_hash: From :func:`model_hash`.
            input_size: ``(H, W)``.
            precision: ``fp32`` / ``fp16`` / ``int8``.
            fmt: ``onnx`` (``.onnx``) or ``tensorrt`` (``.ep``, a serialised Torch-TensorRT program).
            tag: Extra key part, e.g. the TensorRT version or the ONNX opset.
        """
        h, w = (int(v) for v in input_size)
        ext = {"onnx": ".onnx", "tensorrt": ".ep"}.get(fmt, f".{fmt}")
        safe_tag = "".join(c if c.isalnum() or c in ".-" else "-" for c in tag)
        name = f"{model_hash[:16]}_{h}x{w}_{precision}" + (f"_{safe_tag}" if safe_tag else "") + ext
        return self.root / name

    def lookup(self, path: Path, expected: Mapping[str, Any]) -> tuple[Path | None, str]:
        """``(path, "ok")`` when the cached artefact is valid for ``expected``, else ``(None, reason)``.

        Raises:
            UntrustedArtefactError: If the cache folder or the entry could have been written by others.
        """
        self.prepare()
        ok, reason = is_valid(path, expected)
        return (path if ok else None), reason


__all__ = [
    "CACHE_ENV",
    "SIDECAR_VERSION",
    "TRUST_INDEX_NAME",
    "TRUST_INDEX_VERSION",
    "ArtefactCache",
    "UntrustedArtefactError",
    "check_location",
    "check_named_artefact",
    "check_permissions",
    "default_cache_dir",
    "file_digest",
    "is_valid",
    "model_hash",
    "private_dir",
    "publish",
    "read_sidecar",
    "record_trusted",
    "sidecar_path",
    "temporary_path",
    "trust_index_path",
    "trusted_record",
    "write_sidecar",
]
