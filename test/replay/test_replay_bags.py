"""`causal-tune replay` on bags written with rosbags: one output per input frame, same stamps and frames."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import Reader

from causal_tune_ros.bags import IMAGE_TYPES, deserialize, stamp_to_ns
from causal_tune_ros.cli import main
from causal_tune_ros.replay.replayer import (
    Replayer,
    ReplayOptions,
    camera_namespace,
    is_camera_topic,
    output_topics,
)
from causal_tune_ros.weather import CONDITIONS


def _read_all(path: Path) -> dict[str, list[tuple[int, bytes]]]:
    """Every message of a bag, with plain rosbags (no code of ours): topic -> [(log time, raw CDR)]."""
    out: dict[str, list[tuple[int, bytes]]] = defaultdict(list)
    with Reader(path) as reader:
        types = {c.topic: c.msgtype for c in reader.connections}
        for conn, t, raw in reader.messages():
            out[conn.topic].append((t, bytes(raw)))
        out["__types__"] = [(0, repr(types).encode())]
    return dict(out)


def _types(path: Path) -> dict[str, str]:
    with Reader(path) as reader:
        return {c.topic: c.msgtype for c in reader.connections}


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_replay_writes_one_output_per_frame_with_input_stamps(
    storage: str, tmp_path: Path, write_camera_bag, tiny_checkpoint: Path, bagkit, capsys
) -> None:
    frames = 3
    in_bag = write_camera_bag(tmp_path / f"in_{storage}", storage, frames=frames)
    out_bag = tmp_path / "out"
    h, w = bagkit.TINY_INPUT
    code = main(
        [
            "replay",
            str(in_bag),
            "-o",
            str(out_bag),
            "--checkpoint",
            str(tiny_checkpoint),
            "--backend",
            "eager",
            "--input-size",
            f"{h}x{w}",
            "--weather",
            "auto",
            "--quiet",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "6 frames" in printed.replace("\n", " ") or f"{2 * frames} frames" in printed

    inputs = _read_all(in_bag)
    outputs = _read_all(out_bag)
    types = _types(out_bag)
    # The output bag's storage is the input's (the output folder has no suffix).
    assert list(out_bag.glob("*.mcap" if storage == "mcap" else "*.db3"))

    # Every input message is copied byte for byte, at its log time.
    for topic in ("/front/image_raw", "/rear/image_raw/compressed", "/note"):
        assert outputs[topic] == inputs[topic]

    for topic, _, frame_id in bagkit.CAMERAS:
        ns = camera_namespace(topic)
        in_msgs = [(t, deserialize(raw, types[topic])) for t, raw in inputs[topic]]
        assert len(in_msgs) == frames
        for name, msgtype in (
            ("class_mask", "sensor_msgs/msg/Image"),
            ("overlay", "sensor_msgs/msg/Image"),
            ("drivable_mask", "sensor_msgs/msg/Image"),
            ("weather", "std_msgs/msg/String"),
        ):
            out_topic = f"{ns}/{name}"
            assert types[out_topic] == msgtype
            got = outputs[out_topic]
            assert len(got) == frames, (out_topic, len(got))
            assert [t for t, _ in got] == [t for t, _ in in_msgs]
            for (_, raw), (_, src) in zip(got, in_msgs, strict=True):
                msg = deserialize(raw, msgtype)
                if name == "weather":
                    assert msg.data in CONDITIONS
                    continue
                assert msg.header.frame_id == frame_id
                assert stamp_to_ns(msg.header.stamp) == stamp_to_ns(src.header.stamp)
                # Outputs are at the input camera's resolution (40x30), not the network's (42x28).
                assert (msg.height, msg.width) == (30, 40)
                data = np.asarray(msg.data)
                if name == "class_mask":
                    assert msg.encoding == "mono8" and data.size == 30 * 40
                    assert data.max() < 19
                elif name == "drivable_mask":
                    assert msg.encoding == "mono8"
                    assert set(np.unique(data)) <= {0, 255}
                else:
                    assert msg.encoding == "rgb8" and msg.step == 3 * 40 and data.size == 30 * 40 * 3


def test_replay_api_topics_every_max_frames_and_video(
    tmp_path: Path, write_camera_bag, tiny_pipeline, bagkit
) -> None:
    in_bag = write_camera_bag(tmp_path / "in.mcap", "mcap", frames=4)
    seen: list[tuple[str, int, str]] = []
    options = ReplayOptions(
        topics=["/front/image_raw"],
        weather="snow",
        every=2,
        video=tmp_path / "video.mp4",
        progress=False,
        overlay=False,
    )
    replayer = Replayer(
        tiny_pipeline, options, on_frame=lambda topic, t, rgb, res, cond: seen.append((topic, t, cond))
    )
    summary = replayer.run(in_bag, tmp_path / "out.db3")
    stats = summary.topics["/front/image_raw"]
    assert list(summary.topics) == ["/front/image_raw"]
    assert (stats.frames, stats.processed, stats.corrupt) == (4, 2, 0)
    assert stats.conditions == {"snow": 2}
    assert [s[1] for s in seen] == [bagkit.T0, bagkit.T0 + 200_000_000]
    assert summary.storage == "sqlite3"
    types = _types(tmp_path / "out.db3")
    assert "/front/overlay" not in types and "/rear/class_mask" not in types
    outputs = _read_all(tmp_path / "out.db3")
    assert [t for t, _ in outputs["/front/class_mask"]] == [s[1] for s in seen]
    assert len(outputs["/rear/image_raw/compressed"]) == 4  # unprocessed topics are still copied
    # The video: one side-by-side frame per processed frame, twice the input width.
    import cv2

    cap = cv2.VideoCapture(str(tmp_path / "video.mp4"))
    assert cap.isOpened()
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, frame = cap.read()
    cap.release()
    assert ok and n == 2 and frame.shape == (30, 80, 3)

    # Single-threaded mode (the benchmark's reference) gives the same bag layout.
    limited = Replayer(
        tiny_pipeline, ReplayOptions(max_frames=3, progress=False, weather="clear", threaded=False)
    )
    summary = limited.run(in_bag, tmp_path / "limited")
    assert summary.processed == 3
    assert sum(s.frames for s in summary.topics.values()) == 3


def test_output_topic_names_never_collide() -> None:
    assert camera_namespace("/front/image_raw") == "/front"
    assert camera_namespace("/front/image_raw/compressed") == "/front"
    assert camera_namespace("/image") == ""
    names = output_topics(["/cam/image_raw", "/cam/image_rect", "/other/image_raw"])
    assert names["/cam/image_raw"]["class_mask"] == "/cam/image_raw/class_mask"
    assert names["/cam/image_rect"]["class_mask"] == "/cam/image_rect/class_mask"
    assert names["/other/image_raw"]["class_mask"] == "/other/class_mask"
    assert output_topics(["/image"])["/image"]["weather"] == "/weather"
    flat = [t for d in names.values() for t in d.values()]
    assert len(flat) == len(set(flat))
    assert is_camera_topic("/front/image_raw") and is_camera_topic("/front/image_raw/compressed")
    assert not is_camera_topic("/front/class_mask") and not is_camera_topic("/camera/ground_truth")
    assert set(IMAGE_TYPES) == {"sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage"}


@pytest.mark.ros
def test_output_messages_deserialize_with_rclpy(tmp_path: Path, write_camera_bag, tiny_pipeline) -> None:
    """ROS 2's own CDR deserialiser reads every output message (what `ros2 bag play` hands to rmw)."""
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import Image
    from std_msgs.msg import String

    in_bag = write_camera_bag(tmp_path / "in", "mcap", frames=2)
    Replayer(tiny_pipeline, ReplayOptions(progress=False)).run(in_bag, tmp_path / "out")
    with Reader(tmp_path / "out") as reader:
        count = 0
        for conn, _, raw in reader.messages():
            if conn.topic.endswith(("class_mask", "overlay", "drivable_mask")):
                msg = deserialize_message(bytes(raw), Image)
                assert msg.header.frame_id in ("front_optical", "rear_optical")
                assert len(msg.data) == msg.step * msg.height
                count += 1
            elif conn.topic.endswith("/weather"):
                assert deserialize_message(bytes(raw), String).data in CONDITIONS
    assert count == 2 * 3 * 2

    # metadata.yaml names each type with the hash ROS 2 Jazzy itself computes (its type descriptions).
    import json
    import sys

    import yaml

    meta = yaml.safe_load((tmp_path / "out" / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["version"] == 8 and meta["storage_identifier"] == "mcap"  # the Humble-readable default
    checked = 0
    for entry in meta["topics_with_message_count"]:
        topic = entry["topic_metadata"]
        description = Path(sys.prefix) / "share" / f"{topic['type']}.json"
        if description.exists():
            hashes = json.loads(description.read_text())["type_hashes"]
            assert topic["type_description_hash"] == hashes[0]["hash_string"], topic["name"]
            checked += 1
    assert checked >= 4


def test_weather_from_topic_on_a_synthetic_drive(tmp_path: Path, tiny_pipeline) -> None:
    """`--weather topic` follows the bag's /weather (logged at the same instant as each frame)."""
    from causal_tune_ros.synthetic.bag import write_drive

    write_drive(tmp_path / "drive", ["snow", "night"], frames=2, size=(28, 42), storage="sqlite3")
    summary = Replayer(tiny_pipeline, ReplayOptions(weather="topic", progress=False)).run(
        tmp_path / "drive", tmp_path / "out"
    )
    # The ground-truth labels are an Image topic too, but not a camera: not segmented by default.
    assert list(summary.topics) == ["/camera/image_raw"]
    assert summary.topics["/camera/image_raw"].conditions == {"snow": 2, "night": 2}
    msgs = _read_all(tmp_path / "out")
    weather_in = [deserialize(raw, "std_msgs/msg/String").data for _, raw in msgs["/weather"]]
    weather_out = [deserialize(raw, "std_msgs/msg/String").data for _, raw in msgs["/camera/weather"]]
    assert weather_out == weather_in == ["snow", "snow", "night", "night"]
    assert [t for t, _ in msgs["/camera/weather"]] == [t for t, _ in msgs["/camera/image_raw"]]
