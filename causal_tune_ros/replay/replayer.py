"""The offline replay loop: bag in -> segmentation outputs -> bag out.

Three stages per frame:

    read       raw message -> deserialise -> decode to RGB -> pick the weather band   (replay.reading)
    model      SegmentationPipeline.process
    write      copy the input messages raw -> build + serialise outputs -> write -> video -> progress

With I/O threads (``ReplayOptions.threaded``, the default) reading runs in the calling thread, the model
and the writer in their own threads, linked by small bounded queues (one item per frame, memory stays
flat on long bags): PyTorch releases the GIL while it computes, so reading the next frame and writing the
previous one overlap the model (docs/PERFORMANCE.md). The model never runs on the main thread (see
:func:`~causal_tune_ros.worker_thread.run_in_worker`). Images are never copied on the way in (``rgb8``
data is viewed in place) and input messages are copied to the output bag as the raw CDR bytes they were
stored as.

Output topics per camera topic: see :mod:`~causal_tune_ros.replay.topics`; each output is stamped with
the input message's log time and carries its header (stamp and frame_id).

Frames that cannot be decoded (truncated data, corrupt JPEG, bad CDR) are skipped and counted; the
replay goes on.

Outputs (see :mod:`~causal_tune_ros.bags.writer` for the bag layout): every check that needs no model
(input opens, topics exist, output path is safe) runs in :func:`~causal_tune_ros.replay.plan.plan_replay`,
before any model is loaded or exported. The output bag and the video are written beside their final names
and renamed into place only when complete; an interrupted replay (Ctrl-C, SIGTERM, an error) leaves the
previous output untouched and keeps what it wrote as ``<out>.partial``. Messages of the input on this run's
own output topics (the input is itself a replay output) are dropped, counted and reported, never mixed
with the new results.

The option, summary, topic and plan types live in their own modules beside this one; their public names
are importable from here too.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from causal_tune_ros.bags import IMAGE_TYPE, STRING_TYPE, BagReader, BagWriter, msg_class
from causal_tune_ros.band import Band
from causal_tune_ros.errors import CausalTuneError, ConfigError
from causal_tune_ros.progress import progress_bar
from causal_tune_ros.replay.batching import CameraBatcher, segment_batch
from causal_tune_ros.replay.options import ReplayOptions, check_options
from causal_tune_ros.replay.plan import ReplayPlan, plan_replay, select_image_topics
from causal_tune_ros.replay.reading import (
    Frame,
    FrameCallback,
    Item,
    SkipCallback,
    WeatherSource,
    prepare_frame,
)
from causal_tune_ros.replay.stages import run_threaded
from causal_tune_ros.replay.summary import ReplaySummary, TopicStats
from causal_tune_ros.replay.topics import (
    NON_CAMERA_NAMES,
    OUTPUT_NAMES,
    camera_namespace,
    is_camera_topic,
    output_topics,
)
from causal_tune_ros.replay.video import SideBySideVideo
from causal_tune_ros.worker_thread import run_in_worker

LOG = logging.getLogger(__name__)

_MAX_BATCH = 256  # input messages carried by one item when no frame comes (e.g. a long lidar stretch)


class Replayer:
    """Runs a :class:`~causal_tune_ros.pipeline.SegmentationPipeline` over the image topics of a bag.

    Args:
        pipeline: Anything with ``process(rgb, band, overlay=..., confidence=...)`` returning a
            ``SegmentationResult`` (class_mask, overlay, drivable_mask); with
            :attr:`ReplayOptions.batch_cameras` also ``process_batch`` (a list of images, one band).
        options: :class:`ReplayOptions`.
        band_presets: Condition -> band (default: :func:`causal_tune_ros.weather.load_band_presets`).
        on_frame: Optional callback per processed frame (runs in the writing thread, never the main one).
        on_skip: Optional callback per skipped frame, ``(topic, stamp, reason)``; the reason starts with
            "model failed" when the model failed, else the frame was corrupt (same thread as ``on_frame``).

    Raises:
        ConfigError: Bad options, or ``batch_cameras`` with a pipeline that has no ``process_batch``.
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
        if self.options.batch_cameras and not callable(getattr(pipeline, "process_batch", None)):
            raise ConfigError("--batch-cameras needs a pipeline with process_batch (SegmentationPipeline)")
        if band_presets is None:
            from causal_tune_ros.weather import load_band_presets

            band_presets = load_band_presets()
        self.band_presets = dict(band_presets)
        self.on_frame = on_frame
        self.on_skip = on_skip
        self._stop = threading.Event()
        self._batch_size = 1  # cameras replayed: the static size of camera batches

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
        own = not isinstance(in_bag, BagReader)
        bag = BagReader(in_bag) if own else in_bag
        saved = self.options
        try:
            self.options = dataclasses.replace(saved, copy_input=False)
            check_options(self.options)
            topics = select_image_topics(bag, self.options)
            plan = ReplayPlan(topics, output_topics(topics), [], {}, "", 0, {}, [])
            summary = ReplaySummary(bag.path, Path(), "", {t: TopicStats() for t in topics}, plan.outputs)
            weather = WeatherSource(self.options, self.band_presets, bag)
            track: dict[str, list[tuple[int, str]]] = {t: [] for t in topics}
            self._stop.clear()
            for item in self._items(bag, plan, weather, summary):
                for frame in item.frames:
                    if frame.error is None:
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
        self._batch_size = len(image_topics)
        weather = WeatherSource(opts, self.band_presets, bag)
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

        progress = progress_bar(plan.total, "replay", unit="frame", enabled=opts.progress)
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
        weather: WeatherSource,
        summary: ReplaySummary,
        videos: dict[str, SideBySideVideo],
        progress: tqdm,
    ) -> None:
        """Run the three stages: reading here, the model and the writer in their own threads
        (:func:`~causal_tune_ros.replay.stages.run_threaded`), or all in one worker thread."""
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
        run_threaded(
            self._items(bag, plan, weather, summary),
            lambda item: self._infer(item, summary),
            lambda writer, item: self._emit(writer, item, summary, videos, progress),
            open_writer,
            self._stop,
        )

    def _items(
        self,
        bag: BagReader,
        plan: ReplayPlan,
        weather: WeatherSource,
        summary: ReplaySummary,
    ) -> Iterator[Item]:
        """Stage 1: read, deserialise and decode; one item per frame (or camera batch) to process."""
        opts = self.options
        image_topics = plan.image_topics
        wanted = set(image_topics)
        emitted = 0
        seen: dict[str, int] = dict.fromkeys(image_topics, 0)
        copied = set(plan.copied_topics)
        topics = [t for t in bag.topics if t in copied or t in wanted] if opts.copy_input else image_topics
        batcher = CameraBatcher(image_topics, round(opts.batch_wait * 1e9)) if opts.batch_cameras else None
        item = Item()
        for msg in bag.messages(topics):
            if self._stop.is_set():
                return
            if batcher is not None:
                item.frames = batcher.due(msg.timestamp)
            if opts.copy_input and msg.topic in copied:
                item.messages.append(msg)
            if msg.topic in wanted:
                summary.topics[msg.topic].frames += 1
                index = seen[msg.topic]
                seen[msg.topic] += 1
                if index % opts.every == 0:
                    frame = prepare_frame(msg, weather)
                    emitted += 1
                    item.frames += [frame] if batcher is None else batcher.add(frame)
            if item.frames or len(item.messages) >= _MAX_BATCH:
                yield item
                item = Item()
            if opts.max_frames and emitted >= opts.max_frames:
                break
        item.frames += batcher.flush() if batcher is not None else []
        if item.messages or item.frames:
            yield item

    def _infer(self, item: Item, summary: ReplaySummary) -> None:
        """Stage 2: the model (one call per frame, or per camera batch and band)."""
        frames = [f for f in item.frames if f.error is None]
        if not frames:
            return
        overlay = self.options.overlay or bool(self.options.video)
        t0 = time.perf_counter()
        if self.options.batch_cameras:
            segment_batch(self.pipeline, frames, self._batch_size, overlay)
        for frame in frames if not self.options.batch_cameras else ():
            try:
                frame.result = self.pipeline.process(frame.rgb, frame.band, overlay=overlay, confidence=False)
            except CausalTuneError as exc:
                # One bad frame (e.g. non-finite logits) must not end a long replay.
                frame.error = f"model failed: {exc}"
        summary.model_seconds += time.perf_counter() - t0

    def _emit(
        self,
        writer: BagWriter,
        item: Item,
        summary: ReplaySummary,
        videos: dict[str, SideBySideVideo],
        progress: tqdm,
    ) -> None:
        """Stage 3: copy the input messages, serialise and write the outputs, video, progress."""
        for message in item.messages:
            writer.write(message.topic, message.timestamp, message.data)
        summary.copied += len(item.messages)
        for frame in item.frames:
            self._write_frame(writer, frame, summary, videos)
            progress.update()

    def _write_frame(
        self, writer: BagWriter, frame: Frame, summary: ReplaySummary, videos: dict[str, SideBySideVideo]
    ) -> None:
        """One frame's outputs, each with the input's header, at the input's log time (or its skip)."""
        from causal_tune_ros.imaging import numpy_to_image

        stats = summary.topics[frame.topic]
        result, out, t = frame.result, summary.outputs[frame.topic], frame.stamp
        if frame.error is not None or result is None:
            if frame.error is not None and frame.error.startswith("model failed"):
                stats.failed += 1
            else:
                stats.corrupt += 1
            reason = frame.error or "no result"
            stats.note(t, reason)
            LOG.warning("%s: skipping frame at t=%d: %s", frame.topic, t, reason)
            if self.on_skip is not None:
                self.on_skip(frame.topic, t, reason)
            return
        image_cls = msg_class(IMAGE_TYPE)
        images = [
            ("class_mask", result.class_mask, "mono8"),
            ("drivable_mask", result.drivable_mask, "mono8"),
        ]
        if self.options.overlay:
            images.insert(1, ("overlay", result.overlay, "rgb8"))
        for name, array, encoding in images:
            writer.write_message(out[name], t, numpy_to_image(array, encoding, frame.header, image_cls))
        writer.write_message(out["weather"], t, msg_class(STRING_TYPE)(data=frame.condition))
        if frame.topic in videos:
            videos[frame.topic].write(frame.rgb, result.overlay)
        stats.processed += 1
        stats.conditions[frame.condition] = stats.conditions.get(frame.condition, 0) + 1
        if self.on_frame is not None:
            self.on_frame(frame.topic, t, frame.rgb, result, frame.condition)


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


__all__ = [
    "NON_CAMERA_NAMES",
    "OUTPUT_NAMES",
    "FrameCallback",
    "ReplayOptions",
    "ReplayPlan",
    "ReplaySummary",
    "Replayer",
    "SkipCallback",
    "TopicStats",
    "camera_namespace",
    "check_options",
    "is_camera_topic",
    "output_topics",
    "plan_replay",
    "replay_bag",
]
