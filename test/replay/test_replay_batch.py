"""`causal-tune replay --batch-cameras`: several cameras in one forward pass, each with its own outputs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from causal_tune_ros.bags import IMAGE_TYPE, BagReader, BagWriter, deserialize, stamp_to_ns
from causal_tune_ros.band import Band
from causal_tune_ros.errors import ConfigError
from causal_tune_ros.imaging import image_to_array
from causal_tune_ros.replay.batching import CameraBatcher
from causal_tune_ros.replay.reading import Frame
from causal_tune_ros.replay.replayer import Replayer, ReplayOptions

FRONT, REAR = "/front/image_raw", "/rear/image_raw/compressed"


class CountingPipeline:
    """The real pipeline, with the size of every batch it was asked to run recorded."""

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline
        self.batches: list[int] = []

    def process(self, rgb: np.ndarray, band: Band, overlay: bool = True, confidence: bool = True) -> Any:
        self.batches.append(1)
        return self.pipeline.process(rgb, band, overlay=overlay, confidence=confidence)

    def process_batch(
        self, rgbs: Sequence[np.ndarray], band: Band, overlay: bool = True, confidence: bool = True
    ) -> list[Any]:
        self.batches.append(len(rgbs))
        return self.pipeline.process_batch(rgbs, band, overlay=overlay, confidence=confidence)


def _outputs(bag_path: Path, topic: str) -> list[tuple[int, int, str, np.ndarray]]:
    """``(log time, header stamp, frame_id, array)`` of every message on an output image topic."""
    with BagReader(bag_path) as bag:
        found = []
        for m in bag.messages([topic]):
            msg = deserialize(m.data, IMAGE_TYPE)
            found.append(
                (m.timestamp, stamp_to_ns(msg.header.stamp), msg.header.frame_id, image_to_array(msg))
            )
    return found


def _inputs(bag_path: Path, topic: str) -> list[tuple[int, int, str]]:
    with BagReader(bag_path) as bag:
        return [
            (m.timestamp, stamp_to_ns(deserialize(m.data, m.msgtype).header.stamp), "")
            for m in bag.messages([topic])
        ]


def test_two_cameras_in_one_pass_give_what_each_camera_gives_alone(
    tmp_path: Path, write_camera_bag, tiny_pipeline
) -> None:
    in_bag = write_camera_bag(tmp_path / "in", "mcap", frames=3)  # rear 30 ms after front, 3 frames each
    counting = CountingPipeline(tiny_pipeline)
    options = ReplayOptions(weather="clear", progress=False, batch_cameras=True, batch_wait=0.05)
    summary = Replayer(counting, options).run(in_bag, tmp_path / "batched")
    assert counting.batches == [2, 2, 2]  # one forward pass of both cameras per frame pair
    assert {t: s.processed for t, s in summary.topics.items()} == {FRONT: 3, REAR: 3}

    for topic, out_topic in ((FRONT, "/front/class_mask"), (REAR, "/rear/class_mask")):
        alone = tmp_path / f"alone_{topic.count('/')}"
        Replayer(tiny_pipeline, ReplayOptions(weather="clear", progress=False, topics=[topic])).run(
            in_bag, alone
        )
        batched, single = _outputs(tmp_path / "batched", out_topic), _outputs(alone, out_topic)
        assert len(batched) == len(single) == 3
        for b, s in zip(batched, single, strict=True):
            assert b[:3] == s[:3]
            np.testing.assert_array_equal(b[3], s[3])  # identical class ids
        # Each camera's outputs carry its own input's log time and header stamp.
        expected = [(t, stamp) for t, stamp, _ in _inputs(in_bag, topic)]
        assert [(t, stamp) for t, stamp, _, _ in batched] == expected
        assert {frame_id for _, _, frame_id, _ in batched} == {
            "front_optical" if topic == FRONT else "rear_optical"
        }


def test_a_camera_with_missing_frames_does_not_block_the_other(tmp_path: Path, bagkit, tiny_pipeline) -> None:
    k = bagkit
    path = tmp_path / "gappy"
    with BagWriter(path, storage="mcap") as bag:
        bag.add_topic(FRONT, IMAGE_TYPE, qos="sensor")
        bag.add_topic("/side/image_raw", IMAGE_TYPE, qos="sensor")
        for i in range(4):
            t = k.T0 + i * 100_000_000
            bag.write_message(FRONT, t, k.image_message(k.make_image(i), t, "front_optical"))
            if i == 1:  # the side camera sends one frame, 20 ms after the front one
                side = t + 20_000_000
                bag.write_message(
                    "/side/image_raw", side, k.image_message(k.make_image(9), side, "side_optical")
                )
    counting = CountingPipeline(tiny_pipeline)
    options = ReplayOptions(weather="clear", progress=False, batch_cameras=True, batch_wait=0.05)
    summary = Replayer(counting, options).run(path, tmp_path / "out")
    assert {t: s.processed for t, s in summary.topics.items()} == {FRONT: 4, "/side/image_raw": 1}
    # Static batch size: the missing camera's place is filled, so every call holds two images.
    assert counting.batches == [2, 2, 2, 2]
    front = _outputs(tmp_path / "out", "/front/class_mask")
    assert [t for t, *_ in front] == [k.T0 + i * 100_000_000 for i in range(4)]
    alone = tmp_path / "alone"
    Replayer(tiny_pipeline, ReplayOptions(weather="clear", progress=False, topics=[FRONT])).run(path, alone)
    for b, s in zip(front, _outputs(alone, "/front/class_mask"), strict=True):
        np.testing.assert_array_equal(b[3], s[3])


def _frame(topic: str, stamp: int) -> Frame:
    return Frame(topic, stamp, None, None, "clear", Band())


def test_batches_close_when_complete_on_a_repeat_or_past_the_wait() -> None:
    batcher = CameraBatcher(["/a", "/b"], wait_ns=50)
    assert batcher.add(_frame("/a", 0)) == []
    assert [f.topic for f in batcher.add(_frame("/b", 30))] == ["/a", "/b"]  # complete
    assert batcher.add(_frame("/a", 100)) == []
    assert [f.stamp for f in batcher.add(_frame("/a", 120))] == [100]  # a repeat closes, opens the next
    assert batcher.due(170) == []  # 120 + 50: still waiting
    assert [f.stamp for f in batcher.due(171)] == [120]  # bag time past the wait
    assert batcher.flush() == []


def test_batching_needs_process_batch_and_a_sane_wait(tiny_pipeline) -> None:
    class SingleImageOnly:
        def process(self, rgb: np.ndarray, band: Band, overlay: bool = True, confidence: bool = True) -> Any:
            return tiny_pipeline.process(rgb, band, overlay=overlay, confidence=confidence)

    with pytest.raises(ConfigError, match="process_batch"):
        Replayer(SingleImageOnly(), ReplayOptions(batch_cameras=True))
    with pytest.raises(ConfigError, match="--batch-wait"):
        Replayer(tiny_pipeline, ReplayOptions(batch_cameras=True, batch_wait=-1.0))
