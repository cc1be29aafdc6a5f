"""Finding the bags, naming their outputs, and the output folder's states (no Ray needed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from causal_tune_ros.errors import FleetError
from causal_tune_ros.fleet import state
from causal_tune_ros.fleet.inputs import find_bags


def _bag_folder(path: Path, suffix: str = ".mcap") -> Path:
    path.mkdir(parents=True)
    (path / "metadata.yaml").write_text("rosbag2_bagfile_information: {}\n")
    (path / f"{path.name}_0{suffix}").write_bytes(b"x")
    return path


def test_folders_are_searched_for_bags_and_names_are_relative_paths(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    _bag_folder(root / "2024" / "drive1")
    _bag_folder(root / "2024" / "drive2", ".db3")
    (root / "loose").mkdir()
    (root / "loose" / "drive3.mcap").write_bytes(b"x")
    _bag_folder(root / ".hidden" / "ignored")
    _bag_folder(root / "out" / "previous_output")  # the output folder inside the archive
    single = _bag_folder(tmp_path / "elsewhere" / "drive4")

    jobs = find_bags([root, single, root / "2024" / "drive1"], exclude=root / "out")

    assert [j.name for j in jobs] == ["2024/drive1", "2024/drive2", "drive4", "loose/drive3"]
    assert all(j.path.is_absolute() and j.size > 0 for j in jobs)


def test_two_bags_with_one_name_and_missing_inputs_are_refused(tmp_path: Path) -> None:
    a = _bag_folder(tmp_path / "a" / "drive")
    b = _bag_folder(tmp_path / "b" / "drive")
    with pytest.raises(FleetError, match="both be written to OUT/drive"):
        find_bags([a, b])
    with pytest.raises(FleetError, match="does not exist"):
        find_bags([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FleetError, match="holds no rosbag2"):
        find_bags([tmp_path / "empty"])


def test_a_bag_is_done_only_with_its_part_and_output_and_the_same_settings(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow", reason="pyarrow not installed (pip install '.[fleet]')")
    from causal_tune_ros.fleet.index import FrameRecorder, write_table

    job = find_bags([_bag_folder(tmp_path / "in" / "drive")])[0]
    layout = state.Layout(tmp_path / "out")
    assert state.bag_state(layout, job, "s1")[0] == state.TODO

    def attempt() -> Path:
        folder = layout.new_attempt(job.name)
        _bag_folder(folder / "bag")
        meta = {"name": job.name, "settings": "s1", "input": job.identity}
        write_table(FrameRecorder(job.name, ["road"], "auto").table(meta), folder / "index.parquet")
        return folder

    out = state.commit(layout, job.name, attempt())
    assert out == layout.output(job.name) and (out / "metadata.yaml").is_file()
    assert state.bag_state(layout, job, "s1")[0] == state.DONE
    assert state.bag_state(layout, job, "s2")[0] == state.STALE
    assert state.complete_parts(layout) == [layout.part(job.name)]

    # Interrupted between the two renames: part without bag -> redone, and not in the index.
    shutil.rmtree(out)
    assert state.bag_state(layout, job, "s1")[0] == state.TODO
    assert state.complete_parts(layout) == []
    # A bag that no fleet run finished is not ours: kept unless overwriting.
    _bag_folder(out)
    layout.part(job.name).unlink()
    assert state.bag_state(layout, job, "s1")[0] == state.FOREIGN
    with pytest.raises(FleetError, match="exists already"):
        state.commit(layout, job.name, attempt())
    state.commit(layout, job.name, attempt(), overwrite=True)
    assert state.bag_state(layout, job, "s1")[0] == state.DONE


def test_commit_never_replaces_a_folder_that_is_not_a_bag(tmp_path: Path) -> None:
    layout = state.Layout(tmp_path / "out")
    precious = layout.output("drive")
    precious.mkdir(parents=True)
    (precious / "notes.txt").write_text("mine")
    folder = layout.new_attempt("drive")
    _bag_folder(folder / "bag")
    (folder / "index.parquet").write_bytes(b"")
    with pytest.raises(FleetError, match="not a rosbag2 folder"):
        state.commit(layout, "drive", folder, overwrite=True)
    assert (precious / "notes.txt").read_text() == "mine"


def test_one_fleet_command_at_a_time_per_output_folder_and_old_attempts_are_cleared(tmp_path: Path) -> None:
    layout = state.Layout(tmp_path / "out")
    leftover = layout.tmp / "drive-1234.abc"
    leftover.mkdir(parents=True)
    with state.locked(layout):
        assert not leftover.exists()
        with pytest.raises(FleetError, match="another causal-tune fleet command"), state.locked(layout):
            pass
    with state.locked(layout):  # released
        pass


def test_file_keys_are_safe_and_distinct() -> None:
    keys = {state.file_key(n) for n in ("day1/drive", "day1_drive", "a b?c%d", "x/../y")}
    assert len(keys) == 4
    assert all(all(c.isalnum() or c in "._-" for c in k) for k in keys)
