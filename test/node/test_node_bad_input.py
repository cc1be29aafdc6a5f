"""Bad input never kills the node: each fault is reported in diagnostics and the next frame still works."""

from __future__ import annotations

import pytest
from sensor_msgs.msg import Image

from .node_support import make_compressed, make_image, sample_rgb

pytestmark = pytest.mark.ros

STAMP = 1_600_000_000 * 10**9
WARN = b"\x01"


def _bad_images() -> list[tuple[str, Image, str]]:
    good = make_image(sample_rgb(), "rgb8", 0)
    wrong_encoding = make_image(sample_rgb(), "rgb8", 0)
    wrong_encoding.encoding = "rgb9000"
    short = make_image(sample_rgb(), "rgb8", 0)
    short.data = bytes(good.data)[: good.step * good.height - 10]
    zero = Image(height=0, width=0, encoding="rgb8", step=0, data=b"")
    huge = Image(height=20000, width=20000, encoding="rgb8", step=60000, data=bytes(good.data))
    step_too_small = make_image(sample_rgb(), "rgb8", 0)
    step_too_small.step = 10
    return [
        ("wrong encoding", wrong_encoding, "unsupported image encoding"),
        ("data shorter than step*height", short, "expected step * height"),
        ("zero size", zero, "zero size"),
        ("20000x20000 header", huge, "exceeds max_pixels"),
        ("step shorter than a row", step_too_small, "shorter than one row"),
    ]


def test_bad_raw_images_are_reported_and_skipped(make_node) -> None:
    _, probe, _ = make_node("bad_raw")
    for i, (what, bad, reason) in enumerate(_bad_images()):
        bad_stamp, good_stamp = STAMP + 10 * i, STAMP + 10 * i + 1
        bad.header.stamp.sec, bad.header.stamp.nanosec = divmod(bad_stamp, 10**9)
        probe.image_pub.publish(bad)
        status = probe.wait_diagnostics(lambda v, s, r=reason: r in v["last_error"] and s.level == WARN)
        sec, nsec = divmod(bad_stamp, 10**9)
        assert f"{sec}.{nsec:09d}" in status.message, what  # the message names the bad frame
        probe.image_pub.publish(make_image(sample_rgb(), "rgb8", good_stamp))
        mask = probe.wait_for_stamp("class_mask", good_stamp)
        assert (mask.height, mask.width) == (48, 64), what
    values = probe.wait_diagnostics(lambda v, s: int(v["frames_failed"]) >= 5)
    assert values is not None
    # Once the faults stop, the status returns to OK.
    probe.wait_diagnostics(lambda v, s: s.level == b"\x00" and int(v["frames_processed"]) >= 5)


def test_bad_compressed_images_are_reported_and_skipped(make_node) -> None:
    _, probe, _ = make_node("bad_zip", input_transport="compressed")
    jpeg = make_compressed(sample_rgb(), "jpeg", 0)
    data = bytes(jpeg.data)
    corrupt = make_compressed(sample_rgb(), "jpeg", 0)
    corrupt.data = data[: len(data) // 2]  # truncated
    garbage = make_compressed(sample_rgb(), "jpeg", 0)
    garbage.data = b"\xff\xd8\xff" + bytes(range(256)) * 4
    # A valid JPEG header claiming 20000 x 20000 pixels: rejected before decoding.
    sof = data.find(b"\xff\xc0")
    huge = make_compressed(sample_rgb(), "jpeg", 0)
    huge.data = data[: sof + 5] + (20000).to_bytes(2, "big") * 2 + data[sof + 9 :]
    cases = [("truncated JPEG", corrupt, "corrupt JPEG"), ("garbage JPEG", garbage, "corrupt"),
             ("20000x20000 JPEG", huge, "exceeds max_pixels")]  # fmt: skip
    for i, (what, bad, reason) in enumerate(cases):
        bad.header.stamp.sec, bad.header.stamp.nanosec = divmod(STAMP + 100 + i, 10**9)
        probe.compressed_pub.publish(bad)
        probe.wait_diagnostics(lambda v, s, r=reason: r in v["last_error"] and s.level == WARN)
        good_stamp = STAMP + 200 + i
        probe.compressed_pub.publish(make_compressed(sample_rgb(), "jpeg", good_stamp))
        assert probe.wait_for_stamp("class_mask", good_stamp).width == 64, what


def test_nan_model_output_is_reported_and_node_survives(make_node, nan_checkpoint) -> None:
    node, probe, _ = make_node("nan", checkpoint=nan_checkpoint)
    for i in range(2):
        probe.image_pub.publish(make_image(sample_rgb(), "rgb8", STAMP + 300 + i))
        status = probe.wait_diagnostics(
            lambda v, s, n=i + 1: "non-finite" in v["last_error"] and int(v["frames_failed"]) >= n
        )
        assert status.level == WARN
    assert probe.count("class_mask") == 0  # garbage is never published
    assert node.core.active


def test_out_of_range_parameters_are_rejected_with_a_reason(make_node) -> None:
    node, probe, _ = make_node("bad_params")
    cases = {
        "overlay_alpha": (1.5, "overlay_alpha"),
        "qos__depth": (0, "qos.depth"),
        "weather__condition": ("hail", "weather.condition"),
        "weather__mode": ("sometimes", "weather.mode"),
        "weather__bands__snow__low": (0.9, "weather.bands.snow"),  # low above high
        "drivable__classes": (["road", "lava"], "lava"),
        "drivable__grid__resolution": (-1.0, "resolution"),
        "confidence_encoding": ("16UC1", "confidence_encoding"),
        "model__input_height": (100, "input_height"),  # not a multiple of 14
        "backend": ("onnxruntime", "cannot change while the model is loaded"),  # needs a restart
    }
    for name, (value, reason) in cases.items():
        (result,) = probe.set_parameters(**{name: value})
        assert not result.successful, name
        assert reason in result.reason, (name, result.reason)
    # Type mismatches are refused too (rclpy checks the declared type).
    (result,) = probe.set_parameters(overlay_alpha="opaque")
    assert not result.successful
    # The node kept its last good state and still works; a valid set goes through.
    assert node.get_parameter("overlay_alpha").value == 0.5
    assert node.get_parameter("weather.bands.snow.low").value == 0.2
    (ok,) = probe.set_parameters(overlay_alpha=0.8)
    assert ok.successful and node.core.settings.overlay_alpha == 0.8
    probe.image_pub.publish(make_image(sample_rgb(), "rgb8", STAMP + 400))
    assert probe.wait_for_stamp("class_mask", STAMP + 400).height == 48


def test_unavailable_backend_falls_back_to_eager_with_a_warning(make_node, capfd) -> None:
    from causal_tune_ros.backends import tensorrt_available

    if tensorrt_available():
        pytest.skip("TensorRT works here, so there is nothing to fall back from")
    _, probe, _ = make_node("fallback", backend="tensorrt")
    status = probe.wait_diagnostics(lambda v, s: v["backend"] == "eager" and "backend_warning" in v)
    assert status.level == WARN
    assert "falling back to eager" in {kv.key: kv.value for kv in status.values}["backend_warning"]
    probe.image_pub.publish(make_image(sample_rgb(), "rgb8", STAMP + 500))
    assert probe.wait_for_stamp("class_mask", STAMP + 500).width == 64
    # The backends' Python logging reaches the node's ROS logger (and so rosout / the console).
    assert "fallback.segmentation_node]: tensorrt backend" in capfd.readouterr().err
