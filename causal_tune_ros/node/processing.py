"""The node's data path, run in the worker thread: messages -> RGB -> band -> pipeline -> output messages.

:class:`FrameProcessor` handles one frame (single-camera node) or one batch with one frame per camera
(multi-camera node: one forward of batch size = number of cameras). It reads the core's current
settings, pipeline and outputs per call and reports faults through the core, so it never stops on bad
input.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from causal_tune_ros.drivable import GridSpec, project_to_grid
from causal_tune_ros.errors import BackendError, CausalTuneError, ConfigError, ImageConversionError
from causal_tune_ros.imaging import compressed_to_rgb, image_to_rgb
from causal_tune_ros.node.diagnostics import NodeStats
from causal_tune_ros.node.ground import GroundPoseSource
from causal_tune_ros.node.outputs import Outputs, StreamOutputs, confidence_image, occupancy_grid
from causal_tune_ros.node.parameters.settings import NodeSettings
from causal_tune_ros.node.weather_state import WeatherSelector
from causal_tune_ros.pipeline import SegmentationPipeline, SegmentationResult

ImageMessage = Image | CompressedImage

#: What fills the place of a camera without a frame in a batch: tiny, so that its (discarded)
#: post-processing costs nothing; the backend still sees the full static batch.
FILLER = np.zeros((14, 14, 3), dtype=np.uint8)


class CameraStream:
    """One camera's state in the node: its latest camera_info, its statistics and its publishers.

    Args:
        name: Camera name ('' for the single-camera node's unnamed camera).
        index: Its place in the batch.
    """

    def __init__(self, name: str, index: int) -> None:
        self.name = name
        self.index = index
        self.camera_info: CameraInfo | None = None
        self.stats = NodeStats()
        self.outputs: StreamOutputs | None = None

    def topic(self, base: str) -> str:
        """The input topic ``base`` (``image``, ``camera_info``, ...) of this camera, relative."""
        return f"{self.name}/{base}" if self.name else base

    @property
    def label(self) -> str:
        """Prefix for messages about this camera ('' for the unnamed camera)."""
        return f"camera {self.name}: " if self.name else ""

    def on_camera_info(self, msg: CameraInfo) -> None:
        """Subscription callback: keep the newest intrinsics."""
        self.camera_info = msg


def stamp_ns(header: Header) -> int:
    """A header stamp in nanoseconds."""
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


def stamp_text(header: Header) -> str:
    """A header stamp as ``sec.nanosec`` for messages."""
    return f"{header.stamp.sec}.{header.stamp.nanosec:09d}"


class ProcessingHost(Protocol):
    """What :class:`FrameProcessor` needs of the node's core (``node.core.SegmentationCore`` is one).

    A Protocol rather than the core's class, so that the data path does not import the core that
    owns it (no import cycle).
    """

    node: Node
    log: Any  # rclpy's RcutilsLogger
    settings: NodeSettings
    pipeline: SegmentationPipeline | None
    outputs: Outputs | None
    streams: Sequence[CameraStream]
    stats: NodeStats
    weather: WeatherSelector
    ground: GroundPoseSource

    @property
    def debug_enabled(self) -> bool: ...

    def note_condition(self, condition: str) -> None: ...

    def report_error(
        self,
        kind: str,
        message: str,
        frame_failed: bool = True,
        exc_info: BaseException | None = None,
        stream: CameraStream | None = None,
    ) -> None: ...

    def warn_once(self, kind: str, message: str) -> None: ...


class FrameProcessor:
    """Turns image messages into published outputs for the core it serves.

    Args:
        core: The node's core (settings, pipeline, outputs, weather, error reporting).

    Attributes:
        forwards: Batches run through the model (multi-camera node), for diagnostics.
    """

    def __init__(self, core: ProcessingHost) -> None:
        self.core = core
        self.forwards = 0

    # ------------------------------------------------------------------------------------ one frame

    def process(self, msg: ImageMessage) -> None:
        """Single-camera node: one message in, every output published (or one error reported)."""
        core = self.core
        s, pipeline = core.settings, core.pipeline
        stream = core.streams[0]
        out = stream.outputs
        if pipeline is None or out is None:
            return
        started = time.perf_counter()
        rgb = self._convert(stream, msg, s)
        if rgb is None:
            return
        converted = time.perf_counter()
        condition = core.weather.for_frame(rgb, stamp_ns(msg.header))
        band = s.band_for(condition)
        try:
            result = pipeline.process(
                rgb,
                band,
                overlay=s.publish_overlay and out.watched(out.overlay),
                confidence=s.publish_confidence and out.watched(out.confidence),
            )
        except CausalTuneError as exc:
            self._failed(exc, [(stream, msg)])
            return
        core.note_condition(condition)
        processed = time.perf_counter()
        latency = self._publish(stream, result, msg.header, s)
        if core.debug_enabled:
            ms = 1e3
            core.log.debug(
                f"frame {stamp_text(msg.header)}: convert {(converted - started) * ms:.2f} ms, "
                f"model {result.model_seconds * ms:.2f} ms, pipeline {result.total_seconds * ms:.2f} ms, "
                f"publish {(time.perf_counter() - processed) * ms:.2f} ms, "
                f"latency {'n/a' if latency is None else f'{latency * ms:.2f}'} ms"
            )

    # ------------------------------------------------------------------------------------ a batch

    def process_batch(self, msgs: list[ImageMessage | None]) -> None:
        """Multi-camera node: the newest frame of each camera (None: none in time) in ONE forward.

        The batch always has one image per camera (a camera without a frame, or with a bad one, gets
        :data:`FILLER`), so the backend sees one static shape; only cameras with a frame publish. The
        band is the one in force for the first camera's frame (one band per forward).
        """
        core = self.core
        s, pipeline = core.settings, core.pipeline
        if pipeline is None or core.outputs is None:
            return
        frames: list[tuple[CameraStream, ImageMessage, np.ndarray]] = []
        for stream, msg in zip(core.streams, msgs, strict=True):
            if msg is None or stream.outputs is None:
                continue
            rgb = self._convert(stream, msg, s)
            if rgb is not None:
                frames.append((stream, msg, rgb))
        if not frames:
            return
        _, first_msg, first_rgb = frames[0]
        condition = core.weather.for_frame(first_rgb, stamp_ns(first_msg.header))
        band = s.band_for(condition)
        images = [FILLER] * len(core.streams)
        for stream, _, rgb in frames:
            images[stream.index] = rgb
        outs = [stream.outputs for stream, _, _ in frames if stream.outputs is not None]
        try:
            results = pipeline.process_batch(
                images,
                band,
                overlay=s.publish_overlay and any(o.watched(o.overlay) for o in outs),
                confidence=s.publish_confidence and any(o.watched(o.confidence) for o in outs),
            )
        except CausalTuneError as exc:
            self._failed(exc, [(stream, msg) for stream, msg, _ in frames])
            return
        self.forwards += 1
        core.note_condition(condition)
        for stream, msg, _ in frames:
            self._publish(stream, results[stream.index], msg.header, s)

    # ------------------------------------------------------------------------------------ steps

    def _convert(self, stream: CameraStream, msg: ImageMessage, s: NodeSettings) -> np.ndarray | None:
        """The message as RGB, or None after reporting why it cannot be read."""
        try:
            if isinstance(msg, CompressedImage):
                return compressed_to_rgb(msg, max_pixels=s.max_image_pixels)
            return image_to_rgb(msg, max_pixels=s.max_image_pixels)
        except ImageConversionError as exc:
            self.core.report_error(
                "image", f"{stream.label}bad image (stamp {stamp_text(msg.header)}): {exc}", stream=stream
            )
            return None

    def _failed(self, exc: CausalTuneError, frames: list[tuple[CameraStream, ImageMessage]]) -> None:
        """Report a model or pipeline failure once per lost frame."""
        kind = "model" if isinstance(exc, BackendError) else "pipeline"
        for stream, msg in frames:
            self.core.report_error(
                kind, f"{stream.label}{kind} failure (stamp {stamp_text(msg.header)}): {exc}", stream=stream
            )

    def _publish(
        self, stream: CameraStream, result: SegmentationResult, header: Header, s: NodeSettings
    ) -> float | None:
        """Publish the class mask first (the latency-critical output), then the others.

        Returns:
            ``now - header.stamp`` in seconds after the last output went out (None without a stamp).
        """
        out = stream.outputs
        if out is None:
            return None
        out.publish_image(out.class_mask, result.class_mask, "mono8", header)
        out.publish_image(out.drivable_mask, result.drivable_mask, "mono8", header)
        if result.overlay is not None and s.publish_overlay and out.watched(out.overlay):
            out.publish_image(out.overlay, result.overlay, "rgb8", header)
        if result.confidence is not None and s.publish_confidence and out.watched(out.confidence):
            conf = confidence_image(result.confidence, s.confidence_encoding)
            out.publish_image(out.confidence, conf, s.confidence_encoding, header)
        if s.grid_enabled and out.watched(out.drivable_grid):
            self._publish_grid(stream, result.drivable_mask, header, s, out)
        now_ns = self.core.node.get_clock().now().nanoseconds
        stamp = stamp_ns(header)
        latency = (now_ns - stamp) * 1e-9 if stamp > 0 else None
        model, total = float(result.model_seconds), float(result.total_seconds)
        stream.stats.record_frame(latency, model, total)
        self.core.stats.record_frame(latency, model, total)
        return latency

    def _publish_grid(
        self, stream: CameraStream, mask: np.ndarray, header: Header, s: NodeSettings, out: StreamOutputs
    ) -> None:
        info = stream.camera_info
        if info is None:
            return  # no intrinsics yet; the grid starts with the first camera_info
        try:
            K = intrinsics_for(info, mask.shape)
            pose, note = self.core.ground.pose(s.camera, s.use_tf, s.grid_frame, header)
            if note:
                self.core.warn_once("ground", note)
            grid = GridSpec(resolution=s.grid_resolution, length_m=s.grid_length, width_m=s.grid_width)
            cells = project_to_grid(mask, K, pose, grid)
        except ConfigError as exc:
            self.core.report_error(
                "grid", f"{stream.label}no drivable grid: {exc}", frame_failed=False, stream=stream
            )
            return
        out.drivable_grid.publish(occupancy_grid(cells, grid, s.grid_frame, header.stamp))


def intrinsics_for(info: CameraInfo, shape: tuple[int, int]) -> np.ndarray:
    """The 3x3 camera matrix for images of ``shape``, scaled if camera_info describes another size.

    ``k`` is used (the raw camera matrix; the node ignores distortion), ``p``'s left 3x3 when ``k`` is
    all zero (some drivers of rectified streams fill only ``p``).

    Raises:
        ConfigError: If neither matrix is usable.
    """
    K = np.asarray(info.k, dtype=np.float64).reshape(3, 3)
    if not K.any():
        K = np.asarray(info.p, dtype=np.float64).reshape(3, 4)[:, :3].copy()
    if not K.any():
        raise ConfigError("camera_info has neither K nor P set")
    if not np.isfinite(K).all():
        raise ConfigError("camera_info K (or P) has NaN or infinite entries")
    height, width = shape
    if info.width and info.height and (info.width, info.height) != (width, height):
        scale = np.diag([width / info.width, height / info.height, 1.0])
        K = scale @ K
    return K
