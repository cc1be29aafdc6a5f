"""Latest-frame-per-camera hand-off for the multi-camera node: one batch of frames per forward (no rclpy).

Each camera has one slot that keeps only its newest message (an older one still waiting is replaced and
counted as dropped). The worker takes a *batch*: as soon as one camera has a frame, it waits until every
camera has one, but never longer than ``max_wait_s`` after the oldest waiting frame arrived; then it
takes whatever is there. A camera without a frame in that batch is ``None`` (the caller fills its place
so the batch shape stays static) and is counted as missed. A late camera therefore delays the others by
at most ``max_wait_s``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from causal_tune_ros.errors import ConfigError

T = TypeVar("T")


class CameraBatcher(Generic[T]):
    """One latest-item slot per camera and a batch ``take``. Thread safe.

    Args:
        cameras: Number of cameras (the batch size).
        max_wait_s: Longest wait, after the oldest waiting frame arrived, for the other cameras.
        clock: Monotonic seconds (injectable for tests).

    Raises:
        ConfigError: For fewer than one camera.

    Attributes:
        dropped: Per camera, frames replaced by a newer one before a batch took them.
        missed: Per camera, batches taken without a frame of this camera.
        accepted: Per camera, frames put in total.
    """

    def __init__(self, cameras: int, max_wait_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if cameras < 1:
            raise ConfigError(f"a camera batch needs at least one camera, got {cameras}")
        self._cond = threading.Condition()
        self._clock = clock
        self.max_wait_s = float(max_wait_s)
        self._items: list[T | None] = [None] * cameras
        self._arrived: list[float | None] = [None] * cameras
        self._closed = False
        self.dropped = [0] * cameras
        self.missed = [0] * cameras
        self.accepted = [0] * cameras

    @property
    def size(self) -> int:
        """The number of cameras."""
        return len(self._items)

    def put(self, camera: int, item: T) -> bool:
        """Store ``item`` as camera ``camera``'s newest frame.

        Args:
            camera: Camera index in ``[0, size)``.
            item: The frame (not None).

        Returns:
            True if an older, untaken frame of this camera was dropped to make room.
        """
        with self._cond:
            replaced = self._arrived[camera] is not None
            if replaced:
                self.dropped[camera] += 1
            else:
                self._arrived[camera] = self._clock()  # the wait bound counts from the first frame waiting
            self._items[camera] = item
            self.accepted[camera] += 1
            self._cond.notify_all()
        return replaced

    def take(self, timeout: float | None = None) -> list[T | None] | None:
        """Wait for a batch and remove it from the slots.

        Args:
            timeout: Seconds to wait at most for the first frame; None waits until one arrives or the
                batcher closes. The bounded wait for the other cameras comes on top.

        Returns:
            One entry per camera (None where a camera had no frame), or None on timeout or when closed.
        """
        with self._cond:
            if not self._cond.wait_for(self._any_waiting, timeout=timeout) or self._closed:
                return None
            first = min(t for t in self._arrived if t is not None)
            deadline = first + self.max_wait_s
            while not self._closed and not all(t is not None for t in self._arrived):
                left = deadline - self._clock()
                if left <= 0:
                    break
                self._cond.wait(left)
            if self._closed:
                return None
            batch = list(self._items)
            for index, item in enumerate(batch):
                if item is None:
                    self.missed[index] += 1
            self._items = [None] * self.size
            self._arrived = [None] * self.size
            return batch

    def _any_waiting(self) -> bool:
        return self._closed or any(t is not None for t in self._arrived)

    def close(self) -> None:
        """Wake every waiter; ``take`` returns None from now on."""
        with self._cond:
            self._closed = True
            self._items = [None] * self.size
            self._arrived = [None] * self.size
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed
