"""Everything a replay checks before any model work: topics, output paths, storage, expected frames."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from causal_tune_ros.bags import (
    BagReader,
    bag_paths,
    check_not_overlapping,
    not_a_bag_reason,
    storage_for,
)
from causal_tune_ros.errors import BagError
from causal_tune_ros.replay.options import ReplayOptions, check_options
from causal_tune_ros.replay.reading import check_weather_topic
from causal_tune_ros.replay.topics import is_camera_topic, output_topics
from causal_tune_ros.replay.video import check_video_target, video_path_for_topic


def select_image_topics(bag: BagReader, options: ReplayOptions) -> list[str]:
    """The image topics a replay segments (``options.topics``, else every camera topic).

    Raises:
        BagError: A requested topic is missing, or there is no camera topic.
    """
    image_topics = bag.image_topics()
    if options.topics:
        unknown = [t for t in options.topics if t not in image_topics]
        if unknown:
            raise BagError(
                f"{bag.path}: no image topic {', '.join(unknown)}; "
                f"image topics in the bag: {', '.join(image_topics) or '(none)'}"
            )
        image_topics = [t for t in image_topics if t in set(options.topics)]
    else:
        image_topics = [t for t in image_topics if is_camera_topic(t)]
    if not image_topics:
        raise BagError(
            f"{bag.path} has no camera topic (sensor_msgs/Image or CompressedImage); "
            f"image topics: {', '.join(bag.image_topics()) or '(none)'}"
        )
    return image_topics


@dataclass
class ReplayPlan:
    """What a replay will read and write, decided before any model work (see :func:`plan_replay`).

    Attributes:
        image_topics: Input image topics to segment.
        outputs: Per image topic, its output topic names.
        copied_topics: Input topics copied to the output (with ``copy_input``).
        dropped: Input topics that are this run's output topics (an earlier replay's results) ->
            message count; they are not copied.
        storage: Output storage plugin.
        total: Frames expected to be processed.
        videos: Per image topic, its video path (with ``video``).
        protected: Resolved paths of the input bag, which no output may touch.
    """

    image_topics: list[str]
    outputs: dict[str, dict[str, str]]
    copied_topics: list[str]
    dropped: dict[str, int]
    storage: str
    total: int
    videos: dict[str, Path]
    protected: list[Path]


def plan_replay(bag: BagReader, out_path: str | Path, options: ReplayOptions) -> ReplayPlan:
    """Validate a replay against its input and output paths, without any model work.

    Checks the options, the requested image topics and the ``--weather topic`` topic, and that no output
    (bag or video) is, contains or lies inside the input (symlinks followed), and that an existing output
    may be replaced. ``causal-tune replay`` calls it before loading or exporting the model, and
    :meth:`Replayer.run` again before writing.

    Args:
        bag: The open input bag.
        out_path: Output bag folder.
        options: The replay options.

    Returns:
        The :class:`ReplayPlan`.

    Raises:
        BagError: Missing topics, no camera topic, an unsafe or existing output path.
        ConfigError: Bad options.
    """
    check_options(options)
    out_path = Path(out_path)
    in_path = bag.path
    image_topics = select_image_topics(bag, options)
    if options.weather == "topic":
        check_weather_topic(bag, options.weather_topic)
    protected = bag_paths(in_path)
    check_not_overlapping(out_path, protected, "output bag")
    if os.path.lexists(out_path):
        if not options.overwrite:
            raise BagError(f"output bag {out_path} exists already (pass --overwrite to replace it)")
        reason = not_a_bag_reason(out_path)
        if reason is not None:
            raise BagError(f"{out_path} exists and is not a rosbag2 bag ({reason}); refusing to replace it")
    outputs = output_topics(image_topics)
    derived = {name for names in outputs.values() for name in names.values()}
    dropped = {t: bag.count(t) for t in bag.topics if t in derived}
    copied = [t for t in bag.topics if t not in derived]
    videos: dict[str, Path] = {}
    if options.video:
        for topic in image_topics:
            path = video_path_for_topic(options.video, topic, len(image_topics))
            check_not_overlapping(path, protected, "video")
            check_not_overlapping(path, [out_path], "video")
            check_video_target(path, options.overwrite)
            videos[topic] = path
    total = sum(-(-bag.count(t) // options.every) for t in image_topics)
    if options.max_frames:
        total = min(total, options.max_frames)
    return ReplayPlan(
        image_topics=image_topics,
        outputs=outputs,
        copied_topics=copied,
        dropped=dropped,
        storage=storage_for(out_path, options.storage, like=in_path),
        total=total,
        videos=videos,
        protected=protected,
    )
