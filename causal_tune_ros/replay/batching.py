"""Camera batches of a replay: frames of several cameras that arrive close together run in one forward pass.

A batch opens with the first frame after the previous batch (log time ``t0``) and takes at most one frame
per camera. It closes when every camera has a frame in it, when a camera already in it sends another
frame (that frame opens the next batch), when the bag's time passes ``t0 + wait`` (a camera that is late
or has dropped frames never holds the others back for more than ``wait`` of bag time), or at the end of
the bag.

The model sees each batch at the same size, the number of cameras (an engine or a session then holds one
shape): frames of the cameras that are missing are stood in for by repeats of a frame that is present,
whose results are thrown away. The band is a single input of the model, so cameras under different
weather bands in one batch run in one call per band.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from causal_tune_ros.band import Band
from causal_tune_ros.errors import CausalTuneError
from causal_tune_ros.replay.reading import Frame


class CameraBatcher:
    """Groups frames of ``cameras`` into batches by bag time (see the module docstring).

    Args:
        cameras: The camera topics replayed.
        wait_ns: The longest a batch stays open, in nanoseconds of bag (log) time after its first frame.
    """

    def __init__(self, cameras: Sequence[str], wait_ns: int) -> None:
        self.cameras = frozenset(cameras)
        self.wait_ns = int(wait_ns)
        self._open: list[Frame] = []

    def due(self, now_ns: int) -> list[Frame]:
        """Close the open batch if bag time ``now_ns`` is past its deadline; the closed batch, else ``[]``."""
        if self._open and now_ns > self._open[0].stamp + self.wait_ns:
            return self.flush()
        return []

    def add(self, frame: Frame) -> list[Frame]:
        """Add a frame; the batch this closes (``[]`` while the open batch waits for more cameras)."""
        closed: list[Frame] = []
        if any(f.topic == frame.topic for f in self._open):
            closed = self.flush()
        self._open.append(frame)
        if {f.topic for f in self._open} >= self.cameras:
            closed += self.flush()  # (closed is empty here unless a repeat closed one just before)
        return closed

    def flush(self) -> list[Frame]:
        """Close the open batch now (end of the bag); the batch, possibly ``[]``."""
        batch, self._open = self._open, []
        return batch


class BatchPipeline(Protocol):
    """What camera batching needs of the pipeline (``SegmentationPipeline`` has it)."""

    def process_batch(
        self, rgbs: Sequence[np.ndarray], band: Band, overlay: bool = True, confidence: bool = True
    ) -> list[Any]: ...


def segment_batch(pipeline: BatchPipeline, frames: Sequence[Frame], size: int, overlay: bool) -> None:
    """Segment decoded frames in calls of exactly ``size`` images, one call per band; sets ``frame.result``.

    Args:
        pipeline: Has ``process_batch`` (one backend call per list of images).
        frames: Decoded frames (``rgb`` set), at most ``size`` per band.
        size: The static batch size (the number of cameras).
        overlay: Also render the overlays.

    A call that fails (``CausalTuneError``, e.g. non-finite output) marks its frames as failed with the
    reason (``frame.error`` "model failed: ..."); the other bands' calls still run.
    """
    groups: dict[Band, list[Frame]] = {}
    for frame in frames:
        groups.setdefault(frame.band, []).append(frame)
    for band, group in groups.items():
        rgbs = [f.rgb for f in group]
        rgbs += [rgbs[0]] * max(size - len(rgbs), 0)  # stand-ins for missing cameras, results dropped
        try:
            results = pipeline.process_batch(rgbs, band, overlay=overlay, confidence=False)
        except CausalTuneError as exc:
            for frame in group:
                frame.error = f"model failed: {exc}"
            continue
        for frame, result in zip(group, results, strict=False):
            frame.result = result
