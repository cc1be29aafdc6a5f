"""ROS 2 message types in bags: the Jazzy type store, CDR (de)serialisation, headers, offered QoS."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from causal_tune_ros.errors import BagError

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE_TYPE = "sensor_msgs/msg/CompressedImage"
IMAGE_TYPES = (IMAGE_TYPE, COMPRESSED_IMAGE_TYPE)
STRING_TYPE = "std_msgs/msg/String"
CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"
TF_MESSAGE_TYPE = "tf2_msgs/msg/TFMessage"


#: rmw's "infinite" duration as rosbag2 writes it in metadata.yaml (RMW_DURATION_INFINITE).
_INFINITE = (9223372036, 854775807)


@lru_cache(maxsize=1)
def typestore() -> Any:
    """The ROS 2 Jazzy type store (cached: building it parses every message definition)."""
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_JAZZY)


def msg_class(msgtype: str) -> type:
    """The ``rosbags`` message class of ``msgtype`` (e.g. ``"sensor_msgs/msg/Image"``).

    Raises:
        BagError: If the Jazzy type store does not know the type.
    """
    try:
        return typestore().types[msgtype]
    except KeyError:
        raise BagError(f"unknown message type {msgtype!r} (not in the ROS 2 Jazzy type store)") from None


def make_header(stamp_ns: int, frame_id: str) -> Any:
    """A ``std_msgs/Header`` with ``stamp_ns`` split into ``sec`` / ``nanosec``."""
    time_cls = msg_class("builtin_interfaces/msg/Time")
    header_cls = msg_class("std_msgs/msg/Header")
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return header_cls(stamp=time_cls(sec=sec, nanosec=nanosec), frame_id=frame_id)


def stamp_to_ns(stamp: Any) -> int:
    """``builtin_interfaces/Time`` -> integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def serialize(msg: Any, msgtype: str | None = None) -> memoryview:
    """CDR-serialise a ``rosbags`` message (type taken from the message when not given).

    Raises:
        BagError: If the message does not match its type.
    """
    name = msgtype or msg.__msgtype__
    try:
        return typestore().serialize_cdr(msg, name)
    except Exception as exc:  # rosbags raises plain struct/Serde errors: name the type instead
        raise BagError(f"cannot serialise {name}: {exc}") from exc


def deserialize(data: bytes | memoryview, msgtype: str) -> Any:
    """CDR bytes -> ``rosbags`` message (zero copy for byte arrays such as image data).

    Raises:
        BagError: If the bytes are truncated or not a ``msgtype`` message.
    """
    try:
        return typestore().deserialize_cdr(data, msgtype)
    except Exception as exc:  # SerdeError, struct.error, ValueError ... all mean "corrupt message"
        raise BagError(f"corrupt {msgtype} message: {exc}") from exc


def qos_profile(kind: str = "reliable", depth: int = 10) -> list[Any]:
    """Offered QoS profile list for a topic, as rosbag2 records it.

    ``ros2 bag play`` offers these profiles when it republishes, so they should match what a live
    publisher would use.

    Args:
        kind: ``"reliable"`` (volatile, keep last ``depth``: outputs of the node), ``"sensor"`` (best
            effort, the sensor-data profile of cameras) or ``"latched"`` (reliable, transient local, keep
            last ``depth``: ``/tf_static``).
        depth: History depth.

    Returns:
        A one-element list of ``rosbags`` ``Qos``.

    Raises:
        BagError: For an unknown kind.
    """
    from rosbags.interfaces import (
        Qos,
        QosDurability,
        QosHistory,
        QosLiveliness,
        QosReliability,
        QosTime,
    )

    settings = {
        "reliable": (QosReliability.RELIABLE, QosDurability.VOLATILE),
        "sensor": (QosReliability.BEST_EFFORT, QosDurability.VOLATILE),
        "latched": (QosReliability.RELIABLE, QosDurability.TRANSIENT_LOCAL),
    }
    if kind not in settings:
        raise BagError(f"unknown QoS kind {kind!r}; expected one of {', '.join(settings)}")
    reliability, durability = settings[kind]
    infinite = QosTime(*_INFINITE)
    return [
        Qos(
            history=QosHistory.KEEP_LAST,
            depth=depth,
            reliability=reliability,
            durability=durability,
            deadline=infinite,
            lifespan=infinite,
            liveliness=QosLiveliness.AUTOMATIC,
            liveliness_lease_duration=infinite,
            avoid_ros_namespace_conventions=False,
        )
    ]
