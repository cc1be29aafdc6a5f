"""Round trip through the real node: every input encoding and transport in, every output back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from .node_support import (
    NS_PREFIX,
    Probe,
    Spinner,
    image_array,
    make_camera_info,
    make_compressed,
    make_image,
    sample_rgb,
    stamp_of,
)

pytestmark = pytest.mark.ros

H, W = 48, 64
BASE_STAMP = 1_700_000_000 * 10**9


def _check_outputs(probe: Probe, stamp: int, frame_id: str, shape: tuple[int, int]) -> np.ndarray:
    """Every image output for ``stamp`` has the input's size, stamp and frame_id; returns the class mask."""
    mask_msg = probe.wait_for_stamp("class_mask", stamp)
    assert (mask_msg.height, mask_msg.width, mask_msg.encoding) == (*shape, "mono8")
    assert mask_msg.header.frame_id == frame_id
    mask = image_array(mask_msg)
    assert mask.max() < 19  # train ids of the 19 classes
    overlay = probe.wait_for_stamp("overlay", stamp)
    assert (overlay.height, overlay.width, overlay.encoding) == (*shape, "rgb8")
    assert overlay.header.frame_id == frame_id
    drivable = probe.wait_for_stamp("drivable_mask", stamp)
    assert drivable.header.frame_id == frame_id
    # The drivable mask is exactly "class == road (train id 0)".
    np.testing.assert_array_equal(image_array(drivable), np.where(mask == 0, 255, 0))
    confidence = probe.wait_for_stamp("confidence", stamp)
    assert (confidence.height, confidence.width, confidence.encoding) == (*shape, "mono8")
    return mask


def test_raw_encodings_round_trip(make_node) -> None:
    _, probe, _ = make_node("raw")
    rgb = sample_rgb(H, W)
    probe.info_pub.publish(make_camera_info(W, H))
    cases = [("rgb8", 0), ("bgr8", 0), ("mono8", 0), ("bayer_rggb8", 0), ("rgb8", 13)]
    masks = {}
    for i, (encoding, pad) in enumerate(cases):
        stamp = BASE_STAMP + i
        msg = make_image(rgb, encoding, stamp, frame_id=f"cam_{i}", pad=pad)
        probe.info_pub.publish(make_camera_info(W, H))
        probe.image_pub.publish(msg)
        masks[(encoding, pad)] = _check_outputs(probe, stamp, f"cam_{i}", (H, W))
    # rgb8 and bgr8 of the same picture are the same picture; padding changes nothing either.
    np.testing.assert_array_equal(masks[("rgb8", 0)], masks[("bgr8", 0)])
    np.testing.assert_array_equal(masks[("rgb8", 0)], masks[("rgb8", 13)])

    grid = probe.wait_for("drivable_grid")
    assert grid.header.frame_id == "base_link"
    assert (grid.info.width, grid.info.height) == (300, 200)  # 30 m x 20 m at 0.1 m
    cells = np.asarray(grid.data, dtype=np.int8)
    assert set(np.unique(cells)) <= {-1, 0, 100}
    assert (cells != -1).any(), "a camera pitched down must see part of the ground"
    assert grid.header.stamp.sec * 10**9 + grid.header.stamp.nanosec >= BASE_STAMP

    # A larger, non-multiple-of-14 frame comes back at its own size too.
    big = make_image(sample_rgb(75, 133, seed=3), "rgb8", BASE_STAMP + 99, frame_id="big")
    probe.image_pub.publish(big)
    _check_outputs(probe, BASE_STAMP + 99, "big", (75, 133))


def test_compressed_round_trip(make_node) -> None:
    _, probe, _ = make_node("compressed", input_transport="compressed", confidence_encoding="32FC1")
    rgb = sample_rgb(H, W, seed=1)
    for i, fmt in enumerate(["jpeg", "png", "rgb8; jpeg compressed bgr8"]):
        stamp = BASE_STAMP + 1000 + i
        probe.compressed_pub.publish(make_compressed(rgb, "jpeg" if "jpeg" in fmt else fmt, stamp, "zip_cam"))
        mask = probe.wait_for_stamp("class_mask", stamp)
        assert (mask.height, mask.width, mask.header.frame_id) == (H, W, "zip_cam")
        conf = probe.wait_for_stamp("confidence", stamp)
        assert conf.encoding == "32FC1"
        values = image_array(conf)
        assert values.shape == (H, W) and np.all((values > 0) & (values <= 1.0 + 1e-6))


def test_subprocess_with_params_file(ros_context, tiny_checkpoint: Path, tmp_path: Path) -> None:
    """The console entry point with --ros-args --params-file and remapping, stopped with SIGTERM."""
    from rclpy.node import Node

    from causal_tune_ros.node.parameters import default_values

    params = {
        "model": {"checkpoint": str(tiny_checkpoint), "input_height": 56, "input_width": 112},
        "backend": "eager",
        "device": "cpu",
        "cpu_threads": 1,
        "qos": {"reliability": "reliable"},
        "diagnostics": {"period": 0.2},
    }
    assert "model.checkpoint" in default_values()
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump({"/**/segmentation_node": {"ros__parameters": params}}))
    ns = f"{NS_PREFIX}/sub"
    cmd = [
        sys.executable, "-m", "causal_tune_ros.node.segmentation_node",
        "--ros-args", "--params-file", str(params_file),
        "-r", f"__ns:={ns}", "-r", f"image:={ns}/camera/image_raw",
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    probe_node = Node("probe_sub", namespace=ns)
    probe = Probe(probe_node, ns)
    remapped = probe_node.create_publisher(
        type(make_image(sample_rgb(), "rgb8", 0)), f"{ns}/camera/image_raw", probe.image_pub.qos_profile
    )
    spinner = Spinner(probe_node)
    try:
        deadline = time.monotonic() + 60
        while remapped.get_subscription_count() == 0:
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "subprocess node never subscribed"
            time.sleep(0.1)
        stamp = BASE_STAMP + 5000
        # Discovery of our subscriptions by the other process may lag its first publish: resend.
        for _ in range(100):
            remapped.publish(make_image(sample_rgb(), "rgb8", stamp, frame_id="sub_cam"))
            try:
                mask = probe.wait_for_stamp("class_mask", stamp, timeout=0.5)
                break
            except AssertionError:
                continue
        else:
            raise AssertionError("no class mask from the subprocess node")
        assert (mask.height, mask.width, mask.header.frame_id) == (H, W, "sub_cam")
        status = probe.wait_diagnostics(lambda v, s: v["backend"] == "eager" and v["model_input"] == "56x112")
        assert status.level == b"\x00"
    finally:
        proc.send_signal(signal.SIGTERM)  # what process managers (and `causal-tune demo --ros`) send
        try:
            out = proc.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            proc.kill()
            out = proc.communicate()[0]
        spinner.stop()
        probe_node.destroy_node()
    assert proc.returncode == 0, out
    assert "model ready" in out


def test_camera_info_intrinsics_are_scaled_to_the_image() -> None:
    from causal_tune_ros.node.core import _intrinsics_for

    info = make_camera_info(128, 96)  # calibrated at twice the published resolution
    K = _intrinsics_for(info, (48, 64))
    np.testing.assert_allclose(K, [[64, 0, 32], [0, 64, 24], [0, 0, 1]])
    info.k = [0.0] * 9  # rectified streams may fill only P
    info.p = [100.0, 0, 60, 0, 0, 100.0, 40, 0, 0, 0, 1, 0]
    np.testing.assert_allclose(_intrinsics_for(info, (96, 128)), [[100, 0, 60], [0, 100, 40], [0, 0, 1]])


def test_grid_falls_back_to_parameters_without_tf(make_node) -> None:
    from std_msgs.msg import Header

    from causal_tune_ros.node.ground import GroundPoseSource, pose_from_mount, tf_available

    node, probe, _ = make_node("tf", drivable__use_tf=True)
    if tf_available():
        pytest.skip("tf2_ros is installed here; the fallback is for machines without it")
    mount = node.core.settings.camera
    pose, note = GroundPoseSource(node).pose(mount, True, "base_link", Header(frame_id="cam"))
    assert pose == pose_from_mount(mount) and "tf2_ros is not installed" in note
    probe.info_pub.publish(make_camera_info(W, H))
    time.sleep(0.2)
    probe.image_pub.publish(make_image(sample_rgb(H, W), "rgb8", BASE_STAMP + 7000))
    grid = probe.wait_for("drivable_grid", lambda m: m.header.stamp.nanosec == 7000)
    assert (np.asarray(grid.data) != -1).any()


def test_live_output_parameters_apply_without_reload(make_node) -> None:
    from causal_tune_ros.classes import load_classes

    node, probe, _ = make_node("live")
    backend = node.core.pipeline.backend
    rgb = sample_rgb(H, W, seed=4)
    results = probe.set_parameters(drivable__classes=list(load_classes().names), overlay_alpha=0.0)
    assert all(r.successful for r in results)
    probe.image_pub.publish(make_image(rgb, "rgb8", BASE_STAMP + 8000))
    assert (image_array(probe.wait_for_stamp("drivable_mask", BASE_STAMP + 8000)) == 255).all()
    np.testing.assert_array_equal(image_array(probe.wait_for_stamp("overlay", BASE_STAMP + 8000)), rgb)
    (result,) = probe.set_parameters(publish__overlay=False)
    assert result.successful
    probe.image_pub.publish(make_image(rgb, "rgb8", BASE_STAMP + 8001))
    probe.wait_for_stamp("class_mask", BASE_STAMP + 8001)
    time.sleep(0.3)
    assert all(stamp_of(m) != BASE_STAMP + 8001 for m in probe.messages["overlay"])
    assert node.core.pipeline.backend is backend


def test_confidence_encodings() -> None:
    from causal_tune_ros.node.outputs import confidence_image

    conf = np.array([[0.0, 0.25, 0.5, 1.0]], np.float32)
    np.testing.assert_array_equal(confidence_image(conf, "mono8"), [[0, 64, 128, 255]])
    assert confidence_image(conf, "32FC1").dtype == np.float32


def test_onnxruntime_backend_and_backend_logs_reach_the_node_logger(make_node, tmp_path, capfd) -> None:
    pytest.importorskip("onnxruntime")
    _, probe, _ = make_node("onnx", backend="onnxruntime", engine__cache_dir=str(tmp_path))
    probe.image_pub.publish(make_image(sample_rgb(H, W), "rgb8", BASE_STAMP + 9000))
    assert probe.wait_for_stamp("class_mask", BASE_STAMP + 9000).width == W
    status = probe.wait_diagnostics(lambda v, s: v["backend"] == "onnxruntime")
    assert status.level == b"\x00"
    # The backend's Python logging (export / engine build progress) comes out as the node's ROS log.
    err = capfd.readouterr().err
    assert "onnx.segmentation_node]: exporting ONNX graph" in err, err[-2000:]
