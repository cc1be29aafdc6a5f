"""Artefact cache: exported ONNX graphs and TensorRT programs with a JSON sidecar that says what they are.

Every artefact ``X`` has a sidecar ``X.json`` holding the model hash (sha256 of the checkpoint and
backbone files), the input size, the precision, the format, the library versions that built it, and the
artefact's own size and sha256. An artefact is used only when its sidecar matches what is asked for and
the file still has the recorded size and digest; anything else is *stale* and is rebuilt, never used.

Files are written to a temporary name and renamed into place, and the sidecar is written last, so a build
that dies half way leaves no valid entry behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from causal_tune_ros import __version__
from causal_tune_ros.errors import BackendError

#: Bumped when the sidecar layout changes; older sidecars are then stale.
SIDECAR_VERSION = 1
#: Environment variable overriding the default cache folder.
CACHE_ENV = "CAUSAL_TUNE_CACHE"

_CHUNK = 1 << 22
#: Cache files are shared between users of a vehicle computer (mkstemp would leave them 0600).
_FILE_MODE = 0o644
_digest_memo: dict[tuple[str, int, int], str] = {}


def default_cache_dir() -> Path:
    """``$CAUSAL_TUNE_CACHE``, else ``$XDG_CACHE_HOME/causal_tune_ros``, else ``~/.cache/causal_tune_ros``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "causal_tune_ros"


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


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def temporary_path(final: str | Path) -> Path:
    """A fresh path beside ``final`` for a writer that needs a file name (``torch.onnx.export``, ...).

    Rename it into place with :func:`publish`; it is unique, so concurrent builds never collide.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=final.suffix, dir=final.parent)
    os.close(fd)
    return Path(tmp)


def publish(tmp: str | Path, final: str | Path, metadata: Mapping[str, Any]) -> Path:
    """Move a finished artefact into place and write its sidecar (size and digest added) last.

    Args:
        tmp: The finished file (from :func:`temporary_path`).
        final: Its final path.
        metadata: Sidecar content (format, precision, input_size, model_hash, versions, ...).

    Returns:
        ``final``.

    Raises:
        BackendError: If the file cannot be moved or the sidecar written.
    """
    final = Path(final)
    try:
        sidecar_path(final).unlink(missing_ok=True)  # an old sidecar must never describe the new file
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, final)
        write_sidecar(final, metadata)
    except OSError as exc:
        raise BackendError(f"cannot write {final}: {exc}") from exc
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
    _atomic_write_bytes(path, (json.dumps(content, indent=2, sort_keys=True) + "\n").encode())
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


def is_valid(
    artefact: str | Path, expected: Mapping[str, Any], check_digest: bool = True
) -> tuple[bool, str]:
    """Whether an artefact may be used for what ``expected`` describes.

    Args:
        artefact: The artefact file.
        expected: Sidecar keys and the values they must have, e.g. ``{"format": "onnx", "precision":
            "fp32", "input_size": (518, 1036), "model_hash": "..."}``; ``None`` values are not checked.
        check_digest: Also re-hash the file and compare with the recorded sha256 (the size is always
            compared); catches corruption that keeps the size.

    Returns:
        ``(True, "ok")`` or ``(False, reason)`` with a reason a user can act on.
    """
    artefact = Path(artefact)
    if not artefact.is_file():
        return False, f"{artefact} does not exist"
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
    return True, "ok"


class ArtefactCache:
    """A folder of artefacts named by what they hold, each with its sidecar.

    Args:
        root: Cache folder (default :func:`default_cache_dir`); created on first write.
    """

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()

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
        """``(path, "ok")`` when the cached artefact is valid for ``expected``, else ``(None, reason)``."""
        ok, reason = is_valid(path, expected)
        return (path if ok else None), reason
