"""Write synthetic weather scenes as a rosbag2 "drive", so the node and the replay can be tried without data.

Layout of the bag (10 Hz, all stamps = log times, frame ``camera_optical_frame``):

==================================  ==========================  =============================================
topic                               type                        content
==================================  ==========================  =============================================
``/camera/image_raw``               sensor_msgs/Image           rgb8 frame (without ``--compressed``)
``/camera/image_raw/compressed``    sensor_msgs/CompressedImage JPEG frame (with ``--compressed``)
``/camera/ground_truth``            sensor_msgs/Image           mono8 train ids (255 = ignore)
``/camera/camera_info``             sensor_msgs/CameraInfo      ``K`` of the renderer, no distortion
``/tf_static``                      tf2_msgs/TFMessage          ``base_link`` -> ``camera_optical_frame``
``/weather``                        std_msgs/String             the frame's condition (clear, snow, ...)
==================================  ==========================  =============================================

The drive is one segment per condition, in the order given. Frame ``k`` of every segment renders scene seed
``seed + k``: each condition drives through the same streets, so conditions differ only by the weather and
per-condition results are comparable.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from causal_tune_ros.errors import ConfigError
from causal_tune_ros.sizes import parse_size

#: Topic names (also used by the demo and the tests).
IMAGE_TOPIC = "/camera/image_raw"
COMPRESSED_TOPIC = "/camera/image_raw/compressed"
GROUND_TRUTH_TOPIC = "/camera/ground_truth"
CAMERA_INFO_TOPIC = "/camera/camera_info"
TF_STATIC_TOPIC = "/tf_static"
WEATHER_TOPIC = "/weather"

CAMERA_FRAME = "camera_optical_frame"
BASE_FRAME = "base_link"

#: First stamp of a synthetic drive (2024-01-01T00:00:00Z): fixed so the same arguments give the same bag.
START_NS = 1_704_067_200 * 1_000_000_000
#: 10 Hz camera.
PERIOD_NS = 100_000_000


@dataclass(frozen=True)
class DriveFrame:
    """One frame of a synthetic drive.

    Attributes:
        index: Position in the drive (0-based).
        stamp: Time stamp, nanoseconds.
        seed: Scene seed that rendered it.
        frame: The rendered ``SyntheticFrame`` (image, labels, depth, condition, K, ground_pose).
    """

    index: int
    stamp: int
    seed: int
    frame: Any


@dataclass
class DriveSummary:
    """What :func:`write_drive` wrote.

    Attributes:
        path: The bag folder.
        storage: ``mcap`` or ``sqlite3``.
        counts: Topic -> number of messages.
        conditions: Condition -> number of frames.
        seconds: Wall time.
    """

    path: Path
    storage: str
    counts: dict[str, int] = field(default_factory=dict)
    conditions: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def parse_conditions(text: str | Sequence[str]) -> list[str]:
    """``"snow,night"`` (or a list) -> validated list of conditions, order kept, duplicates dropped.

    Raises:
        ConfigError: Empty list or an unknown condition.
    """
    from causal_tune_ros.weather import CONDITIONS

    items = text.split(",") if isinstance(text, str) else list(text)
    result: list[str] = []
    for item in items:
        name = str(item).strip().lower()
        if not name:
            continue
        if name not in CONDITIONS:
            raise ConfigError(f"unknown condition {name!r}; expected some of {', '.join(CONDITIONS)}")
        if name not in result:
            result.append(name)
    if not result:
        raise ConfigError(f"no condition given; expected some of {', '.join(CONDITIONS)}")
    return result


def parse_image_size(text: str | Sequence[int]) -> tuple[int, int]:
    """``"240x320"`` or ``(240, 320)`` -> ``(height, width)``.

    Raises:
        ConfigError: Not two positive integers, or sides outside 16..4096.
    """
    return parse_size(text, what="image size", min_side=16, max_side=4096)


def segments_of(conditions: Sequence[str], frames: int | Mapping[str, int]) -> list[tuple[str, int]]:
    """``(condition, frame count)`` per drive segment.

    Args:
        conditions: Segment conditions, in order.
        frames: Frames per segment: one count for all, or a count per condition.

    Raises:
        ConfigError: A count below 1, or a condition without a count.
    """
    result = []
    for condition in conditions:
        if isinstance(frames, Mapping):
            if condition not in frames:
                raise ConfigError(f"no frame count for condition {condition!r}")
            n = int(frames[condition])
        else:
            n = int(frames)
        if n < 1:
            raise ConfigError(f"--frames must be >= 1, got {n} for {condition}")
        result.append((condition, n))
    return result


def drive_frames(
    conditions: Sequence[str], frames: int | Mapping[str, int], height: int, width: int, seed: int = 0
) -> Iterator[DriveFrame]:
    """Render the drive frame by frame (one segment per condition).

    Args:
        conditions: Weather conditions, one segment each, in order.
        frames: Frames per condition (one count, or a count per condition).
        height: Image height.
        width: Image width.
        seed: Seed of the first scene of each segment.

    Yields:
        :class:`DriveFrame` in time order.

    Raises:
        ConfigError: A frame count below 1.
    """
    from causal_tune_ros.synthetic import render_scene

    index = 0
    for condition, count in segments_of(conditions, frames):
        for k in range(count):
            scene_seed = seed + k
            frame = render_scene(scene_seed, condition, height, width)
            yield DriveFrame(index, START_NS + index * PERIOD_NS, scene_seed, frame)
            index += 1


def rotation_to_quaternion(rotation: np.ndarray) -> tuple[float, float, float, float]:
    """``(3, 3)`` rotation matrix -> unit quaternion ``(x, y, z, w)`` with ``w >= 0``.

    Shepperd's method: pick the largest of the four squared components to divide by, so it stays
    accurate for every rotation (including 180 degrees, where ``w`` is 0).
    """
    m = np.asarray(rotation, dtype=np.float64)
    tr = m[0, 0] + m[1, 1] + m[2, 2]
    candidates = [tr, m[0, 0], m[1, 1], m[2, 2]]
    i = int(np.argmax(candidates))
    if i == 0:
        s = 2.0 * math.sqrt(max(1.0 + tr, 0.0))
        w, x, y, z = 0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s
    elif i == 1:
        s = 2.0 * math.sqrt(max(1.0 + m[0, 0] - m[1, 1] - m[2, 2], 0.0))
        w, x, y, z = (m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s
    elif i == 2:
        s = 2.0 * math.sqrt(max(1.0 + m[1, 1] - m[0, 0] - m[2, 2], 0.0))
        w, x, y, z = (m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s
    else:
        s = 2.0 * math.sqrt(max(1.0 + m[2, 2] - m[0, 0] - m[1, 1], 0.0))
        w, x, y, z = (m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s
    q = np.array([x, y, z, w])
    q /= np.linalg.norm(q)
    if q[3] < 0:
        q = -q
    return float(q[0]), float(q[1]), float(q[2]), float(q[3])


def _pose_rt(pose: Any) -> tuple[np.ndarray, np.ndarray]:
    """(rotation optical -> ground, optical centre in the ground frame) of a ground pose."""
    return np.asarray(pose.rotation(), dtype=np.float64), np.asarray(pose.translation(), dtype=np.float64)


def camera_info_msg(header: Any, K: np.ndarray, height: int, width: int) -> Any:
    """``sensor_msgs/CameraInfo`` (rosbags class) for an undistorted pinhole camera ``K``."""
    from causal_tune_ros.bags import CAMERA_INFO_TYPE, msg_class

    K = np.asarray(K, dtype=np.float64).reshape(3, 3)
    P = np.zeros((3, 4), dtype=np.float64)
    P[:, :3] = K
    roi_cls = msg_class("sensor_msgs/msg/RegionOfInterest")
    return msg_class(CAMERA_INFO_TYPE)(
        header=header,
        height=int(height),
        width=int(width),
        distortion_model="plumb_bob",
        d=np.zeros(5, dtype=np.float64),
        k=K.reshape(-1).copy(),
        r=np.eye(3, dtype=np.float64).reshape(-1),
        p=P.reshape(-1),
        binning_x=0,
        binning_y=0,
        roi=roi_cls(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False),
    )


def tf_static_msg(stamp: int, pose: Any) -> Any:
    """``tf2_msgs/TFMessage`` with ``base_link`` -> ``camera_optical_frame`` from a ground pose."""
    from causal_tune_ros.bags import TF_MESSAGE_TYPE, make_header, msg_class

    rotation, translation = _pose_rt(pose)
    qx, qy, qz, qw = rotation_to_quaternion(rotation)
    transform = msg_class("geometry_msgs/msg/Transform")(
        translation=msg_class("geometry_msgs/msg/Vector3")(
            x=float(translation[0]), y=float(translation[1]), z=float(translation[2])
        ),
        rotation=msg_class("geometry_msgs/msg/Quaternion")(x=qx, y=qy, z=qz, w=qw),
    )
    stamped = msg_class("geometry_msgs/msg/TransformStamped")(
        header=make_header(stamp, BASE_FRAME), child_frame_id=CAMERA_FRAME, transform=transform
    )
    return msg_class(TF_MESSAGE_TYPE)(transforms=[stamped])


def encode_jpeg(rgb: np.ndarray, quality: int = 90) -> np.ndarray:
    """RGB -> JPEG bytes as a uint8 array.

    Raises:
        ConfigError: Quality outside 1..100 or OpenCV cannot encode.
    """
    import cv2

    if not 1 <= quality <= 100:
        raise ConfigError(f"JPEG quality must be in 1..100, got {quality}")
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ConfigError("OpenCV could not encode a JPEG")
    return buf.reshape(-1)


def write_drive(
    path: str | Path,
    conditions: Sequence[str],
    frames: int | Mapping[str, int],
    size: tuple[int, int] = (240, 320),
    compressed: bool = False,
    storage: str | None = None,
    seed: int = 0,
    overwrite: bool = False,
    jpeg_quality: int = 90,
    drive: Sequence[DriveFrame] | None = None,
) -> DriveSummary:
    """Render a synthetic drive and write it as a rosbag2 (layout: module docstring).

    Args:
        path: Bag folder to create.
        conditions: Weather segments in order.
        frames: Frames per condition (one count, or a count per condition).
        size: ``(height, width)`` of the images.
        compressed: JPEG ``CompressedImage`` on ``/camera/image_raw/compressed`` instead of raw rgb8.
        storage: ``mcap`` or ``sqlite3`` (default: from the suffix, else mcap).
        seed: Seed of the first scene of each segment.
        overwrite: Replace an existing bag.
        jpeg_quality: JPEG quality with ``compressed``.
        drive: Already rendered frames (from :func:`drive_frames`) to write instead of rendering again.

    Returns:
        A :class:`DriveSummary`.

    Raises:
        ConfigError: Bad conditions, frame count or size.
        BagError: The bag cannot be written (e.g. exists without ``overwrite``).
    """
    import time

    from causal_tune_ros.bags import (
        CAMERA_INFO_TYPE,
        COMPRESSED_IMAGE_TYPE,
        IMAGE_TYPE,
        STRING_TYPE,
        TF_MESSAGE_TYPE,
        BagWriter,
        make_header,
        msg_class,
        qos_profile,
    )
    from causal_tune_ros.imaging import numpy_to_image

    started = time.perf_counter()
    conditions = parse_conditions(conditions)
    height, width = parse_image_size(size)
    if drive is None:
        segments_of(conditions, frames)  # validate before the bag folder is created
    frames_iter = drive if drive is not None else drive_frames(conditions, frames, height, width, seed)
    image_cls = msg_class(IMAGE_TYPE)
    string_cls = msg_class(STRING_TYPE)
    image_topic = COMPRESSED_TOPIC if compressed else IMAGE_TOPIC
    with BagWriter(path, storage=storage, overwrite=overwrite) as writer:
        summary = DriveSummary(path=Path(path), storage=writer.storage)
        # Static TF and weather are latched (transient local), as tf2's static broadcaster publishes.
        writer.add_topic(TF_STATIC_TOPIC, TF_MESSAGE_TYPE, qos=qos_profile("latched", depth=1))
        writer.add_topic(WEATHER_TOPIC, STRING_TYPE, qos=qos_profile("latched", depth=1))
        writer.add_topic(CAMERA_INFO_TOPIC, CAMERA_INFO_TYPE, qos="reliable")
        writer.add_topic(image_topic, COMPRESSED_IMAGE_TYPE if compressed else IMAGE_TYPE, qos="reliable")
        writer.add_topic(GROUND_TRUTH_TOPIC, IMAGE_TYPE, qos="reliable")
        last_pose: tuple[bytes, bytes] | None = None
        last_condition: str | None = None
        for item in frames_iter:
            frame, t = item.frame, item.stamp
            header = make_header(t, CAMERA_FRAME)
            rotation, translation = _pose_rt(frame.ground_pose)
            pose_key = (rotation.round(9).tobytes(), translation.round(9).tobytes())
            if pose_key != last_pose:
                # Re-sent only when the mount changes (never within a drive of one rig).
                writer.write_message(TF_STATIC_TOPIC, t, tf_static_msg(t, frame.ground_pose))
                last_pose = pose_key
            # Weather every frame (tiny), so a player started mid-bag still sees the condition.
            writer.write_message(WEATHER_TOPIC, t, string_cls(data=frame.condition))
            last_condition = frame.condition
            image = np.asarray(frame.image, dtype=np.uint8)
            writer.write_message(CAMERA_INFO_TOPIC, t, camera_info_msg(header, frame.K, *image.shape[:2]))
            if compressed:
                msg = msg_class(COMPRESSED_IMAGE_TYPE)(
                    header=header, format="jpeg", data=encode_jpeg(image, jpeg_quality)
                )
            else:
                msg = numpy_to_image(image, "rgb8", header, image_cls)
            writer.write_message(image_topic, t, msg)
            labels = np.asarray(frame.labels, dtype=np.uint8)
            writer.write_message(GROUND_TRUTH_TOPIC, t, numpy_to_image(labels, "mono8", header, image_cls))
            summary.conditions[last_condition] = summary.conditions.get(last_condition, 0) + 1
        summary.counts = dict(writer.counts)
    summary.seconds = time.perf_counter() - started
    return summary
