"""Offline replay of rosbag2 recordings through the segmentation pipeline, with no ROS install.

- :mod:`~causal_tune_ros.replay.bag_io`: open / iterate / write bags through ``rosbags`` (CDR, Jazzy types);
  every failure is a :class:`~causal_tune_ros.errors.BagError`.
- :mod:`~causal_tune_ros.replay.replayer`: :class:`Replayer`, the read -> model -> write loop.
- :mod:`~causal_tune_ros.replay.progress`: progress bar on a terminal, log lines otherwise.
- :mod:`~causal_tune_ros.replay.video`: side-by-side MP4 (input | overlay).
- :mod:`~causal_tune_ros.replay.command`: ``causal-tune replay``.

>>> from causal_tune_ros.replay import Replayer, ReplayOptions
>>> Replayer(pipeline, ReplayOptions(weather="auto")).run("drive.mcap", "drive_seg.mcap")  # doctest: +SKIP

Importing this package pulls in neither torch nor rclpy.
"""

from causal_tune_ros.replay.bag_io import BagMessage, BagReader, BagWriter, open_bag
from causal_tune_ros.replay.replayer import (
    OUTPUT_NAMES,
    Replayer,
    ReplayOptions,
    ReplaySummary,
    TopicStats,
    is_camera_topic,
    output_topics,
)

__all__ = [
    "OUTPUT_NAMES",
    "BagMessage",
    "BagReader",
    "BagWriter",
    "ReplayOptions",
    "ReplaySummary",
    "Replayer",
    "TopicStats",
    "is_camera_topic",
    "open_bag",
    "output_topics",
]
