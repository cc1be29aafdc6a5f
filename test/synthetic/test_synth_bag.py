"""`causal-tune synth`: a readable rosbag2 drive with images, ground truth, camera_info, tf and weather."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import Reader

from causal_tune_ros.cli import main
from causal_tune_ros.imaging import compressed_to_rgb, image_to_rgb
from causal_tune_ros.replay.bag_io import deserialize, stamp_to_ns
from causal_tune_ros.synthetic import render_scene
from causal_tune_ros.synthetic.bag import (
    PERIOD_NS,
    encode_jpeg,
    rotation_to_quaternion,
    write_drive,
)


def _messages(path: Path) -> tuple[dict[str, str], dict[str, list[tuple[int, object]]]]:
    out: dict[str, list[tuple[int, object]]] = defaultdict(list)
    with Reader(path) as reader:
        types = {c.topic: c.msgtype for c in reader.connections}
        qos = {c.topic: c.ext.offered_qos_profiles for c in reader.connections}
        for conn, t, raw in reader.messages():
            out[conn.topic].append((t, deserialize(raw, conn.msgtype)))
    assert all(qos.values()), "every topic records its offered QoS"
    return types, dict(out)


def test_synth_cli_writes_raw_drive(tmp_path: Path, capsys) -> None:
    out = tmp_path / "drive.mcap"
    code = main(
        ["synth", "--out", str(out), "--conditions", "snow,night", "--frames", "2", "--size", "48x64"]
    )
    assert code == 0
    assert "4 frames" in capsys.readouterr().out
    assert list(out.glob("*.mcap")), "a .mcap suffix selects the mcap storage"
    types, msgs = _messages(out)
    assert types == {
        "/tf_static": "tf2_msgs/msg/TFMessage",
        "/weather": "std_msgs/msg/String",
        "/camera/camera_info": "sensor_msgs/msg/CameraInfo",
        "/camera/image_raw": "sensor_msgs/msg/Image",
        "/camera/ground_truth": "sensor_msgs/msg/Image",
    }
    for topic in ("/weather", "/camera/camera_info", "/camera/image_raw", "/camera/ground_truth"):
        assert len(msgs[topic]) == 4
    assert [m.data for _, m in msgs["/weather"]] == ["snow", "snow", "night", "night"]

    stamps = [t for t, _ in msgs["/camera/image_raw"]]
    assert np.all(np.diff(stamps) == PERIOD_NS)  # 10 Hz
    for (t, img), (_, gt), (_, info) in zip(
        msgs["/camera/image_raw"], msgs["/camera/ground_truth"], msgs["/camera/camera_info"], strict=True
    ):
        assert (
            stamp_to_ns(img.header.stamp)
            == t
            == stamp_to_ns(gt.header.stamp)
            == stamp_to_ns(info.header.stamp)
        )
        assert img.header.frame_id == gt.header.frame_id == info.header.frame_id == "camera_optical_frame"
        assert (img.encoding, img.height, img.width) == ("rgb8", 48, 64)
        assert image_to_rgb(img).shape == (48, 64, 3)
        labels = np.asarray(gt.data).reshape(48, 64)
        assert gt.encoding == "mono8"
        assert set(np.unique(labels)) <= set(range(19)) | {255}
        assert len(np.unique(labels)) >= 3  # a street scene, not an empty frame
        assert (info.height, info.width) == (48, 64)
        assert len(info.d) == 5 and not np.any(info.d)

    # Segments drive through the same scenes: frame k of each condition has seed k (same geometry).
    first_snow = np.asarray(msgs["/camera/ground_truth"][0][1].data)
    first_night = np.asarray(msgs["/camera/ground_truth"][2][1].data)
    assert np.array_equal(first_snow, first_night)

    # camera_info K and tf_static match what the renderer used for the scene.
    frame = render_scene(0, "snow", 48, 64)
    info = msgs["/camera/camera_info"][0][1]
    assert np.allclose(np.asarray(info.k).reshape(3, 3), frame.K)
    assert np.allclose(np.asarray(info.p).reshape(3, 4)[:, :3], frame.K)
    tf = msgs["/tf_static"][0][1].transforms[0]
    assert (tf.header.frame_id, tf.child_frame_id) == ("base_link", "camera_optical_frame")
    assert math.isclose(tf.transform.translation.z, frame.ground_pose.height, rel_tol=1e-9)
    q = tf.transform.rotation
    assert np.allclose(_quat_matrix(q.x, q.y, q.z, q.w), frame.ground_pose.rotation(), atol=1e-9)


def test_synth_compressed_sqlite(tmp_path: Path) -> None:
    summary = write_drive(
        tmp_path / "drive", ["clear"], frames=2, size=(32, 48), compressed=True, storage="sqlite3", seed=5
    )
    assert summary.storage == "sqlite3" and summary.conditions == {"clear": 2}
    assert list((tmp_path / "drive").glob("*.db3"))
    types, msgs = _messages(tmp_path / "drive")
    assert types["/camera/image_raw/compressed"] == "sensor_msgs/msg/CompressedImage"
    assert "/camera/image_raw" not in types
    reference = render_scene(5, "clear", 32, 48).image  # frame 0 of the drive: seed 5
    for k, (_, msg) in enumerate(msgs["/camera/image_raw/compressed"]):
        assert msg.format == "jpeg"
        rgb = compressed_to_rgb(msg)
        assert rgb.shape == (32, 48, 3)
        if k == 0:
            assert np.array_equal(np.asarray(msg.data), encode_jpeg(reference, 90))


def test_synth_rejects_bad_arguments(tmp_path: Path, capsys) -> None:
    assert main(["synth", "--out", str(tmp_path / "a"), "--conditions", "hail"]) == 2
    assert "unknown condition 'hail'" in capsys.readouterr().err
    assert main(["synth", "--out", str(tmp_path / "b"), "--size", "big"]) == 2
    assert main(["synth", "--out", str(tmp_path / "c"), "--frames", "0"]) == 2
    assert not (tmp_path / "c").exists()
    write_drive(tmp_path / "d", ["fog"], frames=1, size=(32, 32))
    assert main(["synth", "--out", str(tmp_path / "d"), "--frames", "1", "--size", "32x32"]) == 2
    assert "exists already" in capsys.readouterr().err


@pytest.mark.parametrize(
    "angles", [(0.0, 0.0, 0.0), (0.3, -1.2, 2.0), (math.pi, 0.1, -0.2), (0.0, math.pi, 0.0)]
)
def test_rotation_to_quaternion_round_trip(angles: tuple[float, float, float]) -> None:
    from causal_tune_ros.synthetic.camera import rotation_rpy

    rotation = rotation_rpy(*angles)
    x, y, z, w = rotation_to_quaternion(rotation)
    assert math.isclose(x * x + y * y + z * z + w * w, 1.0, rel_tol=1e-12)
    assert w >= 0
    assert np.allclose(_quat_matrix(x, y, z, w), rotation, atol=1e-12)


def _quat_matrix(x: float, y: float, z: float, w: float) -> np.ndarray:
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )
