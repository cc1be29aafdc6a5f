"""Replay outputs: never touch the input, replace only bags, appear only when complete, survive signals.

Each test here failed on the replay before these guarantees existed (see docs/RELIABILITY.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from rosbags.rosbag2 import Reader

from causal_tune_ros.bags import IMAGE_TYPE, BagReader, BagWriter, make_header, msg_class
from causal_tune_ros.cli import main
from causal_tune_ros.errors import BagError
from causal_tune_ros.replay import Replayer, ReplayOptions

from .replay_support import replay_args

ROOT = Path(__file__).resolve().parents[2]


def _digest(path: Path) -> str:
    """Hash of a file or of every file of a folder (names and bytes)."""
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        h.update(str(f.relative_to(path) if path.is_dir() else f.name).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def _count(path: Path, topic: str) -> int:
    with Reader(path) as reader:
        return sum(1 for c, _, _ in reader.messages() if c.topic == topic)


def _long_bag(path: Path, frames: int) -> Path:
    """One raw camera, ``frames`` small frames at 100 Hz (cheap to write, long enough to interrupt)."""
    rng = np.random.default_rng(0)
    image = msg_class(IMAGE_TYPE)
    with BagWriter(path, storage="mcap") as bag:
        bag.add_topic("/cam/image_raw", IMAGE_TYPE, qos="sensor")
        rgb = rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)
        for i in range(frames):
            t = 1_700_000_000_000_000_000 + i * 10_000_000
            msg = image(
                header=make_header(t, "cam"),
                height=30,
                width=40,
                encoding="rgb8",
                is_bigendian=0,
                step=120,
                data=rgb.reshape(-1),
            )
            bag.write_message("/cam/image_raw", t, msg)
    return path


# ------------------------------------------------------------------------------- layout and version


def test_default_output_is_humble_readable_and_named_without_doubled_suffix(
    tmp_path: Path, write_camera_bag, tiny_checkpoint: Path
) -> None:
    in_bag = write_camera_bag(tmp_path / "drive", "mcap", frames=2)
    out = tmp_path / "drive_seg.mcap"
    assert main(replay_args(in_bag, out, tiny_checkpoint)) == 0
    # `-o drive_seg.mcap`: the bag folder at exactly that path, its storage file named like ros2 bag record's.
    assert sorted(p.name for p in out.iterdir()) == ["drive_seg_0.mcap", "metadata.yaml"]
    assert not list(tmp_path.glob(".*partial*"))
    meta = yaml.safe_load((out / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["version"] == 8
    assert meta["relative_file_paths"] == ["drive_seg_0.mcap"]
    # Humble's rosbag2 reads offered_qos_profiles as a string holding a YAML list.
    for entry in meta["topics_with_message_count"]:
        qos = entry["topic_metadata"]["offered_qos_profiles"]
        assert isinstance(qos, str)
        assert isinstance(yaml.safe_load(qos), list) and yaml.safe_load(qos)[0]["reliability"] in (1, 2)
    assert _count(out, "/front/class_mask") == 2

    out9 = tmp_path / "drive_seg9.mcap"
    assert main(replay_args(in_bag, out9, tiny_checkpoint, "--bag-version", "9")) == 0
    meta9 = yaml.safe_load((out9 / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta9["version"] == 9
    for entry in meta9["topics_with_message_count"]:
        assert isinstance(entry["topic_metadata"]["offered_qos_profiles"], list)
    assert _count(out9, "/front/class_mask") == 2


# ------------------------------------------------------------------------------------- the input is safe


def test_output_that_is_contains_or_lies_inside_the_input_is_refused(
    tmp_path: Path, write_camera_bag, tiny_checkpoint: Path, capsys
) -> None:
    data = tmp_path / "data"
    in_bag = write_camera_bag(data / "drive", "mcap", frames=2)
    before = _digest(data)
    (tmp_path / "alias").symlink_to(data, target_is_directory=True)
    (tmp_path / "link_to_drive").symlink_to(in_bag, target_is_directory=True)
    storage_file = next(in_bag.glob("*.mcap"))
    refused = {
        in_bag / storage_file.name: "lies inside the input",  # issue: unlinked the input's data file
        in_bag: "is the input",
        data: "contains the input",
        tmp_path / "alias" / "drive": "is the input",  # the same folder through a symlinked parent
        tmp_path / "link_to_drive": "is the input",  # a symlink to the input
        tmp_path / "alias" / "drive" / "sub": "lies inside the input",
    }
    for out, reason in refused.items():
        assert main(replay_args(in_bag, out, tiny_checkpoint, "--overwrite")) == 2, out
        assert reason in capsys.readouterr().err, out
    # A video is an output too.
    code = main(replay_args(in_bag, tmp_path / "o", tiny_checkpoint, "--video", str(storage_file)))
    assert code == 2 and "the video" in capsys.readouterr().err
    assert _digest(data) == before
    assert _count(in_bag, "/front/image_raw") == 2  # still a readable bag


def test_overwrite_replaces_only_a_rosbag2_bag(
    tmp_path: Path, write_camera_bag, tiny_checkpoint: Path, capsys
) -> None:
    in_bag = write_camera_bag(tmp_path / "drive", "mcap", frames=2)
    notes = tmp_path / "notes.txt"
    notes.write_text("not a bag\n")
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "report.pdf").write_bytes(b"%PDF")
    not_mp4 = tmp_path / "clip.mp4"
    not_mp4.write_text("not a video")
    # A bag folder with a file its metadata does not list is not only a bag: keep it.
    old_bag = write_camera_bag(tmp_path / "old_bag", "mcap", frames=1)
    (old_bag / "notes.md").write_text("mine")
    cases = [
        (notes, notes, ()),  # issue: `-o notes.txt --overwrite` deleted it without a word
        (folder, folder, ()),
        (old_bag, old_bag, ()),
        (tmp_path / "o2", not_mp4, ("--video", str(not_mp4), "--topics", "/front/image_raw")),
    ]
    for out, watched, extra in cases:
        before = _digest(watched)
        assert main(replay_args(in_bag, out, tiny_checkpoint, "--overwrite", *extra)) == 2, out
        err = capsys.readouterr().err
        assert "refusing to replace it" in err, err
        assert _digest(watched) == before
    assert notes.read_text() == "not a bag\n" and (folder / "report.pdf").exists()

    # A real bag (folder or bare .mcap file) is replaced, and only with --overwrite.
    target = tmp_path / "seg.mcap"
    assert main(replay_args(in_bag, target, tiny_checkpoint)) == 0
    assert main(replay_args(in_bag, target, tiny_checkpoint)) == 2
    assert "exists already" in capsys.readouterr().err
    assert main(replay_args(in_bag, target, tiny_checkpoint, "--overwrite")) == 0
    assert _count(target, "/front/class_mask") == 2
    bare = tmp_path / "bare.mcap"
    (target / "seg_0.mcap").rename(bare)
    assert main(replay_args(in_bag, bare, tiny_checkpoint, "--overwrite")) == 0
    assert bare.is_dir() and _count(bare, "/front/class_mask") == 2


def test_checks_run_before_the_model_is_loaded(tmp_path: Path, write_camera_bag, capsys) -> None:
    # The checkpoint does not exist: if the model were loaded (or exported) first, that would be the error.
    in_bag = write_camera_bag(tmp_path / "drive", "mcap", frames=1)
    missing = tmp_path / "no_such_model.safetensors"
    base = ["replay", str(in_bag), "--checkpoint", str(missing), "--backend", "onnxruntime", "--quiet"]
    assert main([*base, "-o", str(tmp_path / "o"), "--topics", "/wrong"]) == 2
    err = capsys.readouterr().err
    assert "no image topic /wrong" in err and "no_such_model" not in err
    assert main([*base, "-o", str(in_bag)]) == 2
    err = capsys.readouterr().err
    assert "is the input" in err and "no_such_model" not in err
    assert main([*base, "-o", str(tmp_path / "o"), "--weather", "topic"]) == 2
    assert "no /weather topic" in capsys.readouterr().err


def test_an_empty_folder_or_a_folder_without_metadata_gets_a_clear_message(
    tmp_path: Path, write_camera_bag
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BagError, match=r"empty folder, not a rosbag2 bag"):
        BagReader(empty)
    bag = write_camera_bag(tmp_path / "killed", "mcap", frames=1)
    (bag / "metadata.yaml").unlink()
    with pytest.raises(BagError, match=r"has no metadata.yaml .*ros2 bag reindex"):
        BagReader(bag)
    # The storage file alone is still readable, as the message suggests.
    with BagReader(next(bag.glob("*.mcap"))) as reader:
        assert reader.count("/front/image_raw") == 1


# --------------------------------------------------------------------------------- replaying a replay


def test_replaying_a_replay_output_drops_the_earlier_results(
    tmp_path: Path, write_camera_bag, tiny_pipeline
) -> None:
    in_bag = write_camera_bag(tmp_path / "drive", "mcap", frames=3)
    first = tmp_path / "first"
    Replayer(tiny_pipeline, ReplayOptions(progress=False, weather="snow")).run(in_bag, first)
    assert _count(first, "/front/class_mask") == 3
    second = tmp_path / "second"
    summary = Replayer(tiny_pipeline, ReplayOptions(progress=False, weather="night")).run(first, second)
    # One result per frame, from this run only (no old + new pair at the same stamp).
    assert _count(second, "/front/class_mask") == 3
    with Reader(second) as reader:
        weather = [bytes(raw) for c, _, raw in reader.messages() if c.topic == "/front/weather"]
    assert len(weather) == 3 and all(b"night" in w for w in weather)
    names = ("class_mask", "overlay", "drivable_mask", "weather")
    assert summary.dropped == {f"/{cam}/{n}": 3 for cam in ("front", "rear") for n in names}
    assert "dropped 24 input messages of an earlier replay's outputs" in summary.format()
    assert _count(second, "/note") == 3  # everything else is still copied


# ----------------------------------------------------------------------------------- signals and kills


def _start_replay(in_bag: Path, out: Path, checkpoint: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "causal_tune_ros.cli", *replay_args(in_bag, out, checkpoint, *extra)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_until_writing(proc: subprocess.Popen, parent: Path, name: str) -> Path:
    """Wait until the replay into ``parent / name`` has written data (wherever it writes it: under the
    final name or beside it), and return the folder that holds that data."""
    started = time.time()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"replay ended before it was interrupted: {proc.communicate()}"
        for data in [*parent.glob(f"{name}/*.mcap"), *parent.glob(f".{name}.partial-*/*/*.mcap")]:
            with contextlib.suppress(FileNotFoundError):
                stat = data.stat()
                if stat.st_size > 0 and stat.st_mtime >= started:
                    return data.parent.parent if data.parent.parent != parent else data.parent
        time.sleep(0.02)
    proc.kill()
    pytest.fail("the replay never started writing")


def test_sigterm_keeps_the_previous_output_and_sigkill_never_leaves_a_half_bag(
    tmp_path: Path, write_camera_bag, tiny_pipeline, tiny_checkpoint: Path
) -> None:
    """Two replays of a long bag run side by side (one interpreter start-up's wait, not two)."""
    frames = 1500
    long_bag = _long_bag(tmp_path / "long", frames)
    # SIGTERM during an --overwrite of a good earlier output.
    termed = tmp_path / "termed.mcap"
    Replayer(tiny_pipeline, ReplayOptions(progress=False)).run(
        write_camera_bag(tmp_path / "small", "mcap", 2), termed
    )
    previous = _digest(termed)
    # SIGKILL of a replay into a new output.
    killed = tmp_path / "killed.mcap"
    term_proc = _start_replay(long_bag, termed, tiny_checkpoint, "--overwrite")
    kill_proc = _start_replay(long_bag, killed, tiny_checkpoint)
    try:
        _wait_until_writing(term_proc, tmp_path, termed.name)
        term_proc.send_signal(signal.SIGTERM)
        hidden = _wait_until_writing(kill_proc, tmp_path, killed.name)
        os.kill(kill_proc.pid, signal.SIGKILL)
        _, err = term_proc.communicate(timeout=120)
        kill_proc.communicate(timeout=60)
    finally:
        for proc in (term_proc, kill_proc):
            if proc.poll() is None:
                proc.kill()
    partial = tmp_path / "termed.mcap.partial"
    problems = []  # every broken guarantee is reported, not only the first
    if term_proc.returncode != 143 or "terminated" not in err:
        problems.append(f"SIGTERM not handled like Ctrl-C: exit {term_proc.returncode}, {err[-300:]!r}")
    if _digest(termed) != previous:
        problems.append("SIGTERM during --overwrite changed the previous good output")
    if not (partial / "metadata.yaml").exists():
        problems.append("SIGTERM did not close the partial bag cleanly as termed.mcap.partial")
    elif not 0 < _count(partial, "/cam/image_raw") < frames:
        problems.append("the partial bag does not hold the frames written before SIGTERM")
    if list(tmp_path.glob(".termed.mcap.partial-*")):
        problems.append("SIGTERM left the hidden work folder behind")
    if kill_proc.returncode != -signal.SIGKILL:
        problems.append(f"the second replay was not killed (exit {kill_proc.returncode})")
    if os.path.lexists(killed):
        problems.append("SIGKILL left a half bag under the final name")
    elif not hidden.exists():
        problems.append("the killed replay's data is not in its hidden folder")
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------------------------------- video


def test_video_is_h264_for_browsers_with_mp4v_as_fallback(tmp_path: Path) -> None:
    av = pytest.importorskip("av", reason="PyAV (av) is not installed")
    from causal_tune_ros.replay.video import H264, MP4V, SideBySideVideo, h264_available

    if not h264_available():
        pytest.skip("this PyAV build has no libx264 encoder")
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 255, (31, 45, 3), dtype=np.uint8) for _ in range(5)]
    for codec, expected in ((H264, "h264"), (MP4V, "mpeg4")):
        path = tmp_path / f"{codec}.mp4"
        video = SideBySideVideo(path, fps=10.0, codec=codec)
        for rgb in frames:
            video.write(rgb, rgb[::-1])
            assert not path.exists()  # appears only when complete
        video.close()
        assert video.codec == codec and not list(tmp_path.glob(".*partial*"))
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == expected
            decoded = list(container.decode(stream))
        assert len(decoded) == 5 and (decoded[0].width, decoded[0].height) == (88, 30)
        if codec == H264:
            assert stream.codec_context.pix_fmt == "yuv420p"  # what browsers decode

    # An interrupted replay leaves neither a partial video nor a changed old one.
    path = tmp_path / f"{H264}.mp4"
    before = _digest(path)
    video = SideBySideVideo(path, fps=10.0)
    video.write(frames[0], frames[1])
    video.close(commit=False)
    assert _digest(path) == before and not list(tmp_path.glob(".*partial*"))


def test_public_one_bag_api_checks_first_and_writes_atomically(
    tmp_path: Path, write_camera_bag, tiny_pipeline
) -> None:
    """`plan_replay` (all checks, no model) and `replay_bag` (one bag -> one output), for reuse."""
    from causal_tune_ros.replay import plan_replay, replay_bag

    in_bag = write_camera_bag(tmp_path / "drive", "mcap", frames=2)
    out = tmp_path / "out.mcap"
    with BagReader(in_bag) as bag:
        plan = plan_replay(bag, out, ReplayOptions(video=tmp_path / "v.mp4"))
        assert plan.image_topics == ["/front/image_raw", "/rear/image_raw/compressed"]
        assert plan.total == 4 and plan.dropped == {} and plan.storage == "mcap"
        assert set(plan.videos) == set(plan.image_topics)
        with pytest.raises(BagError, match="is the input"):
            plan_replay(bag, in_bag, ReplayOptions())
    summary = replay_bag(tiny_pipeline, in_bag, out, ReplayOptions(progress=False))
    assert summary.processed == 4 and _count(out, "/rear/class_mask") == 2
    with pytest.raises(BagError, match="exists already"):
        replay_bag(tiny_pipeline, in_bag, out, ReplayOptions(progress=False))


def test_a_file_that_appears_at_the_target_during_the_write_is_not_replaced(tmp_path: Path) -> None:
    out = tmp_path / "out.mcap"
    string = msg_class("std_msgs/msg/String")
    writer = BagWriter(out, overwrite=True)
    writer.add_topic("/note", "std_msgs/msg/String")
    writer.write_message("/note", 1, string(data="hello"))
    out.write_text("someone else's file")  # appears while the bag is being written
    with pytest.raises(BagError, match="not a rosbag2 bag"):
        writer.close()
    assert out.read_text() == "someone else's file"
    assert _count(tmp_path / "out.mcap.partial", "/note") == 1  # the finished bag is kept beside it
    assert not list(tmp_path.glob(".out.mcap.partial-*"))
