"""REP-2003 QoS: outputs reach RELIABLE and BEST_EFFORT subscribers alike; inputs are best effort."""

from __future__ import annotations

import time

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from .node_support import LATCHED, OUTPUT_TYPES, make_camera_info, make_image, sample_rgb

pytestmark = pytest.mark.ros

STAMP = 1_720_000_000 * 10**9
BEST_EFFORT = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


def _subscribe_all(probe, qos: QoSProfile, received: dict[str, int], tag: str) -> None:
    """One subscription per output (images, grid, weather, diagnostics) with ``qos``, counting messages."""

    def counter(key: str):
        def count(msg) -> None:
            received[key] = received.get(key, 0) + 1

        return count

    for name, msg_type in OUTPUT_TYPES.items():
        probe.node.create_subscription(msg_type, f"{probe.target}/{name}", counter(f"{tag}:{name}"), qos)
    weather_qos = QoSProfile(depth=1, reliability=qos.reliability, durability=LATCHED.durability)
    probe.node.create_subscription(String, f"{probe.target}/weather", counter(f"{tag}:weather"), weather_qos)
    probe.node.create_subscription(DiagnosticArray, "/diagnostics", counter(f"{tag}:diagnostics"), qos)


def test_reliable_and_best_effort_subscribers_receive_every_output(make_node) -> None:
    # The shipped QoS defaults (the other node tests make the input reliable for lossless loopback).
    _, probe, _ = make_node("qos", qos__reliability="best_effort")
    received: dict[str, int] = {}
    _subscribe_all(probe, RELIABLE, received, "reliable")
    _subscribe_all(probe, BEST_EFFORT, received, "best_effort")
    names = [*OUTPUT_TYPES, "weather", "diagnostics"]
    expected = {f"{tag}:{name}" for tag in ("reliable", "best_effort") for name in names}
    rgb = sample_rgb()
    deadline = time.monotonic() + 30.0
    i = 0
    while not expected <= set(received) and time.monotonic() < deadline:
        probe.info_pub.publish(make_camera_info())
        probe.image_pub.publish(make_image(rgb, "rgb8", STAMP + i))
        i += 1
        time.sleep(0.3)
    assert expected <= set(received), f"nothing arrived on {sorted(expected - set(received))}"


def test_input_best_effort_and_output_best_effort_option(make_node) -> None:
    _, probe, _ = make_node("qos_be", qos__reliability="best_effort", qos__output_reliability="best_effort")
    inputs = probe.node.get_subscriptions_info_by_topic(f"{probe.ns}/image")
    assert [i.qos_profile.reliability for i in inputs] == [ReliabilityPolicy.BEST_EFFORT]
    for name in OUTPUT_TYPES:
        (info,) = probe.node.get_publishers_info_by_topic(f"{probe.target}/{name}")
        assert info.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT, name
    # A best-effort subscriber still receives everything on that setting.
    received: dict[str, int] = {}
    _subscribe_all(probe, BEST_EFFORT, received, "best_effort")
    deadline = time.monotonic() + 30.0
    i = 0
    while not {f"best_effort:{n}" for n in OUTPUT_TYPES} <= set(received) and time.monotonic() < deadline:
        probe.info_pub.publish(make_camera_info())
        probe.image_pub.publish(make_image(sample_rgb(), "rgb8", STAMP + 100 + i))
        i += 1
        time.sleep(0.3)
    assert {f"best_effort:{n}" for n in OUTPUT_TYPES} <= set(received)
