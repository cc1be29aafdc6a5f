"""The shipped Fast DDS profile (config/fastdds_large_images.xml) loads and carries large images."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

PROFILE = Path(__file__).resolve().parents[2] / "config" / "fastdds_large_images.xml"
NS = "{http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles}"

# A 1.5 MB rgb8 image, 20 times, reliable QoS, in a fresh process that reads the profile at start-up.
ROUND_TRIP = textwrap.dedent(
    """
    import time, rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image
    rclpy.init()
    node = rclpy.create_node("fastdds_profile_check")
    qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    got = []
    node.create_subscription(Image, "big", lambda m: got.append(len(m.data)), qos)
    pub = node.create_publisher(Image, "big", qos)
    msg = Image(height=512, width=1024, encoding="rgb8", step=3072)
    msg.data = bytes(512 * 3072)
    deadline = time.monotonic() + 20
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    for _ in range(20):
        pub.publish(msg)
        rclpy.spin_once(node, timeout_sec=0.05)
    while len(got) < 20 and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    print("received", len(got), "sizes", set(got))
    """
)


def test_profile_is_valid_fastdds_xml() -> None:
    root = ET.parse(PROFILE).getroot()
    assert root.tag == f"{NS}profiles"
    kinds = {d.findtext(f"{NS}type") for d in root.iter(f"{NS}transport_descriptor")}
    assert kinds == {"SHM", "UDPv4"}
    period = root.find(f"{NS}data_writer/{NS}times/{NS}heartbeatPeriod")
    assert period is not None and int(period.findtext(f"{NS}sec")) == 0
    assert 0 < int(period.findtext(f"{NS}nanosec")) <= 200_000_000


@pytest.mark.ros
def test_large_images_pass_with_the_profile() -> None:
    env = dict(os.environ, FASTRTPS_DEFAULT_PROFILES_FILE=str(PROFILE))
    out = subprocess.run(
        [sys.executable, "-c", ROUND_TRIP], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "received 20 sizes {1572864}" in out.stdout, out.stdout + out.stderr
    assert "error" not in out.stderr.lower(), out.stderr
