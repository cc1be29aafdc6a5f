"""One fleet worker: a model loaded once, then whole bags replayed through it one after another.

:class:`BagProcessor` is plain Python (no Ray): :mod:`causal_tune_ros.fleet.cluster` turns it into a Ray
actor, and tests or a single process can use it directly. Each bag goes through
:class:`~causal_tune_ros.replay.Replayer` exactly as ``causal-tune replay`` runs it, into an attempt
folder the driver chose; the worker never touches the final outputs (the driver commits them).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from causal_tune_ros.bags import STRING_TYPE, BagMessage, BagReader, deserialize
from causal_tune_ros.band import Band
from causal_tune_ros.errors import CausalTuneError
from causal_tune_ros.fleet.index import FrameRecorder, write_table
from causal_tune_ros.fleet.inputs import BagJob
from causal_tune_ros.fleet.summary import BagResult
from causal_tune_ros.replay.replayer import Replayer, ReplayOptions


@dataclass(frozen=True)
class ModelSettings:
    """How each worker builds its pipeline (the arguments of ``replay``'s ``build_pipeline``).

    Paths must be readable at the same place on every node.
    """

    checkpoint: str | None = None
    backbone: str | None = None
    backend: str = "auto"
    input_size: str | None = None
    device: str = "cpu"
    precision: str = "fp32"
    threads: int | None = 1
    classes: str | None = None
    drivable_classes: str = "road"


@dataclass(frozen=True)
class WorkerConfig:
    """Everything a worker needs, sent once when it starts.

    Attributes:
        model: How to build the pipeline.
        options: Replay options for every bag (progress off, never overwrite: attempts are new folders).
        presets: Weather condition -> band.
    """

    model: ModelSettings
    options: ReplayOptions
    presets: dict[str, Band] = field(default_factory=dict)


class _ConfidencePipeline:
    """Passes frames to the real pipeline, always asking for the confidence map (the index's mean)."""

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline

    def process(self, rgb: Any, band: Any = None, overlay: bool = True, confidence: bool = True) -> Any:
        return self.pipeline.process(rgb, band, overlay=overlay, confidence=True)


class _WatchedBag(BagReader):
    """A :class:`BagReader` that reports valid weather messages to the recorder as the replay reads them."""

    def __init__(
        self, path: Path, weather_topic: str, presets: Mapping[str, Band], recorder: FrameRecorder
    ) -> None:
        super().__init__(path)
        self._weather_topic = weather_topic
        self._presets = presets
        self._recorder = recorder

    def messages(self, topics: Iterable[str] | None = None) -> Iterator[BagMessage]:
        for msg in super().messages(topics):
            if msg.topic == self._weather_topic and msg.msgtype == STRING_TYPE:
                try:
                    value = str(deserialize(msg.data, STRING_TYPE).data).strip().lower()
                except CausalTuneError:
                    value = ""
                if value in self._presets:
                    self._recorder.note_weather(msg.timestamp)
            yield msg


class BagProcessor:
    """Holds one loaded segmentation pipeline for its whole life and replays bags through it.

    A model that cannot be loaded does not raise here (a Ray actor whose constructor raises dies with a
    stack trace instead of a message): :attr:`load_error` says why, :meth:`describe` reports it and
    :meth:`process` fails every bag with it.

    Args:
        config: The :class:`WorkerConfig`.
    """

    def __init__(self, config: WorkerConfig) -> None:
        from causal_tune_ros.replay.command import build_pipeline

        self.config = config
        self.load_error: str | None = None
        self.pipeline: Any = None
        self.warning: str | None = None
        self.class_names: list[str] = []
        m = config.model
        try:
            self.pipeline, self.warning = build_pipeline(
                checkpoint=m.checkpoint,
                backbone=m.backbone,
                backend=m.backend,
                input_size=m.input_size,
                device=m.device,
                precision=m.precision,
                threads=m.threads,
                classes=m.classes,
                drivable_classes=m.drivable_classes,
            )
            self.class_names = list(self.pipeline.classes.names)
            # One frame at load time, so that the first bag does not pay for lazy initialisation
            # (allocator, kernels, cuDNN / TensorRT autotuning).
            h, w = self.pipeline.input_size
            self.pipeline.process(np.zeros((h, w, 3), dtype=np.uint8), Band(), overlay=True, confidence=True)
        except CausalTuneError as exc:
            self.load_error = f"{type(exc).__name__}: {exc}"
        self._proxy = _ConfidencePipeline(self.pipeline)
        self._lock = threading.Lock()
        self._current: tuple[str, FrameRecorder] | None = None
        self.bags_done = 0

    @property
    def worker_id(self) -> str:
        """``pid@host`` of this worker."""
        return f"{os.getpid()}@{socket.gethostname()}"

    def describe(self) -> dict[str, Any]:
        """Who this worker is: ``pid``, ``host``, ``worker`` id, backend description, load warning and
        load ``error`` (``None`` when the model loaded)."""
        return {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "worker": self.worker_id,
            "backend": self.pipeline.describe() if self.pipeline is not None else None,
            "warning": self.warning,
            "error": self.load_error,
        }

    def progress(self) -> tuple[str | None, int, int, str]:
        """``(bag name or None, frames of it done so far, pid, host)``: safe to call while a bag runs."""
        with self._lock:
            current = self._current
        if current is None:
            return None, 0, os.getpid(), socket.gethostname()
        return current[0], len(current[1]), os.getpid(), socket.gethostname()

    def process(self, job: BagJob, attempt: str | Path, metadata: Mapping[str, Any]) -> BagResult:
        """Replay one bag into ``attempt/bag`` and write its index rows to ``attempt/index.parquet``.

        Args:
            job: The input bag.
            attempt: A folder that does not exist yet (created here; removed again on failure).
            metadata: JSON-able facts stored in the part file (settings hash, input identity...); the
                bag's summary is added under ``"summary"``.

        Returns:
            A :class:`BagResult` with status ``done`` (results in ``attempt``) or ``failed`` (with the
            error; ``attempt`` removed). Errors of the bag never raise: a corrupt bag is a result.
        """
        folder = Path(attempt)
        started = time.perf_counter()
        options = self.config.options
        recorder = FrameRecorder(job.name, self.class_names, options.weather)
        result = BagResult(name=job.name, input=str(job.path), worker=self.worker_id)
        if self.load_error is not None:
            result.status, result.error = "failed", f"the worker could not load the model: {self.load_error}"
            return result
        with self._lock:
            self._current = (job.name, recorder)
        try:
            folder.mkdir(parents=True)
            with _WatchedBag(job.path, options.weather_topic, self.config.presets, recorder) as bag:
                replayer = Replayer(
                    self._proxy,
                    options,
                    band_presets=self.config.presets,
                    on_frame=recorder.on_frame,
                    on_skip=recorder.on_skip,
                )
                summary = replayer.run(bag, folder / "bag")
            result.fill(summary, seconds=time.perf_counter() - started)
            if recorder.skipped != summary.skipped:
                result.note = (
                    f"the index has {recorder.skipped} of the {summary.skipped} skipped frames "
                    "(the replay did not report the others frame by frame)"
                )
            meta = dict(metadata)
            meta.update(name=job.name, summary=result.to_dict())
            write_table(recorder.table(meta), folder / "index.parquet")
            result.rows = len(recorder)
            result.status = "done"
            result.attempt = str(folder)
        except CausalTuneError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            result.status = "failed"
            result.error = str(exc)
            result.seconds = time.perf_counter() - started
        finally:
            with self._lock:
                self._current = None
            self.bags_done += 1
        return result
