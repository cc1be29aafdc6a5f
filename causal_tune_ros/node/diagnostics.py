"""Run-time statistics of the segmentation node and their ``/diagnostics`` message.

:class:`NodeStats` is plain Python (thread safe, no rclpy) so that the worker thread records into it and
the diagnostics timer reads from it. :func:`build_status` turns a snapshot into a
``diagnostic_msgs/DiagnosticStatus``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

#: Latency percentiles are taken over this many most recent frames.
LATENCY_WINDOW = 200
#: Longest text (characters) that goes into a log line or a diagnostics value.
TEXT_LIMIT = 500


def clip_text(text: str, limit: int = TEXT_LIMIT) -> str:
    """``text`` cut to at most ``limit`` characters plus a note of how much was cut.

    Messages can carry strings a peer controls (a weather topic string, a parameter value), so
    everything that reaches the log or ``/diagnostics`` goes through this.

    Args:
        text: Any text.
        limit: Characters kept.

    Returns:
        ``text`` unchanged if short enough, else its head and ``... [N more characters]``.
    """
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [{len(text) - limit} more characters]"


OK, WARN, ERROR = 0, 1, 2


@dataclass(frozen=True)
class StatsSnapshot:
    """What the diagnostics report shows, computed at one instant.

    Attributes:
        rate_hz: Published frames per second since the previous snapshot.
        latency_p50_ms: Median of ``now - header.stamp`` at publish time over recent frames (None: no
            frame with a usable stamp yet).
        latency_p95_ms: 95th percentile of the same.
        model_p50_ms: Median model-only time (backend inference) over recent frames.
        pipeline_p50_ms: Median time of the whole pipeline (resize, inference, upsampling, overlay).
        processed: Frames published since start.
        dropped: Frames replaced by a newer one before the worker took them.
        failed: Frames that could not be processed (bad input, model failure).
        errors_in_window: Faults since the previous snapshot.
        last_error: The most recent failure message ('' if none).
        last_error_age_s: Seconds since that failure (None if none).
    """

    rate_hz: float
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    model_p50_ms: float | None
    pipeline_p50_ms: float | None
    processed: int
    dropped: int
    failed: int
    errors_in_window: int
    last_error: str
    last_error_age_s: float | None


@dataclass
class NodeStats:
    """Counters and recent timings, written by the worker and read by the diagnostics timer.

    Args:
        clock: Monotonic seconds (injectable for tests).
    """

    clock: Callable[[], float] = time.monotonic
    processed: int = 0
    failed: int = 0
    last_error: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _latency: deque = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW), repr=False)
    _model: deque = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW), repr=False)
    _pipeline: deque = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW), repr=False)
    _window_frames: int = 0
    _window_errors: int = 0
    _window_start: float | None = None
    _last_error_time: float | None = None

    def record_frame(self, latency_s: float | None, model_s: float, pipeline_s: float | None = None) -> None:
        """Count one published frame.

        Args:
            latency_s: ``now - header.stamp`` at publish (None when the input had no stamp).
            model_s: Model-only seconds for this frame (backend inference).
            pipeline_s: Seconds of the whole pipeline call (resize, inference, upsampling, overlay).
        """
        with self._lock:
            self.processed += 1
            self._window_frames += 1
            if latency_s is not None:
                self._latency.append(latency_s)
            self._model.append(model_s)
            self._pipeline.append(model_s if pipeline_s is None else pipeline_s)

    def record_error(self, message: str, frame_failed: bool = True) -> None:
        """Count a run-time fault and remember its message.

        Args:
            message: What went wrong.
            frame_failed: Whether a frame was lost (counted in ``frames_failed``); faults that do not
                lose a frame (a bad weather message, a missing grid) only raise the warning.
        """
        with self._lock:
            if frame_failed:
                self.failed += 1
            self._window_errors += 1
            self.last_error = clip_text(message)
            self._last_error_time = self.clock()

    def snapshot(self, dropped: int) -> StatsSnapshot:
        """Summarise and start a new rate window.

        Args:
            dropped: Current dropped-frame count (kept by the hand-off slot).

        Returns:
            The figures for the diagnostics report.
        """
        now = self.clock()
        with self._lock:
            start = self._window_start if self._window_start is not None else now
            elapsed = now - start
            rate = self._window_frames / elapsed if elapsed > 0 else 0.0
            lat = np.asarray(self._latency, dtype=np.float64) * 1e3
            model = np.asarray(self._model, dtype=np.float64) * 1e3
            pipeline = np.asarray(self._pipeline, dtype=np.float64) * 1e3
            snap = StatsSnapshot(
                rate_hz=rate,
                latency_p50_ms=float(np.percentile(lat, 50)) if lat.size else None,
                latency_p95_ms=float(np.percentile(lat, 95)) if lat.size else None,
                model_p50_ms=float(np.percentile(model, 50)) if model.size else None,
                pipeline_p50_ms=float(np.percentile(pipeline, 50)) if pipeline.size else None,
                processed=self.processed,
                dropped=dropped,
                failed=self.failed,
                errors_in_window=self._window_errors,
                last_error=self.last_error,
                last_error_age_s=None if self._last_error_time is None else now - self._last_error_time,
            )
            self._window_start, self._window_frames, self._window_errors = now, 0, 0
        return snap


class ErrorThrottle:
    """Decides which error messages reach the log: at most one per kind and period.

    rclpy's own ``throttle_duration_sec`` throttles per call site, so two different faults in a row
    would hide each other; this keys on a kind (e.g. the exception type) instead and reports how many
    were suppressed in between.

    Args:
        period_s: Minimum seconds between two log lines of the same kind.
        clock: Monotonic seconds (injectable for tests).
    """

    def __init__(self, period_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.period_s = period_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def admit(self, kind: str) -> int | None:
        """Whether to log an error of ``kind`` now.

        Args:
            kind: Throttling key.

        Returns:
            None to stay quiet, else how many errors of this kind were suppressed since the last line.
        """
        now = self._clock()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < self.period_s:
                self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
                return None
            self._last[kind] = now
            return self._suppressed.pop(kind, 0)


def _fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def status_level(snap: StatsSnapshot, warnings: list[str]) -> tuple[int, str]:
    """Diagnostic level and one-line message for a snapshot.

    Args:
        snap: Current figures.
        warnings: Standing warnings (e.g. a backend fallback), shown until they go away.

    Returns:
        ``(level, message)``: WARN when frames failed since the previous report or a warning stands.
    """
    if snap.errors_in_window:
        return WARN, f"{snap.errors_in_window} frame(s) failed: {snap.last_error}"
    if warnings:
        return WARN, "; ".join(warnings)
    if snap.processed == 0:
        return OK, "waiting for images"
    return OK, f"running at {snap.rate_hz:.1f} Hz"


def snapshot_values(snap: StatsSnapshot, info: Mapping[str, str]) -> list[tuple[str, str]]:
    """Key/value pairs of the report: the figures, then ``info`` (backend, band, condition, ...)."""
    values = [
        ("rate_hz", _fmt(snap.rate_hz, 2)),
        ("latency_p50_ms", _fmt(snap.latency_p50_ms)),
        ("latency_p95_ms", _fmt(snap.latency_p95_ms)),
        ("model_p50_ms", _fmt(snap.model_p50_ms)),
        ("pipeline_p50_ms", _fmt(snap.pipeline_p50_ms)),
        ("frames_processed", str(snap.processed)),
        ("frames_dropped", str(snap.dropped)),
        ("frames_failed", str(snap.failed)),
        ("last_error", snap.last_error),
        ("last_error_age_s", _fmt(snap.last_error_age_s)),
    ]
    values.extend((str(k), str(v)) for k, v in info.items())
    return values


def build_status(
    name: str,
    hardware_id: str,
    snap: StatsSnapshot,
    info: Mapping[str, str],
    warnings: list[str],
):
    """One ``diagnostic_msgs/DiagnosticStatus`` for the node.

    Args:
        name: Status name (the node's fully qualified name plus a suffix).
        hardware_id: Device the model runs on.
        snap: Current figures.
        info: Extra key/values (backend, band, condition, ...).
        warnings: Standing warnings.

    Returns:
        The status message.
    """
    from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

    level, message = status_level(snap, warnings)
    status = DiagnosticStatus()
    status.level = bytes([level])
    status.name = name
    status.message = clip_text(message)
    status.hardware_id = clip_text(hardware_id)
    status.values = [KeyValue(key=k, value=clip_text(v)) for k, v in snapshot_values(snap, info)]
    return status
