"""What the segmentation node does, independent of whether its rclpy node is plain or managed.

:class:`SegmentationCore` is attached to an rclpy ``Node`` (or ``LifecycleNode``) and follows the
lifecycle vocabulary: ``configure`` loads the model and creates the publishers (lifecycle publishers on a
managed node) and the diagnostics timer, ``activate`` creates the subscriptions and the worker,
``deactivate`` undoes that, ``cleanup`` frees the model and the publishers. The plain node runs
configure + activate in its constructor.

One code path serves ROS 2 Humble and Jazzy: rclpy API that Humble lacks (the post-set parameter
callback) is feature-detected, see :mod:`causal_tune_ros.node.parameter_updates`.

Data flow (one way): image callback -> :class:`~causal_tune_ros.node.worker.LatestSlot` (only the newest
message waits; with ``cameras`` set, one slot per camera in a
:class:`~causal_tune_ros.node.batching.CameraBatcher`) -> worker thread
(:class:`~causal_tune_ros.node.processing.FrameProcessor`): message -> RGB (imaging) -> condition -> band
-> pipeline (one forward per frame, or per batch of cameras) -> messages. Callbacks only stash
references, so the executor never waits for inference.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from rclpy.logging import LoggingSeverity
from rclpy.node import Node
from rclpy.subscription import Subscription
from rclpy.timer import Timer
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import String

from causal_tune_ros.backends import Backend, BackendInfo, load_backend_with_fallback
from causal_tune_ros.errors import ConfigError
from causal_tune_ros.node.batching import CameraBatcher
from causal_tune_ros.node.diagnostics import ErrorThrottle, NodeStats, build_status, clip_text
from causal_tune_ros.node.ground import GroundPoseSource
from causal_tune_ros.node.model_loading import RosLogHandler, backend_spec
from causal_tune_ros.node.outputs import Outputs, sensor_qos
from causal_tune_ros.node.parameter_updates import ParameterUpdates, drivable_class_ids, load_class_set
from causal_tune_ros.node.parameters.declare import declare_parameters, unknown_overrides
from causal_tune_ros.node.parameters.settings import NodeSettings, settings_from_values
from causal_tune_ros.node.processing import CameraStream, FrameProcessor, ImageMessage
from causal_tune_ros.node.weather_state import WeatherSelector
from causal_tune_ros.node.worker import FrameWorker
from causal_tune_ros.pipeline import SegmentationPipeline

#: Seconds between two log lines of the same error kind.
ERROR_LOG_PERIOD_S = 5.0
#: Characters of an unexpected exception's traceback that reach the log.
TRACEBACK_LIMIT = 8000


class SegmentationCore:
    """The segmentation node's behaviour, attached to an rclpy node.

    Args:
        node: A ``rclpy.node.Node`` or ``rclpy.lifecycle.LifecycleNode`` (a subclass); parameters are
            declared on it right away.

    Raises:
        ConfigError: If the initial parameters (params file, ``-p``) are invalid.
    """

    def __init__(self, node: Node) -> None:
        self.node = node
        self.log = node.get_logger()
        values = declare_parameters(node)
        unknown = unknown_overrides(node)
        if unknown:
            self.log.warning(f"ignoring unknown parameter(s) (typo?): {', '.join(unknown)}")
        self.settings = settings_from_values(values)
        self.classes = load_class_set(self.settings)
        drivable_class_ids(self.settings, self.classes)  # fail early on unknown class names
        self.stats = NodeStats()
        self._throttle = ErrorThrottle(ERROR_LOG_PERIOD_S)
        self.weather = WeatherSelector(
            self.settings.weather_mode, self.settings.weather_condition, self.settings.auto_knobs
        )
        self.ground = GroundPoseSource(node)
        # One stream per camera; the single-camera node has one unnamed stream (topics as before).
        self.streams = [CameraStream(name, i) for i, name in enumerate(self.settings.cameras or ("",))]
        self._processor = FrameProcessor(self)
        self._batcher: CameraBatcher[ImageMessage] | None = None
        self.pipeline: SegmentationPipeline | None = None
        self.backend_info: BackendInfo | None = None
        self.warnings: list[str] = []
        self.model_loads = 0
        self.outputs: Outputs | None = None
        self._subscriptions: list[Subscription] = []
        self._weather_sub: Subscription | None = None
        self._timer: Timer | None = None
        self._worker: FrameWorker | None = None
        self._published_condition: str | None = None
        self._log_handler = RosLogHandler(self.log)
        package_logger = logging.getLogger("causal_tune_ros")
        if package_logger.level == logging.NOTSET:
            package_logger.setLevel(logging.INFO)  # engine-build progress is logged at INFO
        package_logger.addHandler(self._log_handler)
        self.parameters = ParameterUpdates(node, values, self)

    # ------------------------------------------------------------------------------------ lifecycle

    @property
    def configured(self) -> bool:
        """Whether a model is loaded."""
        return self.pipeline is not None

    @property
    def active(self) -> bool:
        """Whether frames are being processed."""
        return self._worker is not None

    def configure(self) -> None:
        """Load the backend and build the pipeline (the slow part: model load, maybe an engine build).

        Raises:
            CausalTuneError: If no backend can be loaded (``CheckpointError``, ``BackendError``, ...).
        """
        s = self.settings
        spec = backend_spec(s)
        self.log.info(f"loading {spec.name} backend from {spec.checkpoint} ({spec.device}, {spec.precision})")
        backend, warning = load_backend_with_fallback(spec)
        self.warnings = [warning] if warning else []  # already logged through the log bridge
        if backend.num_classes > len(self.classes):
            backend.close()
            raise ConfigError(
                f"the model predicts {backend.num_classes} classes but the class list has only "
                f"{len(self.classes)} ({s.classes_file or 'packaged Cityscapes classes'}); set classes_file"
            )
        self.pipeline = self._build_pipeline(backend, s)
        self.model_loads += 1
        self.backend_info = info = backend.describe()
        self.log.info(
            f"model ready: {info.name} on {info.device} ({info.precision}), input "
            f"{info.input_size[0]}x{info.input_size[1]}, {info.num_classes} classes"
        )
        # Publishers exist from configure on (lifecycle publishers send only while active); the latched
        # ~/weather and /diagnostics report while inactive too.
        self.outputs = Outputs(self.node, s.output_reliability, s.qos_depth, s.cameras)
        for stream, out in zip(self.streams, self.outputs.streams, strict=True):
            stream.outputs = out
        if s.cameras and not s.use_tf:
            self.log.warning(
                "several cameras share the one drivable.camera.* mount for their drivable grids; set "
                "drivable.use_tf for each camera's own pose"
            )
        self._timer = self.node.create_timer(s.diagnostics_period, self.publish_diagnostics)
        self._published_condition = None
        self._publish_condition(self.weather.current)

    def activate(self) -> None:
        """Create the subscriptions and the worker thread (``configure`` must have run)."""
        s = self.settings
        qos = sensor_qos(s.reliability, s.qos_depth)
        compressed = s.input_transport == "compressed"
        image_type = CompressedImage if compressed else Image
        image_topic = "image/compressed" if compressed else "image"
        if s.cameras:
            batcher: CameraBatcher[ImageMessage] = CameraBatcher(len(self.streams), s.cameras_max_wait_s)
            self._batcher = batcher
            self._worker = FrameWorker(self._processor.process_batch, self._on_worker_error, mailbox=batcher)
        else:
            self._worker = FrameWorker(self._processor.process, self._on_worker_error)
        self._subscriptions = []
        info_qos = sensor_qos("best_effort", 1)
        for stream in self.streams:
            callback = self._on_image if not s.cameras else self._image_callback(stream.index)
            self._subscriptions.append(
                self.node.create_subscription(image_type, stream.topic(image_topic), callback, qos)
            )
            # camera_info is small and state-like: best effort matches reliable and best-effort publishers.
            self._subscriptions.append(
                self.node.create_subscription(
                    CameraInfo, stream.topic("camera_info"), stream.on_camera_info, info_qos
                )
            )
        self._sync_weather_subscription(active=True)
        self._worker.start()
        topics = ", ".join(self.node.resolve_topic_name(st.topic(image_topic)) for st in self.streams)
        batch = f"; {len(self.streams)} cameras batched" if s.cameras else ""
        self.log.info(
            f"listening on {topics} ({s.reliability}, depth {s.qos_depth}); outputs {s.output_reliability}"
            f"{batch}"
        )

    def deactivate(self) -> None:
        """Stop taking frames: destroy the subscriptions, join the worker (publishers stay)."""
        for sub in self._subscriptions:
            self.node.destroy_subscription(sub)
        self._subscriptions = []
        if self._weather_sub is not None:
            self.node.destroy_subscription(self._weather_sub)
            self._weather_sub = None
        if self._worker is not None:
            if not self._worker.stop(timeout=30.0):
                self.log.warning("worker thread did not stop within 30 s (inference still running)")
            self._worker = None
        self._batcher = None

    def cleanup(self) -> None:
        """Free the model, the publishers, the diagnostics timer (and the TF listener)."""
        if self._timer is not None:
            self.node.destroy_timer(self._timer)
            self._timer = None
        if self.outputs is not None:
            self.outputs.destroy()
            self.outputs = None
        if self.pipeline is not None:
            close = getattr(self.pipeline.backend, "close", None)
            if close is not None:
                close()
            self.pipeline = None
        self.backend_info = None
        self.warnings = []
        for stream in self.streams:
            stream.camera_info = None
            stream.outputs = None
        self.ground.close()

    def shutdown(self) -> None:
        """Deactivate, clean up and detach the log bridge (node destruction)."""
        if self.active:
            self.deactivate()
        self.cleanup()
        logging.getLogger("causal_tune_ros").removeHandler(self._log_handler)

    # ------------------------------------------------------------------------------------ callbacks

    def _on_image(self, msg: ImageMessage) -> None:
        # Cheap on purpose: conversion and inference happen in the worker.
        worker = self._worker
        if worker is not None:
            worker.submit(msg)

    def _image_callback(self, index: int) -> Callable[[ImageMessage], None]:
        """The image callback of camera ``index`` in the multi-camera node: into its batch slot."""

        def on_image(msg: ImageMessage) -> None:
            batcher = self._batcher
            if batcher is not None:
                batcher.put(index, msg)

        return on_image

    def _on_weather(self, msg: String) -> None:
        try:
            condition, used = self.weather.on_topic(msg.data)
        except ConfigError as exc:
            self.report_error("weather_topic", str(exc), frame_failed=False)
            return
        if used:
            self._publish_condition(condition)

    def _on_worker_error(self, exc: BaseException) -> None:
        self.report_error("internal", f"unexpected {type(exc).__name__}: {exc}", exc_info=exc)

    @property
    def debug_enabled(self) -> bool:
        """Whether the node logs at debug level (per-frame timings)."""
        return self.log.get_effective_level() <= LoggingSeverity.DEBUG

    def note_condition(self, condition: str) -> None:
        """Worker: the condition a frame ran with; published on ``~/weather`` when it changed."""
        if condition != self._published_condition:
            self._publish_condition(condition)

    # ------------------------------------------------------------------------------------ reporting

    def report_error(
        self,
        kind: str,
        message: str,
        frame_failed: bool = True,
        exc_info: BaseException | None = None,
        stream: CameraStream | None = None,
    ) -> None:
        """Count an error for diagnostics and log it, at most once per kind every few seconds.

        Args:
            kind: Throttling key (``image``, ``model``, ``grid``, ...).
            message: What went wrong, for the log and ``last_error``.
            frame_failed: Whether a frame was lost because of it.
            exc_info: An unexpected exception whose traceback should be logged.
            stream: The camera it concerns, if any (counted in its own diagnostics too).
        """
        message = clip_text(message)  # a peer controls parts of it (e.g. a 1 MB weather string)
        self.stats.record_error(message, frame_failed=frame_failed)
        if stream is not None:
            stream.stats.record_error(message, frame_failed=frame_failed)
        suppressed = self._throttle.admit(kind)
        if suppressed is None:
            return
        extra = f" ({suppressed} similar suppressed)" if suppressed else ""
        if exc_info is not None:
            import traceback

            extra += "\n" + clip_text("".join(traceback.format_exception(exc_info)), TRACEBACK_LIMIT)
        self.log.error(message + extra)

    def warn_once(self, kind: str, message: str) -> None:
        """Log a warning of ``kind`` at most once every few seconds."""
        if self._throttle.admit(f"warn:{kind}") is not None:
            self.log.warning(message)

    def _publish_condition(self, condition: str) -> None:
        outputs = self.outputs
        if outputs is None:
            return
        previous, self._published_condition = self._published_condition, condition
        outputs.publish_weather(condition)
        if previous is not None and previous != condition:
            self.log.info(f"weather {previous} -> {condition}: band {self.settings.band_for(condition)}")

    def diagnostics_info(self) -> dict[str, str]:
        """Key/values beside the statistics: backend, band, condition, ..."""
        s = self.settings
        condition = self.weather.current
        band = s.band_for(condition)
        info = self.backend_info
        size = info.input_size if info is not None else ("?", "?")
        values = {
            "backend": info.name if info is not None else "not loaded",
            "device": info.device if info is not None else "",
            "precision": info.precision if info is not None else "",
            "model_input": f"{size[0]}x{size[1]}",
            "model_loads": str(self.model_loads),
            "condition": condition,
            "weather_mode": self.weather.mode,
            "band": f"{band.low:.3f},{band.high:.3f}",
            "band_low": f"{band.low:.4f}",
            "band_high": f"{band.high:.4f}",
            "input_transport": s.input_transport,
            "state": "active" if self.active else "inactive",
        }
        if s.cameras:
            values["cameras"] = ",".join(s.cameras)
            values["batch_size"] = str(len(s.cameras))
            values["forwards"] = str(self._processor.forwards)
            values["cameras_max_wait_ms"] = f"{s.cameras_max_wait_s * 1e3:g}"
        if self.warnings:
            values["backend_warning"] = "; ".join(self.warnings)
        return values

    def publish_diagnostics(self) -> None:
        """Timer: one ``/diagnostics`` report (and the condition again on ``~/weather``)."""
        outputs = self.outputs
        if outputs is None:
            return
        from diagnostic_msgs.msg import DiagnosticArray

        name = self.node.get_fully_qualified_name()
        device = self.backend_info.device if self.backend_info is not None else ""
        batcher, worker = self._batcher, self._worker
        if batcher is not None:
            dropped = sum(batcher.dropped)
        else:
            dropped = getattr(worker.slot, "dropped", 0) if worker is not None else 0
        statuses = [
            build_status(
                f"{name}: segmentation",
                device,
                self.stats.snapshot(dropped),
                self.diagnostics_info(),
                self.warnings,
            )
        ]
        if self.settings.cameras:
            image = "image/compressed" if self.settings.input_transport == "compressed" else "image"
            for stream in self.streams:
                i = stream.index
                snap = stream.stats.snapshot(batcher.dropped[i] if batcher is not None else 0)
                info = {
                    "camera": stream.name,
                    "image_topic": self.node.resolve_topic_name(stream.topic(image)),
                    "frames_missed": str(batcher.missed[i] if batcher is not None else 0),
                }
                statuses.append(build_status(f"{name}: camera {stream.name}", device, snap, info, []))
        array = DiagnosticArray(status=statuses)
        array.header.stamp = self.node.get_clock().now().to_msg()
        outputs.diagnostics.publish(array)
        outputs.publish_weather(self.weather.current)

    # ------------------------------------------------------------------------------------ parameters

    def apply_settings(self, new: NodeSettings, names: set[str]) -> None:
        """Take accepted parameter values into use; nothing here rebuilds the model.

        Args:
            new: The settings after the change.
            names: The parameters that were set.
        """
        old = self.settings
        if new.classes_file != old.classes_file:
            self.classes = load_class_set(new)
        pipeline_inputs = ("drivable_classes", "classes_file", "overlay_alpha")
        changed = any(getattr(new, f) != getattr(old, f) for f in pipeline_inputs)
        if changed and self.pipeline is not None:
            # A new light pipeline object around the same loaded backend: no model reload.
            self.pipeline = self._build_pipeline(self.pipeline.backend, new)
        self.settings = new
        weather_names = {n for n in names if n.startswith("weather.mode") or n.startswith("weather.auto")}
        if weather_names or "weather.condition" in names:
            self.weather.reconfigure(
                new.weather_mode, new.weather_condition, new.auto_knobs, "weather.condition" in names
            )
            self._sync_weather_subscription(active=self.active)
            self._publish_condition(self.weather.current)
        if self._batcher is not None:
            self._batcher.max_wait_s = new.cameras_max_wait_s
        if new.diagnostics_period != old.diagnostics_period and self._timer is not None:
            self.node.destroy_timer(self._timer)
            self._timer = self.node.create_timer(new.diagnostics_period, self.publish_diagnostics)

    def _sync_weather_subscription(self, active: bool) -> None:
        """Subscribe to ``weather`` exactly while active in topic mode."""
        want = active and self.settings.weather_mode == "topic"
        if want and self._weather_sub is None:
            from rclpy.qos import QoSProfile, ReliabilityPolicy

            qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
            self._weather_sub = self.node.create_subscription(String, "weather", self._on_weather, qos)
        elif not want and self._weather_sub is not None:
            self.node.destroy_subscription(self._weather_sub)
            self._weather_sub = None

    # ------------------------------------------------------------------------------------ helpers

    def _build_pipeline(self, backend: Backend, settings: NodeSettings) -> SegmentationPipeline:
        return SegmentationPipeline(
            backend,
            self.classes,
            drivable_classes=settings.drivable_classes,
            overlay_alpha=settings.overlay_alpha,
        )
