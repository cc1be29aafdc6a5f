"""Replay robustness: corrupt frames are skipped and counted; unusable bags: clear error, exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from rosbags.rosbag2 import Reader

from causal_tune_ros.bags import (
    COMPRESSED_IMAGE_TYPE,
    IMAGE_TYPE,
    STRING_TYPE,
    BagReader,
    BagWriter,
    msg_class,
    serialize,
)
from causal_tune_ros.cli import main
from causal_tune_ros.errors import BagError

from .replay_support import replay_args


def _corrupt_messages(bagkit) -> list[tuple[str, str, int, bytes]]:
    """Three broken frames, interleaved with the good ones (between frame 0 and 1 of each camera)."""
    t = bagkit.T0 + 60_000_000
    rgb = bagkit.make_image(9)
    # 1. Valid CDR, but the pixel data is cut short of step * height.
    short = bagkit.image_message(rgb, t, "front_optical")
    short.data = short.data[: short.data.size // 2].copy()
    # 2. A JPEG cut in half (no end-of-image marker).
    ok_jpeg = bytes(bagkit.jpeg_message(rgb, t, "rear_optical").data)
    half = bagkit.jpeg_message(rgb, t + 1, "rear_optical", data=ok_jpeg[: len(ok_jpeg) // 2])
    # 3. Not a JPEG at all.
    junk = bagkit.jpeg_message(rgb, t + 2, "rear_optical", data=b"\xff\xd8\xff\xe0" + bytes(range(200)))
    # 4. A raw message whose CDR bytes are truncated (a bag written by a crashing recorder).
    whole = bytes(serialize(bagkit.image_message(rgb, t + 3, "front_optical")))
    return [
        ("/front/image_raw", IMAGE_TYPE, t, bytes(serialize(short))),
        ("/rear/image_raw/compressed", COMPRESSED_IMAGE_TYPE, t + 1, bytes(serialize(half))),
        ("/rear/image_raw/compressed", COMPRESSED_IMAGE_TYPE, t + 2, bytes(serialize(junk))),
        ("/front/image_raw", IMAGE_TYPE, t + 3, whole[:100]),
    ]


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_corrupt_frames_are_skipped_and_counted(
    storage: str, tmp_path: Path, write_camera_bag, tiny_checkpoint: Path, bagkit, capsys
) -> None:
    in_bag = write_camera_bag(tmp_path / "in", storage, frames=3, extra=_corrupt_messages(bagkit))
    out_bag = tmp_path / "out"
    assert main(replay_args(in_bag, out_bag, tiny_checkpoint)) == 0
    printed = capsys.readouterr().out
    assert "skipped frames: 4" in printed
    assert "/front/image_raw: 5 frames, 3 processed, 2 skipped as corrupt" in printed
    assert "/rear/image_raw/compressed: 5 frames, 3 processed, 2 skipped as corrupt" in printed
    assert "image data has" in printed  # the reason of the truncated raw frame
    assert "corrupt JPEG" in printed or "corrupt compressed image" in printed

    good_stamps = {
        "/front": [bagkit.T0 + i * 100_000_000 for i in range(3)],
        "/rear": [bagkit.T0 + i * 100_000_000 + 30_000_000 for i in range(3)],
    }
    with Reader(out_bag) as reader:
        got: dict[str, list[int]] = {}
        for conn, t, _ in reader.messages():
            got.setdefault(conn.topic, []).append(t)
    for ns, stamps in good_stamps.items():
        for name in ("class_mask", "overlay", "drivable_mask", "weather"):
            assert got[f"{ns}/{name}"] == stamps
    # Corrupt input messages are still copied: the output holds the input untouched.
    assert len(got["/front/image_raw"]) == 5 and len(got["/rear/image_raw/compressed"]) == 5


def test_all_frames_corrupt_exits_1(tmp_path: Path, tiny_checkpoint: Path, bagkit, capsys) -> None:
    with BagWriter(tmp_path / "in", storage="mcap") as bag:
        bag.add_topic("/cam/image_raw", IMAGE_TYPE)
        msg = bagkit.image_message(bagkit.make_image(0), bagkit.T0, "cam")
        msg.encoding = "weird16"
        bag.write_message("/cam/image_raw", bagkit.T0, msg)
    assert main(replay_args(tmp_path / "in", tmp_path / "out", tiny_checkpoint)) == 1
    captured = capsys.readouterr()
    assert "unsupported image encoding 'weird16'" in captured.out
    assert "no frame could be processed" in captured.err


def test_unopenable_bags_give_clear_errors(tmp_path: Path, tiny_checkpoint: Path, capsys) -> None:
    missing = tmp_path / "nope.mcap"
    assert main(replay_args(missing, tmp_path / "o1", tiny_checkpoint)) == 2
    err = capsys.readouterr().err
    assert "causal-tune replay: error: cannot open bag" in err and "no such file" in err

    no_metadata = tmp_path / "folder"
    no_metadata.mkdir()
    assert main(replay_args(no_metadata, tmp_path / "o2", tiny_checkpoint)) == 2
    assert "metadata" in capsys.readouterr().err

    garbage = tmp_path / "garbage.mcap"
    garbage.write_bytes(b"this is not an mcap file" * 10)
    assert main(replay_args(garbage, tmp_path / "o3", tiny_checkpoint)) == 2
    assert "cannot open bag" in capsys.readouterr().err

    bad_yaml = tmp_path / "bad_yaml"
    bad_yaml.mkdir()
    (bad_yaml / "metadata.yaml").write_text("rosbag2_bagfile_information: [unclosed\n")
    assert main(replay_args(bad_yaml, tmp_path / "o4", tiny_checkpoint)) == 2
    assert "cannot open bag" in capsys.readouterr().err
    # Nothing was created for failed runs.
    assert not any((tmp_path / f"o{i}").exists() for i in range(1, 5))


def test_bag_without_images_and_bad_options(
    tmp_path: Path, write_camera_bag, tiny_checkpoint: Path, capsys
) -> None:
    with BagWriter(tmp_path / "strings", storage="sqlite3") as bag:
        bag.add_topic("/note", STRING_TYPE)
        bag.write_message("/note", 1, msg_class(STRING_TYPE)(data="hi"))
    assert main(replay_args(tmp_path / "strings", tmp_path / "o", tiny_checkpoint)) == 2
    assert "has no sensor_msgs/Image or CompressedImage topic" in capsys.readouterr().err

    in_bag = write_camera_bag(tmp_path / "cams", "mcap", frames=1)
    assert main(replay_args(in_bag, tmp_path / "o", tiny_checkpoint, "--topics", "/nope")) == 2
    assert "no image topic /nope" in capsys.readouterr().err
    args = replay_args(in_bag, tmp_path / "o", tiny_checkpoint)
    args[args.index("clear")] = "hail"
    assert main(args) == 2
    assert "unknown weather 'hail'" in capsys.readouterr().err
    # An existing output is never overwritten silently.
    (tmp_path / "exists").mkdir()
    assert main(replay_args(in_bag, tmp_path / "exists", tiny_checkpoint)) == 2
    assert "exists already" in capsys.readouterr().err


def test_bag_reader_errors_name_the_bag(tmp_path: Path) -> None:
    with pytest.raises(BagError, match="no such file"):
        BagReader(tmp_path / "missing")
    with BagWriter(tmp_path / "b", storage="mcap") as bag:
        bag.add_topic("/x", STRING_TYPE)
        with pytest.raises(BagError, match="already written as"):
            bag.add_topic("/x", IMAGE_TYPE)
        with pytest.raises(BagError, match="was not added"):
            bag.write("/y", 0, b"")
        with pytest.raises(BagError, match="unknown message type"):
            bag.add_topic("/z", "nope_msgs/msg/Nope")
    with BagReader(tmp_path / "b") as reader, pytest.raises(BagError, match="no topic /q"):
        list(reader.messages(["/q"]))


def test_cli_subprocess_exit_code_2(tmp_path: Path) -> None:
    """The installed entry point, end to end in a fresh interpreter (no model load: the bag fails first)."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "causal_tune_ros.cli",
            "replay",
            str(tmp_path / "missing"),
            "-o",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "causal-tune replay: error: cannot open bag" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_frames_the_model_cannot_segment_are_counted(
    tmp_path: Path, write_camera_bag, tiny_checkpoint
) -> None:
    """A model that outputs NaN (BackendError from the pipeline) fails frame by frame; the replay goes on."""
    import torch

    from causal_tune_ros.backends import BackendSpec, create_backend
    from causal_tune_ros.model.checkpoint import load_checkpoint, save_checkpoint
    from causal_tune_ros.pipeline import SegmentationPipeline
    from causal_tune_ros.replay.replayer import Replayer, ReplayOptions

    model = load_checkpoint(tiny_checkpoint)
    with torch.no_grad():
        for p in model.head.parameters():
            p.fill_(float("nan"))
    broken = save_checkpoint(tmp_path / "nan.safetensors", model, include_backbone=True)
    backend = create_backend(BackendSpec(name="eager", checkpoint=broken, input_size=(28, 42)))
    in_bag = write_camera_bag(tmp_path / "in", "mcap", frames=2)
    summary = Replayer(SegmentationPipeline(backend), ReplayOptions(progress=False, weather="fog")).run(
        in_bag, tmp_path / "out"
    )
    assert summary.processed == 0 and summary.skipped == 4
    assert all(s.failed == 2 and s.corrupt == 0 for s in summary.topics.values())
    assert "non-finite" in summary.topics["/front/image_raw"].reasons[0]
    assert "2 failed in the model" in summary.format()
    assert summary.copied == 6  # the input is still copied in full


def test_replay_bag_reports_every_frame_to_exactly_one_callback(
    tmp_path: Path, write_camera_bag, tiny_checkpoint: Path, bagkit
) -> None:
    """``on_frame`` sees the segmented frames and ``on_skip`` the skipped ones, with topic, stamp, reason."""
    from causal_tune_ros.replay import ReplayOptions, replay_bag
    from causal_tune_ros.replay.command import build_pipeline

    extra = _corrupt_messages(bagkit)
    in_bag = write_camera_bag(tmp_path / "in", "mcap", frames=3, extra=extra)
    pipeline, _ = build_pipeline(tiny_checkpoint, backend="eager", input_size="28x42")
    done: list[tuple[str, int]] = []
    skipped: list[tuple[str, int, str]] = []
    summary = replay_bag(
        pipeline,
        in_bag,
        tmp_path / "out",
        ReplayOptions(weather="clear"),
        on_frame=lambda topic, stamp, rgb, result, condition: done.append((topic, stamp)),
        on_skip=lambda topic, stamp, reason: skipped.append((topic, stamp, reason)),
    )
    assert sorted((topic, stamp) for topic, stamp, _ in skipped) == sorted((t, s) for t, _, s, _ in extra)
    assert all(reason for _, _, reason in skipped)
    assert len(done) == 6 and not set(done) & {(t, s) for t, s, _ in skipped}
    assert summary.skipped == 4


def test_output_storage_is_chosen_in_one_place_and_checked_before_any_model_work(
    tmp_path: Path, write_camera_bag
) -> None:
    from causal_tune_ros.bags import BagReader, storage_for
    from causal_tune_ros.replay.replayer import ReplayOptions, plan_replay

    in_bag = write_camera_bag(tmp_path / "in", "sqlite3", frames=1)
    with BagReader(in_bag) as bag:
        # An unknown --storage used to pass the plan and fail only when the writer opened, model loaded.
        with pytest.raises(BagError, match="unknown storage 'zip'"):
            plan_replay(bag, tmp_path / "out", ReplayOptions(storage="zip"))
        assert plan_replay(bag, tmp_path / "out", ReplayOptions()).storage == "sqlite3"  # like the input
        assert plan_replay(bag, tmp_path / "out.mcap", ReplayOptions()).storage == "mcap"  # the suffix
    assert storage_for(tmp_path / "new", like=in_bag) == "sqlite3"
    assert storage_for(tmp_path / "new") == "mcap"
    assert not (tmp_path / "out").exists()
