"""What the segmentation node does, independent of whether its rclpy node is plain or managed.

:class:`SegmentationCore` is attached to an rclpy ``Node`` (or ``LifecycleNode``) and follows the
lifecycle vocabulary: ``configure`` loads the model and creates the publishers (lifecycle publishers on a
managed node) and the diagnostics timer, ``activate`` creates the subscriptions and the worker,
``deactivate`` undoes that, ``cleanup`` frees the model and the publishers. The plain node runs
configure + activate in its constructor.

One code path serves ROS 2 Humble and Jazzy: rclpy API that Humble lacks (the post-set parameter
callback) is feature-detected, see :meth:`SegmentationCore._register_parameter_callbacks`.

Data flow (one way): image callback -> :class:`~causal_tune_ros.node.worker.LatestSlot` (only the newest
message waits) -> worker thread: message -> RGB (imaging) -> condition -> band -> pipeline -> messages.
Callbacks only stash references, so the executor never waits for inference.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np
from rcl_interfaces.msg import SetParametersResult
from rclpy.logging import LoggingSeverity
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import String

from causal_tune_ros.backends import BackendInfo, load_backend_with_fallback
from causal_tune_ros.classes import ClassSet, load_classes
from causal_tune_ros.drivable import GridSpec, project_to_grid
from causal_tune_ros.errors import (
    BackendError,
    CausalTuneError,
    ConfigError,
    ImageConversionError,
)
from causal_tune_ros.imaging import compressed_to_rgb, image_to_rgb
from causal_tune_ros.node.diagnostics import ErrorThrottle, NodeStats, build_status, clip_text
from causal_tune_ros.node.ground import GroundPoseSource
from causal_tune_ros.node.model_loading import RosLogHandler, backend_spec
from causal_tune_ros.node.outputs import Outputs, confidence_image, occupancy_grid, sensor_qos
from causal_tune_ros.node.parameters import (
    NodeSettings,
    declare_parameters,
    plain_value,
    restart_only_changes,
    settings_from_values,
    spec_by_name,
    unknown_overrides,
)
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
        node: A ``rclpy.node.Node`` or ``rclpy.lifecycle.LifecycleNode``; parameters are declared on it
            right away.

    Raises:
        ConfigError: If the initial parameters (params file, ``-p``) are invalid.
    """

    def __init__(self, node: Any) -> None:
        self.node = node
        self.log = node.get_logger()
        self._values = declare_parameters(node)
        unknown = unknown_overrides(node)
        if unknown:
            self.log.warning(f"ignoring unknown parameter(s) (typo?): {', '.join(unknown)}")
        self.settings = settings_from_values(self._values)
        self.classes = self._load_classes(self.settings)
        self._drivable_class_ids(self.settings, self.classes)  # fail early on unknown class names
        self.stats = NodeStats()
        self._throttle = ErrorThrottle(ERROR_LOG_PERIOD_S)
        self.weather = WeatherSelector(
            self.settings.weather_mode, self.settings.weather_condition, self.settings.auto_knobs
        )
        self._ground = GroundPoseSource(node)
        self._camera_info: CameraInfo | None = None
        self.pipeline: SegmentationPipeline | None = None
        self.backend_info: BackendInfo | None = None
        self.warnings: list[str] = []
        self.outputs: Outputs | None = None
        self._subscriptions: list[Any] = []
        self._weather_sub: Any = None
        self._timer: Any = None
        self._worker: FrameWorker | None = None
        self._published_condition: str | None = None
        self._apply_lock = threading.Lock()
        self._log_handler = RosLogHandler(self.log)
        package_logger = logging.getLogger("causal_tune_ros")
        if package_logger.level == logging.NOTSET:
            package_logger.setLevel(logging.INFO)  # engine-build progress is logged at INFO
        package_logger.addHandler(self._log_handler)
        self._register_parameter_callbacks(node)

    def _register_parameter_callbacks(self, node: Any) -> None:
        """Validate parameter changes before they are set and apply them once they are.

        rclpy from Iron on (Jazzy) has a post-set callback; Humble's rclpy has only the on-set one, which
        runs before the values are stored. There the change is validated and, if accepted, applied in the
        same callback: rclpy checks ranges before calling it and stores the values right after it
        succeeds, and the node reads values from its own copy, so both paths end in the same state.
        """
        post_set = getattr(node, "add_post_set_parameters_callback", None)
        if post_set is not None:
            node.add_on_set_parameters_callback(self._validate_parameters)
            post_set(self._apply_parameters)
        else:
            node.add_on_set_parameters_callback(self._validate_and_apply_parameters)

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
        self.backend_info = info = backend.describe()
        self.log.info(
            f"model ready: {info.name} on {info.device} ({info.precision}), input "
            f"{info.input_size[0]}x{info.input_size[1]}, {info.num_classes} classes"
        )
        # Publishers exist from configure on (lifecycle publishers send only while active); the latched
        # ~/weather and /diagnostics report while inactive too.
        self.outputs = Outputs(self.node, s.output_reliability, s.qos_depth)
        self._timer = self.node.create_timer(s.diagnostics_period, self.publish_diagnostics)
        self._published_condition = None
        self._publish_condition(self.weather.current)

    def activate(self) -> None:
        """Create the subscriptions and the worker thread (``configure`` must have run)."""
        s = self.settings
        qos = sensor_qos(s.reliability, s.qos_depth)
        if s.input_transport == "compressed":
            image_sub = self.node.create_subscription(
                CompressedImage, "image/compressed", self._on_image, qos
            )
        else:
            image_sub = self.node.create_subscription(Image, "image", self._on_image, qos)
        # camera_info is small and state-like: best effort matches reliable and best-effort publishers.
        info_sub = self.node.create_subscription(
            CameraInfo, "camera_info", self._on_camera_info, sensor_qos("best_effort", 1)
        )
        self._subscriptions = [image_sub, info_sub]
        self._sync_weather_subscription(active=True)
        self._worker = FrameWorker(self._process, self._on_worker_error)
        self._worker.start()
        topic = "image/compressed" if s.input_transport == "compressed" else "image"
        self.log.info(
            f"listening on {self.node.resolve_topic_name(topic)} ({s.reliability}, depth {s.qos_depth}); "
            f"outputs {s.output_reliability}"
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
        self._camera_info = None
        self._ground.close()

    def shutdown(self) -> None:
        """Deactivate, clean up and detach the log bridge (node destruction)."""
        if self.active:
            self.deactivate()
        self.cleanup()
        logging.getLogger("causal_tune_ros").removeHandler(self._log_handler)

    # ------------------------------------------------------------------------------------ callbacks

    def _on_image(self, msg: Image | CompressedImage) -> None:
        # Cheap on purpose: conversion and inference happen in the worker.
        worker = self._worker
        if worker is not None:
            worker.submit(msg)

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._camera_info = msg

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

    # ------------------------------------------------------------------------------------ processing

    def _process(self, msg: Image | CompressedImage) -> None:
        """Worker thread: one message in, every output published (or one error reported)."""
        s = self.settings
        pipeline, outputs = self.pipeline, self.outputs
        if pipeline is None or outputs is None:
            return
        started = time.perf_counter()
        try:
            if isinstance(msg, CompressedImage):
                rgb = compressed_to_rgb(msg, max_pixels=s.max_image_pixels)
            else:
                rgb = image_to_rgb(msg, max_pixels=s.max_image_pixels)
        except ImageConversionError as exc:
            self.report_error("image", f"bad image (stamp {_stamp_text(msg.header)}): {exc}")
            return
        converted = time.perf_counter()
        condition = self.weather.for_frame(
            rgb, msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        )
        band = s.band_for(condition)
        try:
            result = pipeline.process(
                rgb,
                band,
                overlay=s.publish_overlay and outputs.watched(outputs.overlay),
                confidence=s.publish_confidence and outputs.watched(outputs.confidence),
            )
        except CausalTuneError as exc:
            kind = "model" if isinstance(exc, BackendError) else "pipeline"
            self.report_error(kind, f"{kind} failure (stamp {_stamp_text(msg.header)}): {exc}")
            return
        if condition != self._published_condition:
            self._publish_condition(condition)
        processed = time.perf_counter()
        latency = self._publish(result, msg.header, s, outputs)
        if self._debug:
            ms = 1e3
            self.log.debug(
                f"frame {_stamp_text(msg.header)}: convert {(converted - started) * ms:.2f} ms, "
                f"model {result.model_seconds * ms:.2f} ms, pipeline {result.total_seconds * ms:.2f} ms, "
                f"publish {(time.perf_counter() - processed) * ms:.2f} ms, "
                f"latency {'n/a' if latency is None else f'{latency * ms:.2f}'} ms"
            )

    @property
    def _debug(self) -> bool:
        return self.log.get_effective_level() <= LoggingSeverity.DEBUG

    def _publish(self, result: Any, header: Any, s: NodeSettings, outputs: Outputs) -> float | None:
        """Publish the class mask first (the latency-critical output), then the others.

        Returns:
            ``now - header.stamp`` in seconds after the last output went out (None without a stamp).
        """
        outputs.publish_image(outputs.class_mask, result.class_mask, "mono8", header)
        outputs.publish_image(outputs.drivable_mask, result.drivable_mask, "mono8", header)
        if result.overlay is not None:
            outputs.publish_image(outputs.overlay, result.overlay, "rgb8", header)
        if result.confidence is not None:
            conf = confidence_image(result.confidence, s.confidence_encoding)
            outputs.publish_image(outputs.confidence, conf, s.confidence_encoding, header)
        if s.grid_enabled and outputs.watched(outputs.drivable_grid):
            self._publish_grid(result.drivable_mask, header, s, outputs)
        now_ns = self.node.get_clock().now().nanoseconds
        stamp_ns = header.stamp.sec * 1_000_000_000 + header.stamp.nanosec
        latency = (now_ns - stamp_ns) * 1e-9 if stamp_ns > 0 else None
        self.stats.record_frame(latency, float(result.model_seconds), float(result.total_seconds))
        return latency

    def _publish_grid(self, mask: np.ndarray, header: Any, s: NodeSettings, outputs: Outputs) -> None:
        info = self._camera_info
        if info is None:
            return  # no intrinsics yet; the grid starts with the first camera_info
        try:
            K = _intrinsics_for(info, mask.shape)
            pose, note = self._ground.pose(s.camera, s.use_tf, s.grid_frame, header)
            if note:
                self._warn_once("ground", note)
            grid = GridSpec(resolution=s.grid_resolution, length_m=s.grid_length, width_m=s.grid_width)
            cells = project_to_grid(mask, K, pose, grid)
        except ConfigError as exc:
            self.report_error("grid", f"no drivable grid: {exc}", frame_failed=False)
            return
        outputs.drivable_grid.publish(occupancy_grid(cells, grid, s.grid_frame, header.stamp))

    # ------------------------------------------------------------------------------------ reporting

    def report_error(
        self, kind: str, message: str, frame_failed: bool = True, exc_info: BaseException | None = None
    ) -> None:
        """Count an error for diagnostics and log it, at most once per kind every few seconds.

        Args:
            kind: Throttling key (``image``, ``model``, ``grid``, ...).
            message: What went wrong, for the log and ``last_error``.
            frame_failed: Whether a frame was lost because of it.
            exc_info: An unexpected exception whose traceback should be logged.
        """
        message = clip_text(message)  # a peer controls parts of it (e.g. a 1 MB weather string)
        self.stats.record_error(message, frame_failed=frame_failed)
        suppressed = self._throttle.admit(kind)
        if suppressed is None:
            return
        extra = f" ({suppressed} similar suppressed)" if suppressed else ""
        if exc_info is not None:
            import traceback

            extra += "\n" + clip_text("".join(traceback.format_exception(exc_info)), TRACEBACK_LIMIT)
        self.log.error(message + extra)

    def _warn_once(self, kind: str, message: str) -> None:
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
            "condition": condition,
            "weather_mode": self.weather.mode,
            "band": f"{band.low:.3f},{band.high:.3f}",
            "band_low": f"{band.low:.4f}",
            "band_high": f"{band.high:.4f}",
            "input_transport": s.input_transport,
            "state": "active" if self.active else "inactive",
        }
        if self.warnings:
            values["backend_warning"] = "; ".join(self.warnings)
        return values

    def publish_diagnostics(self) -> None:
        """Timer: one ``/diagnostics`` report (and the condition again on ``~/weather``)."""
        outputs = self.outputs
        if outputs is None:
            return
        from diagnostic_msgs.msg import DiagnosticArray

        dropped = self._worker.slot.dropped if self._worker is not None else 0
        snap = self.stats.snapshot(dropped)
        status = build_status(
            f"{self.node.get_fully_qualified_name()}: segmentation",
            self.backend_info.device if self.backend_info is not None else "",
            snap,
            self.diagnostics_info(),
            self.warnings,
        )
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.node.get_clock().now().to_msg()
        outputs.diagnostics.publish(array)
        outputs.publish_weather(self.weather.current)

    # ------------------------------------------------------------------------------------ parameters

    def _validate_parameters(self, params: list[Any]) -> SetParametersResult:
        """on-set callback: accept a change only if the whole resulting configuration is valid.

        Restart-only parameters are refused first, before any value is looked at or any file (the class
        list) is opened: any peer on the network can call the parameter service.
        """
        specs = spec_by_name()
        candidate = dict(self._values)
        for p in params:
            if p.name in specs:
                candidate[p.name] = plain_value(p.value)
        fixed = restart_only_changes(self._values, candidate)
        if fixed and self.configured:
            return SetParametersResult(
                successful=False,
                reason=f"{', '.join(fixed)} cannot change while the model is loaded; restart the node "
                "(lifecycle node: deactivate and clean up first)",
            )
        try:
            settings = settings_from_values(candidate)
            same_file = settings.classes_file == self.settings.classes_file
            classes = self.classes if same_file else self._load_classes(settings)
            try:
                self._drivable_class_ids(settings, classes)
            except ConfigError:
                if same_file:
                    raise
                # The names come from a file a peer named: do not list them back.
                raise ConfigError(
                    f"drivable.classes names a class that {settings.classes_file} does not list"
                ) from None
        except ConfigError as exc:
            return SetParametersResult(successful=False, reason=clip_text(str(exc)))
        return SetParametersResult(successful=True)

    def _validate_and_apply_parameters(self, params: list[Any]) -> SetParametersResult:
        """on-set callback where rclpy has no post-set callback (Humble): validate, then apply."""
        result = self._validate_parameters(params)
        if result.successful:
            self._apply_parameters(params)
        return result

    def _apply_parameters(self, params: list[Any]) -> None:
        """post-set callback: swap in the new settings; nothing here rebuilds the model."""
        specs = spec_by_name()
        names = {p.name for p in params if p.name in specs}
        if not names:
            return
        with self._apply_lock:
            for p in params:
                if p.name in specs:
                    self._values[p.name] = plain_value(p.value)
            old, new = self.settings, settings_from_values(self._values)
            if new.classes_file != old.classes_file:
                self.classes = self._load_classes(new)
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
            if new.diagnostics_period != old.diagnostics_period and self._timer is not None:
                self.node.destroy_timer(self._timer)
                self._timer = self.node.create_timer(new.diagnostics_period, self.publish_diagnostics)
        self.log.info(
            clip_text("parameters set: " + ", ".join(f"{n}={self._values[n]!r}" for n in sorted(names)))
        )

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

    @staticmethod
    def _load_classes(settings: NodeSettings) -> ClassSet:
        return load_classes(settings.classes_file or None)

    @staticmethod
    def _drivable_class_ids(settings: NodeSettings, classes: ClassSet) -> tuple[int, ...]:
        """Train ids of ``drivable.classes`` (used to validate the names).

        Raises:
            ConfigError: Naming an unknown class.
        """
        try:
            return tuple(classes.index(name) for name in settings.drivable_classes)
        except ConfigError as exc:
            raise ConfigError(f"drivable.classes: {exc}") from None

    def _build_pipeline(self, backend: Any, settings: NodeSettings) -> SegmentationPipeline:
        return SegmentationPipeline(
            backend,
            self.classes,
            drivable_classes=settings.drivable_classes,
            overlay_alpha=settings.overlay_alpha,
        )


def _stamp_text(header: Any) -> str:
    return f"{header.stamp.sec}.{header.stamp.nanosec:09d}"


def _intrinsics_for(info: CameraInfo, shape: tuple[int, int]) -> np.ndarray:
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
