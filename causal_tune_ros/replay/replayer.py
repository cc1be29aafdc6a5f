"""The offline replay loop: bag in -> segmentation outputs -> bag out.

Three stages per frame:

    read       raw message -> deserialise -> decode to RGB -> pick the weather band
    model      SegmentationPipeline.process
    write      copy the input messages raw -> build + serialise outputs -> write -> video -> progress

With I/O threads (``ReplayOptions.threaded``, the default) reading runs in the calling thread, the model
and the writer in their own threads, linked by small bounded queues (one item per frame, memory stays
flat on long bags): PyTorch releases the GIL while it computes, so reading the next frame and writing the
previous one overlap the model (docs/PERFORMANCE.md). The model never runs on the main thread (see
:func:`~causal_tune_ros.worker_thread.run_in_worker`). Images are never copied on the way in (``rgb8``
data is viewed in place) and input messages are copied to the output bag as the raw CDR bytes they were
stored as.

Output topics per camera topic (see :func:`output_topics`): ``<ns>/class_mask`` (mono8 train ids),
``<ns>/overlay`` (rgb8), ``<ns>/drivable_mask`` (mono8, 255 drivable) and ``<ns>/weather``
(std_msgs/String, the condition whose band was used), each stamped with the input message's log time
and carrying its header (stamp and frame_id).

Frames that cannot be decoded (truncated data, corrupt JPEG, bad CDR) are skipped and counted; the
replay goes on.

Outputs (see :mod:`~causal_tune_ros.bags.writer` for the bag layout): every check that needs no model
(input opens, topics exist, output path is safe) runs in :func:`plan_replay`, before any model is loaded or
exported. The output bag and the video are written beside their final names and renamed into place only
when complete; an interrupted replay (Ctrl-C, SIGTERM, an error) leaves the previous output untouched and
keeps what it wrote as ``<out>.partial``. Messages of the input on this run's own output topics (the input
is itself a replay output) are dropped, counted and reported, never mixed with the new results.
"""

from __future__ import annotations

import bisect
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from causal_tune_ros.bags import (
    BAG_VERSIONS,
    DEFAULT_BAG_VERSION,
    IMAGE_TYPE,
    STRING_TYPE,
    BagMessage,
    BagReader,
    BagWriter,
    bag_paths,
    check_not_overlapping,
    deserialize,
    msg_class,
    not_a_bag_reason,
    stamp_to_ns,
)
from causal_tune_ros.band import Band
from causal_tune_ros.errors import BagError, CausalTuneError, ConfigError, ImageConversionError
from causal_tune_ros.limits import DEFAULT_MAX_IMAGE_PIXELS
from causal_tune_ros.replay.progress import Progress
from causal_tune_ros.replay.video import SideBySideVideo, check_video_target, video_path_for_topic
from causal_tune_ros.weather import CONDITIONS, DEFAULT_MIN_SECONDS
from causal_tune_ros.worker_thread import run_in_worker

LOG = logging.getLogger(__name__)

#: Output sub-topics written per camera topic, in this order.
OUTPUT_NAMES = ("class_mask", "overlay", "drivable_mask", "weather")

#: Image-name suffixes stripped to find a camera's namespace (``/cam/image_raw/compressed`` -> ``/cam``).
_TRANSPORT_SUFFIXES = ("compressed",)

_QUEUE_SIZE = 8  # frames in flight between stages: enough to hide jitter, small enough for 4K images
_MAX_BATCH = 256  # input messages carried by one item when no frame comes (e.g. a long lidar stretch)
_MAX_REASONS = 5  # skip reasons kept per topic for the summary


def camera_namespace(topic: str) -> str:
    """Namespace of a camera topic.

    ``/front/image_raw`` -> ``/front``; ``/front/image_raw/compressed`` -> ``/front``; ``/image`` -> ``""``.
    """
    parts = [p for p in topic.split("/") if p]
    if parts and parts[-1] in _TRANSPORT_SUFFIXES:
        parts = parts[:-1]
    parts = parts[:-1]
    return "/" + "/".join(parts) if parts else ""


#: Last name components of image topics that are not camera streams: our own outputs and label images.
NON_CAMERA_NAMES = frozenset({*OUTPUT_NAMES, "confidence", "ground_truth", "labels", "depth"})


def is_camera_topic(topic: str) -> bool:
    """Whether an image topic is a camera stream worth segmenting by default.

    Segmentation outputs (``.../class_mask``, ``.../overlay``, ...) and label or depth images
    (``.../ground_truth``, ``.../labels``, ``.../depth``) are images too, but segmenting them is
    meaningless (and a replayed bag would otherwise be segmented again); ``--topics`` still selects them.
    """
    parts = [p for p in topic.split("/") if p]
    if parts and parts[-1] in _TRANSPORT_SUFFIXES:
        parts = parts[:-1]
    return bool(parts) and parts[-1] not in NON_CAMERA_NAMES


def output_topics(image_topics: Sequence[str]) -> dict[str, dict[str, str]]:
    """Output topic names for each input image topic.

    Outputs go beside the camera (``<ns>/class_mask`` ...). When two input topics share a namespace
    (``/cam/image_raw`` and ``/cam/image_rect``) each uses its full topic name as namespace instead, so
    no two inputs ever write to the same output topic.

    Args:
        image_topics: Input image topics.

    Returns:
        ``{input_topic: {"class_mask": ..., "overlay": ..., "drivable_mask": ..., "weather": ...}}``.
    """
    namespaces = {t: camera_namespace(t) for t in image_topics}
    shared = {ns for ns in namespaces.values() if list(namespaces.values()).count(ns) > 1}
    result = {}
    for topic, ns in namespaces.items():
        base = topic.rstrip("/") if ns in shared else ns
        result[topic] = {name: f"{base}/{name}" for name in OUTPUT_NAMES}
    return result


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
    progress: bool = True
    threaded: bool = True


@dataclass
class TopicStats:
    """Per input topic counts.

    Attributes:
        frames: Image messages seen (including skipped and ``every``-thinned ones).
        processed: Frames run through the model and written.
        corrupt: Frames skipped because they could not be decoded.
        failed: Frames the model could not process (e.g. non-finite output).
        reasons: The first few skip reasons, ``"t=<ns>: <reason>"``.
        conditions: How many frames were processed under each weather condition.
    """

    frames: int = 0
    processed: int = 0
    corrupt: int = 0
    failed: int = 0
    reasons: list[str] = field(default_factory=list)
    conditions: dict[str, int] = field(default_factory=dict)

    def note(self, stamp: int, reason: str) -> None:
        """Keep a skip reason (the first few only)."""
        if len(self.reasons) < _MAX_REASONS:
            self.reasons.append(f"t={stamp}: {reason}")


@dataclass
class ReplaySummary:
    """What a replay did.

    Attributes:
        input_path: Input bag.
        output_path: Output bag.
        storage: Output storage plugin.
        topics: Per input image topic statistics.
        outputs: Per input image topic, its output topic names.
        copied: Input messages copied to the output bag.
        seconds: Wall time of the whole replay.
        model_seconds: Time spent in ``SegmentationPipeline.process`` (the model stage).
        videos: Video files written.
        dropped: Input topics that were this run's own output topics (the input is an earlier replay's
            output) -> messages not copied.
    """

    input_path: Path
    output_path: Path
    storage: str
    topics: dict[str, TopicStats]
    outputs: dict[str, dict[str, str]]
    copied: int = 0
    seconds: float = 0.0
    model_seconds: float = 0.0
    videos: list[Path] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def processed(self) -> int:
        """Frames processed over all topics."""
        return sum(s.processed for s in self.topics.values())

    @property
    def skipped(self) -> int:
        """Frames skipped (corrupt or failed) over all topics."""
        return sum(s.corrupt + s.failed for s in self.topics.values())

    @property
    def fps(self) -> float:
        """Processed frames per wall-clock second."""
        return self.processed / self.seconds if self.seconds > 0 else 0.0

    def format(self) -> str:
        """A human-readable multi-line report."""
        lines = [f"replay: {self.input_path} -> {self.output_path} ({self.storage})"]
        for topic, s in self.topics.items():
            out = self.outputs[topic]
            ns = out["class_mask"].rsplit("/", 1)[0] or ""
            line = f"  {topic}: {s.frames} frames, {s.processed} processed"
            if s.corrupt:
                line += f", {s.corrupt} skipped as corrupt"
            if s.failed:
                line += f", {s.failed} failed in the model"
            if s.conditions:
                line += " [" + ", ".join(f"{c}: {n}" for c, n in sorted(s.conditions.items())) + "]"
            lines.append(line + f" -> {ns}/{{{','.join(OUTPUT_NAMES)}}}")
            lines.extend(f"    skipped {r}" for r in s.reasons)
        lines.append(f"  skipped frames: {self.skipped}")
        lines.append(f"  input messages copied: {self.copied}")
        if self.dropped:
            lines.append(
                f"  dropped {sum(self.dropped.values())} input messages of an earlier replay's outputs, "
                f"replaced by this run's: {', '.join(sorted(self.dropped))}"
            )
        share = 100 * self.model_seconds / self.seconds if self.seconds > 0 else 0.0
        lines.append(
            f"  {self.processed} frames in {self.seconds:.2f} s ({self.fps:.2f} fps); "
            f"model {self.model_seconds:.2f} s ({share:.0f}% of the time)"
        )
        lines.extend(f"  video: {v}" for v in self.videos)
        return "\n".join(lines)


@dataclass
class _Frame:
    topic: str
    stamp: int  # log time, ns
    header: Any
    rgb: np.ndarray | None
    condition: str
    band: Band
    error: str | None = None


@dataclass
class _Item:
    """One unit of work through the stages: the input messages to copy, and at most one frame.

    Messages between two processed frames travel together with the second one, so the queues carry
    one item per frame, not one per message (camera_info, tf, ... would otherwise each wake every stage).
    """

    messages: list[BagMessage] = field(default_factory=list)
    frame: _Frame | None = None
    result: Any = None


_DONE = object()

#: Called after each processed frame is written (in the writing thread):
#: ``(topic, stamp_ns, rgb, result, condition)``.
FrameCallback = Callable[[str, int, np.ndarray, Any, str], None]
#: ``on_skip(topic, stamp, reason)`` for a frame that was not segmented (corrupt, or the model failed).
SkipCallback = Callable[[str, int, str], None]


class _WeatherSource:
    """Picks the condition and band of each frame according to :attr:`ReplayOptions.weather`."""

    def __init__(self, options: ReplayOptions, presets: dict[str, Band], bag: BagReader) -> None:
        from causal_tune_ros.weather import CONDITIONS

        self.mode = options.weather
        self.every = options.weather_every
        self.min_seconds = options.weather_min_seconds
        self.presets = presets
        self.forced = options.band
        self._classifiers: dict[str, Any] = {}
        self._times: list[int] = []
        self._values: list[str] = []
        if self.mode == "topic":
            if options.weather_topic not in bag.topics:
                raise BagError(f"--weather topic: the bag has no {options.weather_topic} topic")
            if bag.topics[options.weather_topic] != STRING_TYPE:
                found = bag.topics[options.weather_topic]
                raise BagError(f"{options.weather_topic} is {found}, not {STRING_TYPE}")
            # One cheap pass over the small String messages, so a frame logged at the same instant as
            # its weather message gets it whatever order the storage returns ties in.
            for m in bag.messages([options.weather_topic]):
                value = str(deserialize(m.data, STRING_TYPE).data).strip().lower()
                if value not in presets:
                    LOG.warning("ignoring unknown condition %r on %s", value, options.weather_topic)
                    continue
                self._times.append(m.timestamp)
                self._values.append(value)
        elif self.mode != "auto" and self.mode not in presets:
            raise ConfigError(
                f"unknown weather {self.mode!r}; expected auto, topic or one of {', '.join(CONDITIONS)}"
            )

    def pick(self, topic: str, stamp: int, rgb: np.ndarray, header_stamp: int = 0) -> tuple[str, Band]:
        """Condition and band of a frame logged at ``stamp`` (ns) with header stamp ``header_stamp``."""
        if self.mode == "auto":
            if topic not in self._classifiers:
                from causal_tune_ros.weather import WeatherClassifier

                self._classifiers[topic] = WeatherClassifier(
                    min_seconds=self.min_seconds, every_n_frames=self.every
                )
            # Hysteresis on the camera's clock (header stamps); the log time if the driver sets none.
            condition = str(self._classifiers[topic].update(rgb, header_stamp or stamp))
        elif self.mode == "topic":
            i = bisect.bisect_right(self._times, stamp) - 1
            condition = self._values[i] if i >= 0 else "clear"
        else:
            condition = self.mode
        band = self.forced or self.presets.get(condition) or self.presets["clear"]
        return condition, band


def _decode(msg: BagMessage) -> tuple[Any, np.ndarray]:
    """CDR bytes of an Image / CompressedImage -> (header, RGB view)."""
    from causal_tune_ros.imaging import compressed_to_rgb, image_to_rgb

    ros_msg = deserialize(msg.data, msg.msgtype)
    cap = DEFAULT_MAX_IMAGE_PIXELS  # the node's max_image_pixels default: one limit for both
    if msg.msgtype == IMAGE_TYPE:
        rgb = image_to_rgb(ros_msg, max_pixels=cap)
    else:
        rgb = compressed_to_rgb(ros_msg, max_pixels=cap)
    return ros_msg.header, rgb


class Replayer:
    """Runs a :class:`~causal_tune_ros.pipeline.SegmentationPipeline` over the image topics of a bag.

    Args:
        pipeline: Anything with ``process(rgb, band, overlay=..., confidence=...)`` returning a
            ``SegmentationResult`` (class_mask, overlay, drivable_mask).
        options: :class:`ReplayOptions`.
        band_presets: Condition -> band (default: :func:`causal_tune_ros.weather.load_band_presets`).
        on_frame: Optional callback per processed frame (runs in the writing thread, never the main one).
        on_skip: Optional callback per skipped frame, ``(topic, stamp, reason)``; the reason starts with
            "model failed" when the model failed, else the frame was corrupt (same thread as ``on_frame``).
    """

    def __init__(
        self,
        pipeline: Any,
        options: ReplayOptions | None = None,
        band_presets: dict[str, Band] | None = None,
        on_frame: FrameCallback | None = None,
        on_skip: SkipCallback | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.options = options or ReplayOptions()
        check_options(self.options)
        if band_presets is None:
            from causal_tune_ros.weather import load_band_presets

            band_presets = load_band_presets()
        self.band_presets = dict(band_presets)
        self.on_frame = on_frame
        self.on_skip = on_skip
        self._stop = threading.Event()

    # ------------------------------------------------------------------------------------------ public

    def run(self, in_bag: str | Path | BagReader, out_path: str | Path) -> ReplaySummary:
        """Replay a bag into a new bag ``out_path``.

        Args:
            in_bag: rosbag2 folder, a bare ``.mcap`` / ``.db3`` file, or a :class:`BagReader` opened in
                this thread (it stays open; saves parsing the metadata twice).
            out_path: Bag folder to create.

        Returns:
            The :class:`ReplaySummary`.

        Raises:
            BagError: The input cannot be opened or has no image topic, a requested topic is missing,
                the output exists or cannot be written.
            ConfigError: Bad options (unknown weather condition, ...).
        """
        started = time.perf_counter()
        own = not isinstance(in_bag, BagReader)
        bag = BagReader(in_bag) if own else in_bag
        try:
            return self._run(bag, Path(out_path), started)
        finally:
            if own:
                bag.close()

    def weather_track(self, in_bag: str | Path | BagReader) -> dict[str, list[tuple[int, str]]]:
        """The condition :meth:`run` applies to each frame it would process, without the model.

        Runs the replay's own reading stage (topic selection, ``every``, ``max_frames``, decoding and the
        weather selection of :attr:`ReplayOptions.weather`) and nothing after it: no model, no output.

        Args:
            in_bag: Input bag path or an open :class:`BagReader`.

        Returns:
            Per image topic, ``(log time ns, condition)`` of every frame that would be processed
            (undecodable frames are left out, as :meth:`run` skips them).

        Raises:
            BagError: The input cannot be read or lacks a requested topic.
            ConfigError: Bad options.
        """
        import dataclasses

        own = not isinstance(in_bag, BagReader)
        bag = BagReader(in_bag) if own else in_bag
        saved = self.options
        try:
            self.options = dataclasses.replace(saved, copy_input=False)
            check_options(self.options)
            topics = _image_topics(bag, self.options)
            plan = ReplayPlan(topics, output_topics(topics), [], {}, "", 0, {}, [])
            summary = ReplaySummary(bag.path, Path(), "", {t: TopicStats() for t in topics}, plan.outputs)
            weather = _WeatherSource(self.options, self.band_presets, bag)
            track: dict[str, list[tuple[int, str]]] = {t: [] for t in topics}
            self._stop.clear()
            for item in self._items(bag, plan, weather, summary):
                frame = item.frame
                if frame is not None and frame.error is None:
                    track[frame.topic].append((frame.stamp, frame.condition))
            return track
        finally:
            self.options = saved
            if own:
                bag.close()

    def _run(self, bag: BagReader, out_path: Path, started: float) -> ReplaySummary:
        opts = self.options
        plan = plan_replay(bag, out_path, opts)
        self._stop.clear()
        image_topics = plan.image_topics
        weather = _WeatherSource(opts, self.band_presets, bag)
        fps = self._video_fps(bag, image_topics)
        summary = ReplaySummary(
            input_path=bag.path,
            output_path=out_path,
            storage=plan.storage,
            topics={t: TopicStats() for t in image_topics},
            outputs=plan.outputs,
            dropped=dict(plan.dropped),
        )
        out_topics: list[tuple[str, str, Any]] = []
        if opts.copy_input:
            out_topics = [(t, bag.topics[t], bag.qos(t)) for t in plan.copied_topics]
        for topic in image_topics:
            for name, out_topic in plan.outputs[topic].items():
                if name == "overlay" and not opts.overlay:
                    continue
                out_topics.append((out_topic, STRING_TYPE if name == "weather" else IMAGE_TYPE, "reliable"))
        protected = plan.protected

        def open_writer() -> BagWriter:
            writer = BagWriter(
                out_path,
                storage=plan.storage,
                overwrite=opts.overwrite,
                version=opts.bag_version,
                protected=protected,
            )
            try:
                for topic, msgtype, qos in out_topics:
                    writer.add_topic(topic, msgtype, qos=qos)
            except BaseException:
                writer.close(commit=False)
                raise
            return writer

        progress = Progress(plan.total, label="replay", enabled=opts.progress)
        videos: dict[str, SideBySideVideo] = {}
        if opts.video:
            for topic in image_topics:
                videos[topic] = SideBySideVideo(
                    plan.videos[topic], fps=fps.get(topic, 10.0), overwrite=opts.overwrite
                )
        complete = False
        try:
            self._pipeline_stages(bag, open_writer, plan, weather, summary, videos, progress)
            complete = not self._stop.is_set()
        finally:
            progress.close()
            for v in videos.values():
                v.close(commit=complete)
        summary.videos = [v.path for v in videos.values() if v.frames]
        summary.seconds = time.perf_counter() - started
        return summary

    # --------------------------------------------------------------------------------------- internals

    def _video_fps(self, bag: BagReader, topics: Sequence[str]) -> dict[str, float]:
        if self.options.video_fps:
            return dict.fromkeys(topics, float(self.options.video_fps))
        seconds = bag.duration / 1e9
        rates = {}
        for t in topics:
            n = bag.count(t)
            rate = (n - 1) / seconds if n > 1 and seconds > 0 else 10.0
            rates[t] = max(min(rate / self.options.every, 120.0), 1.0)
        return rates

    def _pipeline_stages(
        self,
        bag: BagReader,
        open_writer: Callable[[], BagWriter],
        plan: ReplayPlan,
        weather: _WeatherSource,
        summary: ReplaySummary,
        videos: dict[str, SideBySideVideo],
        progress: Progress,
    ) -> None:
        """Run the three stages: reading here, the model and the writer in their own threads.

        The reader stays in the calling thread because SQLite handles only work in the thread that
        opened them (the writer opens its bag in its own thread for the same reason), and so that
        Ctrl-C lands in the stage that drives the others.
        """
        if not self.options.threaded:

            def sequential() -> None:
                with open_writer() as writer:
                    for item in self._items(bag, plan, weather, summary):
                        self._infer(item, summary)
                        self._emit(writer, item, summary, videos, progress)
                    # Stopped early (Ctrl-C, SIGTERM): keep the previous output, the new one as .partial.
                    writer.close(commit=not self._stop.is_set())

            run_in_worker(sequential, on_interrupt=self._stop.set)
            return
        to_model: queue.Queue = queue.Queue(maxsize=_QUEUE_SIZE)
        to_writer: queue.Queue = queue.Queue(maxsize=_QUEUE_SIZE)
        errors: list[BaseException] = []

        def model() -> None:
            try:
                while (item := to_model.get()) is not _DONE:
                    self._infer(item, summary)
                    if not _put(to_writer, item, self._stop):
                        break
            except BaseException as exc:  # handed to the calling thread, re-raised there
                errors.append(exc)
                self._stop.set()
                _drain(to_model)
            finally:
                _put(to_writer, _DONE, self._stop, force=True)

        def write() -> None:
            try:
                with open_writer() as writer:
                    while (item := to_writer.get()) is not _DONE:
                        self._emit(writer, item, summary, videos, progress)
                    # Stopped early (Ctrl-C, SIGTERM, a failed stage): keep the previous output.
                    writer.close(commit=not self._stop.is_set())
            except BaseException as exc:
                errors.append(exc)
                self._stop.set()
                _drain(to_writer)

        threads = [
            threading.Thread(target=model, name="replay-model", daemon=True),
            threading.Thread(target=write, name="replay-writer", daemon=True),
        ]
        for t in threads:
            t.start()
        try:
            for item in self._items(bag, plan, weather, summary):
                if not _put(to_model, item, self._stop):
                    break
        except BaseException as exc:
            errors.append(exc)
            self._stop.set()
        finally:
            _put(to_model, _DONE, self._stop, force=True)
            for t in threads:
                t.join()
        if errors:
            # The first error is the cause; later ones are usually consequences of stopping.
            raise errors[0]

    def _items(
        self,
        bag: BagReader,
        plan: ReplayPlan,
        weather: _WeatherSource,
        summary: ReplaySummary,
    ) -> Iterator[_Item]:
        """Stage 1: read, deserialise and decode; one item per frame to process."""
        opts = self.options
        image_topics = plan.image_topics
        wanted = set(image_topics)
        emitted = 0
        seen: dict[str, int] = dict.fromkeys(image_topics, 0)
        copied = set(plan.copied_topics)
        topics = [t for t in bag.topics if t in copied or t in wanted] if opts.copy_input else image_topics
        item = _Item()
        for msg in bag.messages(topics):
            if self._stop.is_set():
                return
            if opts.copy_input and msg.topic in copied:
                item.messages.append(msg)
            if msg.topic in wanted:
                summary.topics[msg.topic].frames += 1
                index = seen[msg.topic]
                seen[msg.topic] += 1
                if index % opts.every == 0:
                    item.frame = self._prepare(msg, weather)
                    emitted += 1
            if item.frame is not None or len(item.messages) >= _MAX_BATCH:
                yield item
                item = _Item()
            if opts.max_frames and emitted >= opts.max_frames:
                return
        if item.messages:
            yield item

    def _prepare(self, msg: BagMessage, weather: _WeatherSource) -> _Frame:
        try:
            header, rgb = _decode(msg)
        except (BagError, ImageConversionError) as exc:
            return _Frame(msg.topic, msg.timestamp, None, None, "", weather.presets["clear"], error=str(exc))
        condition, band = weather.pick(msg.topic, msg.timestamp, rgb, stamp_to_ns(header.stamp))
        return _Frame(msg.topic, msg.timestamp, header, rgb, condition, band)

    def _infer(self, item: _Item, summary: ReplaySummary) -> None:
        """Stage 2: the model."""
        frame = item.frame
        if frame is None or frame.error is not None:
            return
        t0 = time.perf_counter()
        try:
            item.result = self.pipeline.process(
                frame.rgb,
                frame.band,
                overlay=self.options.overlay or bool(self.options.video),
                confidence=False,
            )
        except CausalTuneError as exc:
            # One bad frame (e.g. non-finite logits) must not end a long replay.
            frame.error = f"model failed: {exc}"
            item.result = None
        summary.model_seconds += time.perf_counter() - t0

    def _emit(
        self,
        writer: BagWriter,
        item: _Item,
        summary: ReplaySummary,
        videos: dict[str, SideBySideVideo],
        progress: Progress,
    ) -> None:
        """Stage 3: copy the input messages, serialise and write the outputs, video, progress."""
        from causal_tune_ros.imaging import numpy_to_image

        for message in item.messages:
            writer.write(message.topic, message.timestamp, message.data)
        summary.copied += len(item.messages)
        frame = item.frame
        if frame is None:
            return
        stats = summary.topics[frame.topic]
        if frame.error is not None:
            if item.result is None and frame.error.startswith("model failed"):
                stats.failed += 1
            else:
                stats.corrupt += 1
            stats.note(frame.stamp, frame.error)
            LOG.warning("%s: skipping frame at t=%d: %s", frame.topic, frame.stamp, frame.error)
            if self.on_skip is not None:
                self.on_skip(frame.topic, frame.stamp, frame.error)
            progress.update()
            return
        image_cls = msg_class(IMAGE_TYPE)
        result, out, t = item.result, summary.outputs[frame.topic], frame.stamp
        h = frame.header
        images = [
            ("class_mask", result.class_mask, "mono8"),
            ("drivable_mask", result.drivable_mask, "mono8"),
        ]
        if self.options.overlay:
            images.insert(1, ("overlay", result.overlay, "rgb8"))
        for name, array, encoding in images:
            writer.write_message(out[name], t, numpy_to_image(array, encoding, h, image_cls))
        writer.write_message(out["weather"], t, msg_class(STRING_TYPE)(data=frame.condition))
        if frame.topic in videos:
            videos[frame.topic].write(frame.rgb, result.overlay)
        stats.processed += 1
        stats.conditions[frame.condition] = stats.conditions.get(frame.condition, 0) + 1
        if self.on_frame is not None:
            self.on_frame(frame.topic, t, frame.rgb, result, frame.condition)
        progress.update()


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


def _image_topics(bag: BagReader, options: ReplayOptions) -> list[str]:
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
    image_topics = _image_topics(bag, options)
    if options.weather == "topic":
        if options.weather_topic not in bag.topics:
            raise BagError(f"--weather topic: the bag has no {options.weather_topic} topic")
        if bag.topics[options.weather_topic] != STRING_TYPE:
            found = bag.topics[options.weather_topic]
            raise BagError(f"{options.weather_topic} is {found}, not {STRING_TYPE}")
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
        storage=options.storage or _storage_like(in_path, out_path),
        total=total,
        videos=videos,
        protected=protected,
    )


def replay_bag(
    pipeline: Any,
    in_bag: str | Path | BagReader,
    out_path: str | Path,
    options: ReplayOptions | None = None,
    band_presets: dict[str, Band] | None = None,
    on_frame: FrameCallback | None = None,
    on_skip: SkipCallback | None = None,
) -> ReplaySummary:
    """Segment one bag into one new output bag: the reusable entry point of ``causal-tune replay``.

    The output appears at ``out_path`` only when complete (written beside it, then renamed); an
    interrupted run leaves ``out_path`` as it was (see the module docstring).

    Args:
        pipeline: A ``SegmentationPipeline`` (or anything with its ``process``).
        in_bag: Input bag path (folder or ``.mcap`` / ``.db3`` file) or an open :class:`BagReader`.
        out_path: Output bag folder.
        options: :class:`ReplayOptions` (default: all defaults).
        band_presets: Condition -> band (default: the packaged presets).
        on_frame: Callback per processed frame (see :class:`Replayer`).
        on_skip: Callback per skipped frame (see :class:`Replayer`).

    Returns:
        The :class:`ReplaySummary`.

    Raises:
        BagError: Unreadable input, missing topic, unsafe or existing output, write failure.
        ConfigError: Bad options.
    """
    replayer = Replayer(pipeline, options, band_presets=band_presets, on_frame=on_frame, on_skip=on_skip)
    return replayer.run(in_bag, out_path)


def _put(q: queue.Queue, item: object, stop: threading.Event, force: bool = False) -> bool:
    """Put with a stop check, so a stage blocked on a full queue notices another stage's failure.

    Returns False if it gave up because of ``stop`` (``force`` keeps trying: the end marker must arrive).
    """
    while True:
        if stop.is_set() and not force:
            return False
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            if stop.is_set() and force:
                _drain(q)


def _drain(q: queue.Queue) -> None:
    """Empty a queue so a producer blocked on it can finish."""
    while True:
        try:
            q.get_nowait()
        except queue.Empty:
            return


def _storage_like(in_path: Path, out_path: Path) -> str:
    """Output storage: from the output suffix if it names one, else the input's storage."""
    if out_path.suffix in (".mcap", ".db3"):
        return "mcap" if out_path.suffix == ".mcap" else "sqlite3"
    if in_path.is_file():
        return "mcap" if in_path.suffix == ".mcap" else "sqlite3"
    return "mcap" if list(in_path.glob("*.mcap")) else "sqlite3"
