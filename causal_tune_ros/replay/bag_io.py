"""rosbag2 in and out through ``rosbags`` (no ROS install): open, iterate, (de)serialise, write.

Every failure of the underlying library is turned into :class:`~causal_tune_ros.errors.BagError` with the
bag path and the reason, so the CLI can print one clear line and exit with code 2.

Messages are (de)serialised as CDR with the ROS 2 Jazzy type store, so bags written here carry the same
``metadata.yaml`` layout, type hashes and serialisation that ``ros2 bag record`` writes, and ``ros2 bag play``
reads them on a vehicle.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import Any

from causal_tune_ros.errors import BagError

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE_TYPE = "sensor_msgs/msg/CompressedImage"
IMAGE_TYPES = (IMAGE_TYPE, COMPRESSED_IMAGE_TYPE)
STRING_TYPE = "std_msgs/msg/String"
CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"
TF_MESSAGE_TYPE = "tf2_msgs/msg/TFMessage"

STORAGES = ("sqlite3", "mcap")
_SUFFIX_STORAGE = {".mcap": "mcap", ".db3": "sqlite3"}

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


def storage_for(path: str | Path, storage: str | None = None) -> str:
    """Storage plugin to write ``path`` with: ``storage`` if given, else from a ``.mcap``/``.db3`` suffix,
    else ``mcap`` (the ROS 2 default since Iron).

    Raises:
        BagError: For an unknown storage name.
    """
    if storage is not None:
        if storage not in STORAGES:
            raise BagError(f"unknown storage {storage!r}; expected one of {', '.join(STORAGES)}")
        return storage
    return _SUFFIX_STORAGE.get(Path(path).suffix, "mcap")


@dataclass(frozen=True)
class BagMessage:
    """One raw message as stored in a bag.

    Attributes:
        topic: Topic name.
        msgtype: ROS 2 type name, e.g. ``sensor_msgs/msg/Image``.
        timestamp: Receive (log) time in nanoseconds.
        data: CDR bytes, untouched.
        connection: The ``rosbags`` connection it came from (carries the offered QoS).
    """

    topic: str
    msgtype: str
    timestamp: int
    data: bytes | memoryview
    connection: Any


class BagReader:
    """Read-only view of a rosbag2 (a bag folder with ``metadata.yaml``, or a bare ``.mcap`` / ``.db3``).

    Use as a context manager::

        with BagReader("drive.mcap") as bag:
            for m in bag.messages(bag.image_topics()):
                ...

    Raises:
        BagError: If the bag does not exist or cannot be opened (missing files, bad metadata, unsupported
            storage or serialisation).
    """

    def __init__(self, path: str | Path) -> None:
        from rosbags.rosbag2 import Reader

        self.path = Path(path)
        if not self.path.exists():
            raise BagError(f"cannot open bag {self.path}: no such file or folder")
        try:
            self._reader = Reader(self.path)
            self._reader.open()
        except Exception as exc:  # ReaderError, FileNotFoundError, sqlite3/mcap parse errors
            raise BagError(f"cannot open bag {self.path}: {exc}") from exc
        self._open = True

    def __enter__(self) -> BagReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the underlying storage (idempotent)."""
        if self._open:
            self._open = False
            self._reader.close()

    @property
    def topics(self) -> dict[str, str]:
        """Topic name -> message type, in the bag's order."""
        return {c.topic: c.msgtype for c in self._reader.connections}

    @property
    def message_count(self) -> int:
        """Total number of messages in the bag."""
        return int(self._reader.message_count)

    @property
    def start_time(self) -> int:
        """Earliest message time, nanoseconds."""
        return int(self._reader.start_time)

    @property
    def duration(self) -> int:
        """Time span of the bag, nanoseconds."""
        return int(self._reader.duration)

    def qos(self, topic: str) -> list[Any]:
        """Offered QoS profiles recorded for ``topic`` (``rosbags`` ``Qos`` list; empty if none)."""
        for c in self._reader.connections:
            if c.topic == topic:
                return list(getattr(c.ext, "offered_qos_profiles", []) or [])
        return []

    def count(self, topic: str) -> int:
        """Number of messages on ``topic`` (0 if absent)."""
        return sum(int(c.msgcount) for c in self._reader.connections if c.topic == topic)

    def image_topics(self) -> list[str]:
        """Topics carrying ``sensor_msgs/Image`` or ``sensor_msgs/CompressedImage``, in the bag's order."""
        return [t for t, ty in self.topics.items() if ty in IMAGE_TYPES]

    def messages(self, topics: Iterable[str] | None = None) -> Iterator[BagMessage]:
        """Raw messages in time order.

        Args:
            topics: Only these topics (``None``: every topic).

        Yields:
            :class:`BagMessage` with the undecoded CDR bytes.

        Raises:
            BagError: If a requested topic is not in the bag, or the storage cannot be read.
        """
        conns = self._reader.connections
        if topics is not None:
            wanted = set(topics)
            missing = wanted - {c.topic for c in conns}
            if missing:
                raise BagError(
                    f"{self.path}: no topic {', '.join(sorted(missing))}; "
                    f"topics in the bag: {', '.join(self.topics) or '(none)'}"
                )
            conns = [c for c in conns if c.topic in wanted]
            if not conns:
                return
        try:
            for conn, timestamp, data in self._reader.messages(connections=conns):
                yield BagMessage(conn.topic, conn.msgtype, int(timestamp), data, conn)
        except BagError:
            raise
        except Exception as exc:  # a storage broken half-way (truncated mcap chunk, bad sqlite page)
            raise BagError(f"cannot read bag {self.path}: {exc}") from exc


class BagWriter:
    """Write a new rosbag2 folder (``metadata.yaml`` + one ``.mcap`` or ``.db3`` file).

    Topics are registered once with :meth:`add_topic`; :meth:`write` takes raw CDR bytes (copying input
    messages costs no re-serialisation), :meth:`write_message` serialises a ``rosbags`` message. On exit
    the bag is closed normally even after an error, so whatever was written stays a readable bag.

    Args:
        path: Bag folder to create.
        storage: ``"mcap"`` or ``"sqlite3"`` (default: from the suffix, see :func:`storage_for`).
        overwrite: Replace an existing bag folder at ``path``.

    Raises:
        BagError: If ``path`` exists (and ``overwrite`` is false) or cannot be created.
    """

    def __init__(self, path: str | Path, storage: str | None = None, overwrite: bool = False) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer

        self.path = Path(path)
        self.storage = storage_for(self.path, storage)
        if self.path.exists():
            if not overwrite:
                raise BagError(f"output bag {self.path} exists already (pass --overwrite to replace it)")
            if self.path.is_dir() and not (self.path / "metadata.yaml").exists():
                # Refuse to wipe a folder that is not a bag: an overwrite flag is not a licence for rm -rf.
                raise BagError(f"{self.path} exists and is not a rosbag2 folder; refusing to replace it")
            if self.path.is_dir():
                shutil.rmtree(self.path)
            else:
                self.path.unlink()
        plugin = StoragePlugin.MCAP if self.storage == "mcap" else StoragePlugin.SQLITE3
        try:
            self._writer = Writer(self.path, version=Writer.VERSION_LATEST, storage_plugin=plugin)
            self._writer.open()
        except Exception as exc:
            raise BagError(f"cannot create bag {self.path}: {exc}") from exc
        self._connections: dict[str, Any] = {}
        self.counts: dict[str, int] = {}
        self._open = True

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def add_topic(self, topic: str, msgtype: str, qos: str | Sequence[Any] = "reliable") -> None:
        """Register ``topic`` (idempotent for the same type).

        Args:
            topic: Topic name.
            msgtype: ROS 2 type name.
            qos: A :func:`qos_profile` kind or a list of ``rosbags`` ``Qos`` (e.g. copied from an input
                connection).

        Raises:
            BagError: If the topic is already registered with another type, or the type is unknown.
        """
        if topic in self._connections:
            if self._connections[topic].msgtype != msgtype:
                raise BagError(f"topic {topic} already written as {self._connections[topic].msgtype}")
            return
        msg_class(msgtype)  # clear error for unknown types before rosbags fails obscurely
        profiles = qos_profile(qos) if isinstance(qos, str) else list(qos)
        try:
            conn = self._writer.add_connection(
                topic, msgtype, typestore=typestore(), offered_qos_profiles=profiles
            )
        except Exception as exc:
            raise BagError(f"cannot add topic {topic} to {self.path}: {exc}") from exc
        self._connections[topic] = conn
        self.counts[topic] = 0

    def write(self, topic: str, timestamp: int, data: bytes | memoryview) -> None:
        """Append raw CDR bytes on a registered topic at ``timestamp`` (ns).

        Raises:
            BagError: If the topic was not registered or the storage fails.
        """
        try:
            conn = self._connections[topic]
        except KeyError:
            raise BagError(f"topic {topic} was not added to {self.path}") from None
        try:
            self._writer.write(conn, int(timestamp), data)
        except Exception as exc:
            raise BagError(f"cannot write to {self.path}: {exc}") from exc
        self.counts[topic] += 1

    def write_message(self, topic: str, timestamp: int, msg: Any) -> None:
        """Serialise ``msg`` (a ``rosbags`` message) and append it; see :meth:`write`."""
        self.write(topic, timestamp, serialize(msg))

    def close(self) -> None:
        """Write the index and ``metadata.yaml`` (idempotent)."""
        if self._open:
            self._open = False
            try:
                self._writer.close()
            except Exception as exc:
                raise BagError(f"cannot finish bag {self.path}: {exc}") from exc


def open_bag(path: str | Path) -> BagReader:
    """Open a rosbag2 for reading (see :class:`BagReader`).

    Raises:
        BagError: If it cannot be opened.
    """
    return BagReader(path)
