"""Fixtures of the replay tests: a tiny random Causal-Tune checkpoint and a bag writer for input bags."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
import pytest

from causal_tune_ros.replay.bag_io import (
    COMPRESSED_IMAGE_TYPE,
    IMAGE_TYPE,
    STRING_TYPE,
    BagWriter,
    make_header,
    msg_class,
    serialize,
)

from ..conftest import TINY_INPUT

#: First stamp of the test bags.
T0 = 1_700_000_000_000_000_000


def make_image(index: int, height: int = 30, width: int = 40) -> np.ndarray:
    """A deterministic, non-trivial RGB frame (gradient + a moving box)."""
    y, x = np.mgrid[0:height, 0:width]
    img = np.stack([(x * 255 // width), (y * 255 // height), np.full_like(x, 40 * index % 256)], axis=-1)
    img = img.astype(np.uint8)
    c = (5 + 3 * index) % (width - 10)
    img[8:20, c : c + 8] = (250, 250, 250)
    return img


def image_message(rgb: np.ndarray, stamp: int, frame_id: str) -> Any:
    """rosbags ``sensor_msgs/Image`` rgb8."""
    h, w = rgb.shape[:2]
    return msg_class(IMAGE_TYPE)(
        header=make_header(stamp, frame_id),
        height=h,
        width=w,
        encoding="rgb8",
        is_bigendian=0,
        step=3 * w,
        data=np.ascontiguousarray(rgb).reshape(-1),
    )


def jpeg_message(rgb: np.ndarray, stamp: int, frame_id: str, data: bytes | None = None) -> Any:
    """rosbags ``sensor_msgs/CompressedImage`` (JPEG of ``rgb``, or the given bytes)."""
    if data is None:
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        assert ok
        data = buf.tobytes()
    return msg_class(COMPRESSED_IMAGE_TYPE)(
        header=make_header(stamp, frame_id), format="jpeg", data=np.frombuffer(data, dtype=np.uint8).copy()
    )


#: ``(topic, kind, frame_id)`` of the two cameras in the standard test bag.
CAMERAS: Sequence[tuple[str, str, str]] = (
    ("/front/image_raw", "raw", "front_optical"),
    ("/rear/image_raw/compressed", "jpeg", "rear_optical"),
)


@pytest.fixture()
def write_camera_bag() -> Callable[..., Path]:
    """Factory: ``write_camera_bag(path, storage, frames=3, extra=None)`` writes the two-camera test bag.

    Messages: per frame ``i`` a raw rgb8 image on ``/front/image_raw`` at ``T0 + i * 100 ms``, a JPEG on
    ``/rear/image_raw/compressed`` 30 ms later (header stamps 1 ms before the log time, as a driver
    stamps at exposure), and a ``/note`` String. ``extra`` is a list of ``(topic, msgtype, stamp, cdr)``
    raw messages to add (e.g. corrupt frames).
    """

    def write(
        path: Path,
        storage: str,
        frames: int = 3,
        extra: Sequence[tuple[str, str, int, bytes]] | None = None,
    ) -> Path:
        with BagWriter(path, storage=storage) as bag:
            bag.add_topic("/front/image_raw", IMAGE_TYPE, qos="sensor")
            bag.add_topic("/rear/image_raw/compressed", COMPRESSED_IMAGE_TYPE, qos="sensor")
            bag.add_topic("/note", STRING_TYPE)
            string = msg_class(STRING_TYPE)
            for i in range(frames):
                t = T0 + i * 100_000_000
                rgb = make_image(i)
                bag.write_message("/front/image_raw", t, image_message(rgb, t - 1_000_000, "front_optical"))
                t2 = t + 30_000_000
                bag.write(
                    "/rear/image_raw/compressed",
                    t2,
                    serialize(jpeg_message(rgb[::-1].copy(), t2 - 1_000_000, "rear_optical")),
                )
                bag.write_message("/note", t + 50_000_000, string(data=f"note {i}"))
            for topic, msgtype, stamp, cdr in extra or ():
                bag.add_topic(topic, msgtype, qos="sensor")
                bag.write(topic, stamp, cdr)
        return path

    return write


@pytest.fixture()
def bagkit() -> SimpleNamespace:
    """The message helpers of this module, for tests that build their own bags."""
    return SimpleNamespace(
        T0=T0,
        CAMERAS=CAMERAS,
        TINY_INPUT=TINY_INPUT,
        make_image=make_image,
        image_message=image_message,
        jpeg_message=jpeg_message,
    )
