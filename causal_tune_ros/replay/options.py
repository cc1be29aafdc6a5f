"""What to replay and how: :class:`ReplayOptions` and the checks that need no bag."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from causal_tune_ros.bags import BAG_VERSIONS, DEFAULT_BAG_VERSION
from causal_tune_ros.band import Band
from causal_tune_ros.errors import ConfigError
from causal_tune_ros.weather import CONDITIONS, DEFAULT_MIN_SECONDS

#: Seconds of bag time a camera batch waits for the other cameras (half a frame at 10 Hz).
DEFAULT_BATCH_WAIT = 0.05


@dataclass
class ReplayOptions:
    """What to replay and how.

    Attributes:
        topics: Image topics to process (``None``: every Image / CompressedImage camera topic, see
            :func:`is_camera_topic`).
        weather: ``"auto"`` (classify each frame, per camera, with hysteresis in seconds of the frames'
            header stamps, see ``weather_min_seconds``), ``"topic"`` (the latest
            std_msgs/String on ``weather_topic`` in the input bag) or a condition name (fixed).
        weather_topic: Input topic for ``weather="topic"``.
        weather_every: With ``weather="auto"``, classify every N-th frame of a camera (1 = every frame,
            as the node's default ``weather.auto.every_n_frames``; the statistics cost ~2 ms a frame).
        weather_min_seconds: With ``weather="auto"``, seconds of message time a new condition must hold
            before it is applied (the node's ``weather.auto.min_seconds``).
        band: Force this band on every frame (the condition is still classified and written).
        max_frames: Stop after this many processed frames (the output bag ends there).
        every: Process every N-th frame of each topic; the others are only copied.
        video: Side-by-side MP4 path (one file per camera, suffixed with the topic when several).
        video_fps: Video frame rate (``None``: the camera's rate in the bag, divided by ``every``).
        overlay: Write the ``overlay`` topic (the video needs the overlay either way).
        copy_input: Copy every input message into the output bag.
        storage: Output storage ``mcap`` / ``sqlite3`` (``None``: from the output suffix, else as the input).
        overwrite: Replace an existing output bag (only a rosbag2 bag) and video (only an MP4).
        bag_version: rosbag2 metadata version of the output: 8 (default; ROS 2 Humble and Jazzy read it)
            or 9 (Jazzy).
        batch_cameras: Run the frames of the replayed cameras that arrive close together in one forward
            pass (batch size = number of cameras, static; see :mod:`~causal_tune_ros.replay.batching`).
            Needs a pipeline with ``process_batch``.
        batch_wait: With ``batch_cameras``: seconds of bag time a batch waits for the other cameras after
            its first frame; a late or missing camera holds the others back no longer than this.
        progress: Show progress (bar on a terminal, log lines otherwise).
        threaded: Overlap reading and writing with the model in background threads (default). ``False``
            runs the stages one after the other in a single worker thread (for comparison in
            ``bench/replay_throughput.py``; on a 2-core machine under heavy load it can be the faster).
    """

    topics: Sequence[str] | None = None
    weather: str = "auto"
    weather_topic: str = "/weather"
    weather_every: int = 1
    weather_min_seconds: float = DEFAULT_MIN_SECONDS
    band: Band | None = None
    max_frames: int | None = None
    every: int = 1
    video: str | Path | None = None
    video_fps: float | None = None
    overlay: bool = True
    copy_input: bool = True
    storage: str | None = None
    overwrite: bool = False
    bag_version: int = DEFAULT_BAG_VERSION
    batch_cameras: bool = False
    batch_wait: float = DEFAULT_BATCH_WAIT
    progress: bool = True
    threaded: bool = True


def check_options(options: ReplayOptions) -> None:
    """Check the option values that need no bag.

    Raises:
        ConfigError: An out-of-range count, an unknown weather mode or bag version.
    """
    if options.every < 1:
        raise ConfigError(f"--every must be >= 1, got {options.every}")
    if options.weather_every < 1:
        raise ConfigError(f"--weather-every must be >= 1, got {options.weather_every}")
    if options.max_frames is not None and options.max_frames < 1:
        raise ConfigError(f"--max-frames must be >= 1, got {options.max_frames}")
    if not 0 <= options.batch_wait < float("inf"):
        raise ConfigError(f"--batch-wait must be >= 0 seconds, got {options.batch_wait}")
    if not options.weather_min_seconds >= 0:
        raise ConfigError(f"--weather-min-seconds must be >= 0, got {options.weather_min_seconds}")
    if options.weather not in ("auto", "topic", *CONDITIONS):
        raise ConfigError(
            f"unknown weather {options.weather!r}; expected auto, topic or one of {', '.join(CONDITIONS)}"
        )
    if options.bag_version not in BAG_VERSIONS:
        raise ConfigError(
            f"--bag-version must be one of {', '.join(map(str, BAG_VERSIONS))}, got {options.bag_version}"
        )
