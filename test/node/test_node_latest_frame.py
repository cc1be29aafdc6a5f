"""Latest-frame-only hand-off: the node never queues up; its output lag stays bounded in frames."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from causal_tune_ros.node.worker import FrameWorker, LatestSlot

STAMP = 1_680_000_000 * 10**9


def test_slot_keeps_only_the_newest_and_counts_drops() -> None:
    slot: LatestSlot[int] = LatestSlot()
    assert slot.take(timeout=0.01) is None
    assert slot.put(1) is False
    assert slot.put(2) is True and slot.put(3) is True
    assert slot.take() == 3 and slot.dropped == 2 and slot.accepted == 3
    assert slot.take(timeout=0.01) is None
    slot.close()
    assert slot.take() is None


def test_worker_survives_a_failing_item_and_drops_while_busy() -> None:
    seen: list[int] = []
    errors: list[BaseException] = []
    gate = threading.Event()

    def handle(item: int) -> None:
        if item == 0:
            gate.wait(5.0)  # busy: everything submitted meanwhile but the last is dropped
        if item == 5:
            raise RuntimeError("boom")
        seen.append(item)

    worker: FrameWorker[int] = FrameWorker(handle, errors.append)
    worker.start()
    worker.submit(0)
    deadline = time.monotonic() + 5
    while not worker.busy and time.monotonic() < deadline:
        time.sleep(0.001)
    for i in range(1, 6):
        worker.submit(i)
    gate.set()
    deadline = time.monotonic() + 5
    while not errors and time.monotonic() < deadline:
        time.sleep(0.001)
    worker.submit(6)
    deadline = time.monotonic() + 5
    while 6 not in seen and time.monotonic() < deadline:
        time.sleep(0.001)
    assert worker.stop()
    assert seen == [0, 6]  # 1..4 were replaced by 5 before the worker was free
    assert worker.slot.dropped == 4
    assert len(errors) == 1 and "boom" in str(errors[0])


@pytest.mark.ros
def test_output_lag_stays_bounded_under_a_fast_publisher(make_node) -> None:
    from sensor_msgs.msg import Image

    from .node_support import RELIABLE, make_image, sample_rgb, stamp_of

    _, probe, _ = make_node("latest", publish__overlay=False, publish__confidence=False)
    rgb = sample_rgb(96, 128)
    # Measure how long one frame takes here, then publish about four times faster than that.
    for i in range(5):
        probe.image_pub.publish(make_image(rgb, "rgb8", STAMP + i))
        probe.wait_for_stamp("class_mask", STAMP + i)
    status = probe.wait_diagnostics(lambda v, s: int(v["frames_processed"]) >= 5)
    frame_ms = float({kv.key: kv.value for kv in status.values}["pipeline_p50_ms"])
    period = max(frame_ms * 1e-3 / 4, 0.001)

    count = 80
    published = [-1]
    received: list[tuple[int, int]] = []  # (mask's frame index, newest frame published at receipt)
    done = threading.Event()

    def on_mask(msg: Image) -> None:
        index = stamp_of(msg) - STAMP - 100
        if index >= 0:
            received.append((index, published[0]))
            if index == count - 1:
                done.set()

    probe.node.create_subscription(Image, f"{probe.target}/class_mask", on_mask, RELIABLE)
    time.sleep(0.2)
    next_time = time.monotonic()
    for i in range(count):
        probe.image_pub.publish(make_image(rgb, "rgb8", STAMP + 100 + i))
        published[0] = i
        next_time += period
        time.sleep(max(0.0, next_time - time.monotonic()))
    assert done.wait(20), "the newest frame must always be processed"
    time.sleep(0.3)  # anything still queued would arrive now

    index = np.array([r[0] for r in received])
    newest = np.array([r[1] for r in received])
    # Latest-frame-only, as a bound in frames: mask k shows a frame the worker took when it finished mask
    # k-1, so it is no older than the newest input published when mask k-2 arrived (give or take
    # TRANSIT frames still on the wire). A FIFO queue falls ever further behind and breaks this at once.
    transit = 3
    assert np.all(index[2:] + transit >= newest[:-2]), list(zip(index.tolist(), newest.tolist(), strict=True))
    # Once the publisher stops, at most the frame in work and the one waiting come out: nothing queued.
    after_stop = int(np.sum(newest == count - 1))
    assert after_stop <= 3, received
    assert index[-1] == count - 1 and len(index) < count, f"{len(index)} of {count} frames processed"
    probe.wait_diagnostics(lambda v, s: int(v["frames_dropped"]) > 0)
