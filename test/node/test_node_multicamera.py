"""The multi-camera node: per-camera topics and headers, one batched forward, a late camera, diagnostics."""

from __future__ import annotations

import numpy as np
import pytest

from .node_support import (
    diag_values,
    image_array,
    make_camera_info,
    make_image,
    sample_rgb,
    stamp_of,
)

pytestmark = pytest.mark.ros

STAMP = 1_700_000_000 * 10**9
CAMERAS = ["front", "rear"]


def test_each_camera_gets_its_own_outputs_with_its_input_header(make_node) -> None:
    # A generous bound: both frames are published back to back, so they meet in one batch.
    _, probe, _ = make_node("multi", cameras=CAMERAS, cameras_max_wait_ms=1000.0)
    # Not the single-camera topics: nothing listens on image, nothing is published on ~/class_mask.
    assert probe.image_pub.get_subscription_count() == 0
    assert probe.node.count_publishers(f"{probe.target}/class_mask") == 0
    sizes = {"front": (48, 64), "rear": (60, 80)}  # cameras may differ in resolution
    for camera, (h, w) in sizes.items():
        probe.camera_info_pubs[camera].publish(make_camera_info(w, h, frame_id=f"{camera}_optical"))
    probe.wait_camera_diagnostics("rear", lambda v, s: v["frames_processed"] == "0")
    frames = {}
    for i, (camera, (h, w)) in enumerate(sizes.items()):
        frames[camera] = make_image(sample_rgb(h, w, seed=i), "rgb8", STAMP + i, frame_id=f"{camera}_optical")
        probe.camera_pubs[camera].publish(frames[camera])

    for camera, (h, w) in sizes.items():
        sent = frames[camera]
        for output in ("class_mask", "overlay", "confidence", "drivable_mask"):
            msg = probe.wait_for_stamp(f"{camera}/{output}", stamp_of(sent))
            assert (msg.height, msg.width) == (h, w), (camera, output)
            assert msg.header.frame_id == sent.header.frame_id, (camera, output)
        grid = probe.wait_for_stamp(f"{camera}/drivable_grid", stamp_of(sent))
        assert grid.header.frame_id == "base_link"
    assert probe.count("class_mask") == 0

    # One forward for both cameras; each camera's own status counts its frame.
    status = probe.wait_diagnostics(lambda v, s: v["frames_processed"] == "2")
    values = diag_values(status)
    assert values["cameras"] == "front,rear" and values["batch_size"] == "2"
    assert values["forwards"] == "1"
    for camera in CAMERAS:
        cam = diag_values(probe.wait_camera_diagnostics(camera, lambda v, s: v["frames_processed"] == "1"))
        assert cam["camera"] == camera and cam["image_topic"] == f"{probe.ns}/{camera}/image"
        assert cam["frames_failed"] == "0" and cam["frames_missed"] == "0"
        assert float(cam["latency_p50_ms"]) >= 0.0


def test_a_late_camera_does_not_hold_the_others_back(make_node) -> None:
    _, probe, _ = make_node("multi_late", cameras=CAMERAS, cameras_max_wait_ms=50.0)
    rgb = sample_rgb()
    # The rear camera is silent: the front camera's frames still come out, one batch each.
    for i in range(3):
        probe.camera_pubs["front"].publish(make_image(rgb, "rgb8", STAMP + i))
        probe.wait_for_stamp("front/class_mask", STAMP + i)
    assert probe.count("rear/class_mask") == 0  # the filled place publishes nothing
    rear = probe.wait_camera_diagnostics("rear", lambda v, s: int(v["frames_missed"]) >= 3)
    assert diag_values(rear)["frames_processed"] == "0"
    front = probe.wait_camera_diagnostics("front", lambda v, s: v["frames_processed"] == "3")
    assert diag_values(front)["frames_missed"] == "0"
    # When the late camera sends, it is processed too; a bad frame of one camera is its own fault.
    probe.camera_pubs["rear"].publish(make_image(rgb, "rgb8", STAMP + 10))
    assert probe.wait_for_stamp("rear/class_mask", STAMP + 10).width == 64
    bad = make_image(rgb, "rgb8", STAMP + 11)
    bad.encoding = "rgb9000"
    probe.camera_pubs["rear"].publish(bad)
    rear = probe.wait_camera_diagnostics("rear", lambda v, s: v["frames_failed"] == "1")
    assert "camera rear" in diag_values(rear)["last_error"]
    front = diag_values(probe.wait_camera_diagnostics("front", lambda v, s: True))
    assert front["frames_failed"] == "0"


def test_two_camera_masks_equal_single_camera_masks(make_node) -> None:
    _, single, _ = make_node("mask_single")
    _, multi, _ = make_node("mask_multi", cameras=CAMERAS, cameras_max_wait_ms=1000.0)
    images = [sample_rgb(48, 64, seed=3), sample_rgb(60, 80, seed=4)]
    expected = []
    for i, rgb in enumerate(images):
        single.image_pub.publish(make_image(rgb, "rgb8", STAMP + 20 + i))
        expected.append(image_array(single.wait_for_stamp("class_mask", STAMP + 20 + i)))
    for camera, rgb in zip(CAMERAS, images, strict=True):
        multi.camera_pubs[camera].publish(make_image(rgb, "rgb8", STAMP + 30))
    for camera, mask in zip(CAMERAS, expected, strict=True):
        got = image_array(multi.wait_for_stamp(f"{camera}/class_mask", STAMP + 30))
        np.testing.assert_array_equal(got, mask)
    assert len(np.unique(np.concatenate([m.ravel() for m in expected]))) > 1  # not a trivial mask
