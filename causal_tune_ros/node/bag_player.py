"""Play a recorded drive to a running segmentation node on live topics (the demo's ``--ros`` mode)."""

from __future__ import annotations

import importlib
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from causal_tune_ros.errors import ConfigError


def play_bag_to_node(
    bag: Path, rate: float, loop: bool, node_process: subprocess.Popen, warmup: float = 60.0
) -> dict[str, int]:
    """Publish ``bag`` on live topics and count what the segmentation node publishes back.

    Like ``ros2 bag play --clock``: every message goes out as its recorded CDR bytes at its recorded time
    (scaled by ``rate``), with ``/clock`` beside it for a node running with ``use_sim_time``.

    Args:
        bag: A rosbag2 folder or file with a ``/camera/image_raw`` topic.
        rate: Playback speed factor (> 0).
        loop: Play again from the start until Ctrl-C.
        node_process: The node's process, watched so that a node that dies is reported at once.
        warmup: Seconds to wait for the node to subscribe (model loading).

    Returns:
        Messages received per output topic of ``/segmentation_node``.

    Raises:
        ConfigError: Bad rate, or the node exited or never subscribed.
    """
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import Image
    from std_msgs.msg import String

    from causal_tune_ros.bags import BagReader

    if rate <= 0:
        raise ConfigError(f"--rate must be positive, got {rate}")
    # A private context: the caller (a test, a larger app) may already own the global one.
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("causal_tune_demo_player", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    counts: dict[str, int] = {}
    try:
        with BagReader(bag) as reader:
            messages = list(reader.messages())
            topics = reader.topics
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        latched = QoSProfile(
            depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
        )
        publishers = {}
        for topic, msgtype in topics.items():
            pkg, _, name = msgtype.split("/")
            try:
                msg_cls = getattr(importlib.import_module(f"{pkg}.msg"), name)
            except (ImportError, AttributeError):
                # e.g. tf2_msgs has no PyPI wheel: the node works without /tf_static (fixed extrinsics).
                print(f"demo --ros: not playing {topic}: ROS message package {pkg} is not installed")
                continue
            qos = latched if topic in ("/tf_static", "/weather") else reliable
            publishers[topic] = node.create_publisher(msg_cls, topic, qos)
        messages = [m for m in messages if m.topic in publishers]
        clock = node.create_publisher(Clock, "/clock", 10)

        def counter(topic: str) -> Callable[[Any], None]:
            def callback(_: Any) -> None:
                counts[topic] = counts.get(topic, 0) + 1

            return callback

        subs = []
        for name, cls in (
            ("class_mask", Image),
            ("overlay", Image),
            ("drivable_mask", Image),
            ("weather", String),
        ):
            topic = f"/segmentation_node/{name}"
            counts[topic] = 0
            subs.append(node.create_subscription(cls, topic, counter(topic), reliable))

        # Wait until the node subscribes to the camera (model loading takes a few seconds).
        deadline = time.monotonic() + warmup
        image_pub = publishers["/camera/image_raw"]
        while image_pub.get_subscription_count() == 0:
            if node_process.poll() is not None:
                raise ConfigError(f"the segmentation node exited with code {node_process.returncode}")
            if time.monotonic() > deadline:
                raise ConfigError(f"the segmentation node did not subscribe within {warmup:.0f} s")
            executor.spin_once(timeout_sec=0.1)
        print(f"demo --ros: playing {bag.name} ({len(messages)} messages); Ctrl-C to stop")
        while True:
            start_wall = time.monotonic()
            start_bag = messages[0].timestamp
            for m in messages:
                due = start_wall + (m.timestamp - start_bag) / 1e9 / rate
                while (left := due - time.monotonic()) > 0:
                    executor.spin_once(timeout_sec=min(left, 0.05))
                sec, nsec = divmod(m.timestamp, 1_000_000_000)
                stamp = Clock()
                stamp.clock.sec, stamp.clock.nanosec = int(sec), int(nsec)
                clock.publish(stamp)
                publishers[m.topic].publish(bytes(m.data))  # raw CDR, exactly as recorded
            end = time.monotonic() + 2.0  # let the last frames come back
            while time.monotonic() < end:
                executor.spin_once(timeout_sec=0.05)
            if not loop:
                break
    except KeyboardInterrupt:
        pass
    finally:
        executor.shutdown()
        node.destroy_node()
        context.try_shutdown()
    return counts
