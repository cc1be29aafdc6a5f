"""Atomic writes: readers never see partial files, and files get normal permissions."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from causal_tune_ros.fileio import atomic_path, fsync_dir


def test_atomic_path_replaces_target_with_umask_permissions(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "weights.bin"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        tmp.write_bytes(b"new")
        assert not target.exists(), "target must not appear before the write completes"
    assert target.read_bytes() == b"new"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert list(target.parent.iterdir()) == [target], "no temporary file is left behind"


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "model.safetensors"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("writer crashed")
    assert target.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [target]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to name what an fd refers to")
def test_file_is_on_disk_before_the_rename_and_the_folder_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        events.append(("replace", str(src)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    target = tmp_path / "model.safetensors"
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"weights")
    assert events == [("fsync", str(tmp)), ("replace", str(tmp)), ("fsync", str(tmp_path))]
    events.clear()
    fsync_dir(tmp_path / "missing")  # nothing to sync, no error
    assert events == []
