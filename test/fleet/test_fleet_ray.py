"""`causal-tune fleet` on a local Ray instance with 2 workers: outputs, exact index, retries, resume."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from causal_tune_ros.cli import main
from causal_tune_ros.fleet.state import Layout, file_key
from causal_tune_ros.replay.replayer import OUTPUT_NAMES
from causal_tune_ros.weather import CONDITIONS

from .fleet_support import bag_topics, corrupt_copy, input_frames, tiny_settings, write_archive

pytestmark = pytest.mark.timeout(300)

NAMES = ["day1/drive_a", "day1/drive_b", "day2/drive_c"]


def _index(out: Path) -> Any:
    import pyarrow.parquet as pq

    return pq.read_table(out / "index.parquet").to_pandas()


def _expected(root: Path) -> list[tuple[str, str, int]]:
    return sorted(f for name in NAMES for f in input_frames(root / name, name))


def _rows(out: Path) -> list[tuple[str, str, int]]:
    df = _index(out)
    return sorted(zip(df["bag"], df["topic"], df["stamp"].astype(int), strict=True))


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under a folder -> (size, mtime_ns)."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file()
    }


def _check_outputs(root: Path, out: Path) -> None:
    """Each output bag is the replay output of its input: inputs copied, four outputs per frame."""
    for name in NAMES:
        inputs, outputs = bag_topics(root / name), bag_topics(out / name)
        camera = next(t for t in inputs if t.startswith("/camera/image_raw"))
        for topic, count in inputs.items():
            assert outputs[topic] == count, (name, topic)
        for sub in OUTPUT_NAMES:
            assert outputs[f"/camera/{sub}"] == inputs[camera], (name, sub)


def test_three_bags_give_three_outputs_and_an_exact_index_and_a_second_run_does_no_work(
    ray_local: Any, archive: tuple[Path, list[Path]], tiny_checkpoint: Path, tmp_path: Path, capsys
) -> None:
    root, _ = archive
    before = _snapshot(root)
    out = tmp_path / "out"
    h, w = 28, 42
    argv = [
        "fleet",
        str(root),
        "-o",
        str(out),
        "--workers",
        "2",
        "--checkpoint",
        str(tiny_checkpoint),
        "--backend",
        "eager",
        "--input-size",
        f"{h}x{w}",
        "--quiet",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "done 3, already done 0" in printed and "failed 0" in printed

    _check_outputs(root, out)
    rows, expected = _rows(out), _expected(root)
    assert len(expected) == 3 * 6
    assert rows == expected  # exactly one row per input frame, none twice
    df = _index(out)
    assert set(df["status"]) == {"ok"}
    assert set(df["condition"]) <= set(CONDITIONS)
    assert set(df["condition_source"]) == {"classifier"}
    shares = df[[c for c in df.columns if c.startswith("share_")]].sum(axis=1)
    assert shares.between(0.999, 1.001).all()
    assert df["drivable"].between(0, 1).all() and df["confidence"].between(0, 1).all()
    assert (df["drivable"] == df["share_road"]).all()  # drivable classes: road
    assert _snapshot(root) == before  # inputs untouched
    assert not list(Layout(out).tmp.iterdir())

    # Second run over the same inputs: every bag is complete, nothing is started or rewritten.
    outputs_before = _snapshot(out)
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "done 0, already done 3" in printed and "on 0 workers" in printed
    after = _snapshot(out)
    after.pop("fleet_summary.json")
    outputs_before.pop("fleet_summary.json")
    assert after == outputs_before


def test_a_worker_killed_mid_bag_is_retried_and_a_corrupt_bag_is_reported_while_the_others_complete(
    ray_local: Any, scenes: list[Any], tiny_checkpoint: Path, tmp_path: Path
) -> None:
    """Two kinds of failure in one run: a worker process killed part-way through a bag (the bag is
    retried on a fresh worker), and a bag whose storage is cut in half (reported, not retried)."""
    from causal_tune_ros.fleet.runner import WorkerState, run_fleet

    root = tmp_path / "archive"
    bags = write_archive(root, scenes, frames=40)
    corrupt_copy(bags[0], root / "day3" / "cut_drive")
    out = tmp_path / "out"
    tmp = Layout(out).tmp
    killed: list[tuple[str, int]] = []

    def kill_mid_bag(states: list[WorkerState]) -> None:
        """SIGKILL a worker that is part-way through a bag (frozen first, to be sure it is not finished)."""
        if killed:
            return
        for s in states:
            if s.bag is None or s.bag == "day3/cut_drive" or s.frames < 1 or not s.pid:
                continue
            os.kill(s.pid, signal.SIGSTOP)
            finished = list(tmp.glob(f"{file_key(s.bag)}.*/index.parquet"))
            if finished:  # it wrote its results already: not mid-bag, try another time
                os.kill(s.pid, signal.SIGCONT)
                continue
            os.kill(s.pid, signal.SIGKILL)
            killed.append((s.bag, s.pid))
            return

    summary = run_fleet([root], out, tiny_settings(tiny_checkpoint, retries=2), on_poll=kill_mid_bag)

    # The killed worker's bag was retried and completed; the index is still exact.
    assert killed, "no worker was caught mid-bag"
    bag, _ = killed[0]
    results = {b.name: b for b in summary.bags}
    assert summary.worker_deaths == 1
    assert results[bag].attempts == 2 and results[bag].status == "done"
    assert _rows(out) == _expected(root)
    _check_outputs(root, out)
    assert not list(tmp.iterdir())  # the dead attempt's partial output is gone

    # The corrupt bag: reported with its path, tried once, no output; every good bag complete.
    cut = results.pop("day3/cut_drive")
    assert cut.status == "failed" and "cut_drive" in cut.error and cut.attempts == 1
    assert not (out / "day3" / "cut_drive").exists()
    assert all(b.status == "done" for b in results.values())
    assert "FAILED" in summary.format() and not summary.ok
    assert summary.index_rows == len(_expected(root))


def test_an_interrupted_run_resumes_without_redoing_finished_bags(
    ray_local: Any, archive: tuple[Path, list[Path]], tiny_checkpoint: Path, tmp_path: Path
) -> None:
    from causal_tune_ros.fleet.runner import WorkerState, run_fleet

    root, _ = archive
    out = tmp_path / "out"

    def interrupt_after_first_bag(states: list[WorkerState]) -> None:
        if any((out / name).exists() for name in NAMES):
            raise KeyboardInterrupt  # what Ctrl-C raises in the driver

    # One worker: the other bags are still waiting when the first one is committed.
    settings = tiny_settings(tiny_checkpoint, workers=1)
    first = run_fleet([root], out, settings, on_poll=interrupt_after_first_bag)
    assert first.interrupted
    done = [b.name for b in first.bags if b.status == "done"]
    assert 1 <= len(done) < 3
    # Only complete bags are visible, and the index holds exactly their frames.
    assert sorted(n for n in NAMES if (out / n).exists()) == sorted(done)
    assert _rows(out) == sorted(f for n in done for f in input_frames(root / n, n))
    kept = {n: _snapshot(out / n) for n in done}

    second = run_fleet([root], out, settings)
    assert not second.interrupted and second.ok
    assert sorted(b.name for b in second.bags if b.status == "skipped") == sorted(done)
    assert {n: _snapshot(out / n) for n in done} == kept  # not redone
    assert _rows(out) == _expected(root)
    _check_outputs(root, out)
