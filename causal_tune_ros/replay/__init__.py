"""Offline replay of rosbag2 recordings through the segmentation pipeline, with no ROS install.

- :mod:`~causal_tune_ros.replay.replayer`: :class:`Replayer`, the read -> model -> write loop (progress on
  :mod:`causal_tune_ros.progress`; bags through :mod:`causal_tune_ros.bags`).
- :mod:`~causal_tune_ros.replay.video`: side-by-side MP4 (input | overlay).
- :mod:`~causal_tune_ros.replay.command`: ``causal-tune replay``.

>>> from causal_tune_ros.replay import ReplayOptions, replay_bag
>>> replay_bag(pipeline, "drive.mcap", "drive_seg.mcap", ReplayOptions(weather="auto"))  # doctest: +SKIP

:func:`replay_bag` processes one bag into one output bag that appears only when complete (written beside,
then renamed); :func:`plan_replay` runs every check that needs no model first.

Bags are read and written through :mod:`causal_tune_ros.bags` (re-exported here: ``BagReader``, ...).
Importing this package pulls in neither torch nor rclpy.
"""

from causal_tune_ros.bags import BagMessage, BagReader, BagWriter, open_bag
from causal_tune_ros.replay.replayer import (
    OUTPUT_NAMES,
    Replayer,
    ReplayOptions,
    ReplayPlan,
    ReplaySummary,
    TopicStats,
    is_camera_topic,
    output_topics,
    plan_replay,
    replay_bag,
)

__all__ = [
    "OUTPUT_NAMES",
    "BagMessage",
    "BagReader",
    "BagWriter",
    "ReplayOptions",
    "ReplayPlan",
    "ReplaySummary",
    "Replayer",
    "TopicStats",
    "is_camera_topic",
    "open_bag",
    "output_topics",
    "plan_replay",
    "replay_bag",
]
