"""The multi-camera hand-off: newest frame per camera, a batch with a bounded wait, counts (no ROS)."""

from __future__ import annotations

import threading

import pytest

from causal_tune_ros.errors import ConfigError
from causal_tune_ros.node.batching import CameraBatcher


def test_batch_holds_the_newest_frame_of_every_camera() -> None:
    batcher: CameraBatcher[str] = CameraBatcher(2, max_wait_s=60.0)
    assert batcher.take(timeout=0.01) is None  # nothing waiting
    assert batcher.put(0, "a1") is False
    assert batcher.put(0, "a2") is True  # replaces the untaken a1
    batcher.put(1, "b1")
    assert batcher.take() == ["a2", "b1"]  # every camera present: no wait for the bound
    assert batcher.dropped == [1, 0] and batcher.missed == [0, 0] and batcher.accepted == [2, 1]


def test_a_silent_camera_is_left_out_after_the_bounded_wait() -> None:
    batcher: CameraBatcher[str] = CameraBatcher(3, max_wait_s=0.05)
    batcher.put(1, "b")
    assert batcher.take() == [None, "b", None]
    assert batcher.missed == [1, 0, 1]


def test_a_frame_arriving_during_the_wait_joins_the_batch() -> None:
    batcher: CameraBatcher[str] = CameraBatcher(2, max_wait_s=60.0)
    batcher.put(0, "a")
    taken: list[list[str | None] | None] = []
    worker = threading.Thread(target=lambda: taken.append(batcher.take()))
    worker.start()
    batcher.put(1, "b")  # the worker waits (up to 60 s) for it, and wakes as soon as it is there
    worker.join(30.0)
    assert taken == [["a", "b"]]


def test_close_wakes_a_waiting_take_and_a_batch_needs_a_camera() -> None:
    batcher: CameraBatcher[str] = CameraBatcher(2, max_wait_s=60.0)
    batcher.put(0, "a")
    taken: list[list[str | None] | None] = []
    worker = threading.Thread(target=lambda: taken.append(batcher.take()))
    worker.start()
    batcher.close()
    worker.join(30.0)
    assert taken == [None] and batcher.closed and batcher.take() is None
    with pytest.raises(ConfigError):
        CameraBatcher(0, max_wait_s=0.0)
