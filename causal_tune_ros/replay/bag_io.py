"""rosbag2 in and out through ``rosbags`` (no ROS install): open, iterate, (de)serialise, write.

Every failure of the underlying library is turned into :class:`~causal_tune_ros.errors.BagError` with the
bag path and the reason, so the CLI can print one clear line and exit with code 2.

Messages are (de)serialised as CDR with the ROS 2 Jazzy type store, so bags written here carry the same
``metadata.yaml`` layout, type hashes and serialisation that ``ros2 bag record`` writes, and ``ros2 bag play``
reads them on a vehicle.

Bags written here (:class:`BagWriter`):

* **layout**: the bag is a folder at exactly the path given, holding ``metadata.yaml`` and one storage file
  named as ``ros2 bag record`` names its first file: ``-o drive_seg.mcap`` gives
  ``drive_seg.mcap/metadata.yaml`` + ``drive_seg.mcap/drive_seg_0.mcap`` (the storage suffix of the folder
  name picks the storage and is not repeated in the file name);
* **format**: rosbag2 metadata version 8 by default (offered QoS profiles as a YAML string), which ROS 2
  Humble's rosbag2 parses as well as Jazzy's; version 9 (QoS as a YAML list) on request;
* **complete or absent**: the bag is written in a hidden folder beside the target
  (``.<name>.partial-<pid>-<token>``) and renamed to the target only once it is closed, so the target never
  holds half a bag, even after SIGKILL; an interrupted write is closed cleanly and kept as
  ``<name>.partial`` (a readable bag) while the target is left as it was;
* **safe replacement**: ``overwrite`` replaces only something that is a rosbag2 bag (a folder whose
  ``metadata.yaml`` lists every storage file in it, or a bare ``.mcap`` / ``.db3`` file), never another
  file or folder, and never a path that is, contains or lies inside a protected (input) path.
"""

from __future__ import annotations

import logging
import os
import secrets
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
_STORAGE_SUFFIX = {"mcap": ".mcap", "sqlite3": ".db3"}

#: rosbag2 metadata versions :class:`BagWriter` can write: 8 is read by Humble and Jazzy, 9 by Jazzy.
BAG_VERSIONS = (8, 9)
#: Default metadata version: the one ROS 2 Humble's rosbag2 parses (QoS profiles as a YAML string).
DEFAULT_BAG_VERSION = 8

#: File-format magics of the storage files a bare-file bag can be.
_MAGIC = {".mcap": b"\x89MCAP0\r\n", ".db3": b"SQLite format 3\x00"}

LOG = logging.getLogger(__name__)

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


def storage_for(path: str | Path, storage: str | None = None, like: str | Path | None = None) -> str:
    """Storage plugin to write ``path`` with: ``storage`` if given, else from a ``.mcap``/``.db3`` suffix,
    else the storage of the existing bag ``like`` (a replay writes what it read), else ``mcap`` (the ROS 2
    default since Iron).

    Raises:
        BagError: For an unknown storage name.
    """
    if storage is not None:
        if storage not in STORAGES:
            raise BagError(f"unknown storage {storage!r}; expected one of {', '.join(STORAGES)}")
        return storage
    if Path(path).suffix in _SUFFIX_STORAGE:
        return _SUFFIX_STORAGE[Path(path).suffix]
    return "mcap" if like is None else storage_of(like)


def storage_of(path: str | Path) -> str:
    """Storage plugin of an existing bag: a bare file's suffix, else the storage files in its folder."""
    path = Path(path)
    if path.is_file():
        return _SUFFIX_STORAGE.get(path.suffix, "sqlite3")
    return "mcap" if any(path.glob("*.mcap")) else "sqlite3"


def _resolve(path: str | Path) -> Path:
    """Absolute path with every symbolic link followed (also for a path that does not exist yet)."""
    return Path(os.path.realpath(os.path.abspath(os.fspath(path))))


def bag_paths(path: str | Path) -> list[Path]:
    """Every file-system path a bag occupies, resolved (symlinks followed).

    The bag path itself, and for a bag folder each entry directly inside it (a storage file linked in
    from elsewhere counts where it really lies).
    """
    root = Path(path)
    result = [_resolve(root)]
    if root.is_dir():
        with os.scandir(root) as entries:
            result.extend(_resolve(e.path) for e in entries)
    return result


def check_not_overlapping(output: str | Path, protected: Sequence[str | Path], what: str = "output") -> None:
    """Refuse an output path that is, contains or lies inside a protected path.

    Paths are compared resolved, with symbolic links followed, so ``drive/../drive``, a link to the
    input or a folder holding it are all caught.

    Args:
        output: Path about to be written (or replaced).
        protected: Paths that must not be touched (the input bag and its files).
        what: Name of the output in the message (``"output bag"``, ``"video"``).

    Raises:
        BagError: On any overlap.
    """
    out = _resolve(output)
    for item in protected:
        src = _resolve(item)
        if out == src:
            raise BagError(f"the {what} {output} is the input {item}; choose another path")
        if out.is_relative_to(src):
            raise BagError(f"the {what} {output} lies inside the input {item}; choose a path outside it")
        if src.is_relative_to(out):
            raise BagError(
                f"the {what} {output} contains the input {item}; replacing it would destroy the input"
            )


def not_a_bag_reason(path: str | Path) -> str | None:
    """Why ``path`` is not a rosbag2 bag that may be replaced, or ``None`` if it is one.

    A bag is a folder whose ``metadata.yaml`` is rosbag2 metadata and lists every storage file in the
    folder (and nothing else is in it besides SQLite's ``-wal`` / ``-shm`` companions), or a bare
    ``.mcap`` / ``.db3`` file with that format's magic bytes.
    """
    import yaml

    p = Path(path)
    if p.is_symlink():
        return "it is a symbolic link"
    if p.is_file():
        magic = _MAGIC.get(p.suffix)
        if magic is None:
            return "it is a file, not a bag folder or a .mcap / .db3 bag file"
        with p.open("rb") as f:
            if f.read(len(magic)) != magic:
                return f"it is not a {p.suffix} file"
        return None
    if not p.is_dir():
        return "it is not a regular file or folder"
    meta = p / "metadata.yaml"
    if not meta.is_file():
        return "it has no metadata.yaml"
    try:
        info = yaml.safe_load(meta.read_text(encoding="utf-8"))["rosbag2_bagfile_information"]
        listed = {Path(str(f)).name for f in info.get("relative_file_paths") or []}
    except Exception:  # unreadable YAML, wrong structure: not ours to delete
        return "its metadata.yaml is not rosbag2 metadata"
    allowed = {"metadata.yaml"} | listed | {f"{n}-wal" for n in listed} | {f"{n}-shm" for n in listed}
    others = sorted(e.name for e in p.iterdir() if e.name not in allowed)
    if others:
        shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        return f"it holds files its metadata.yaml does not list ({shown})"
    return None


def storage_file_stem(path: str | Path) -> str:
    """Name (without suffix) of the storage file inside the bag folder ``path``, as ``ros2 bag record``
    names its first file: ``drive_seg.mcap`` -> ``drive_seg_0``; ``run7`` -> ``run7_0``."""
    p = Path(path)
    stem = p.stem if p.suffix in _SUFFIX_STORAGE else p.name
    return f"{stem}_0"


def _fsync_tree(folder: Path) -> None:
    """Flush a finished bag to disk before it is renamed into place (a power cut cannot leave a bag
    whose name says complete and whose data is not there)."""
    for entry in folder.iterdir():
        with entry.open("rb") as f:
            os.fsync(f.fileno())
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
        if self.path.is_dir() and not (self.path / "metadata.yaml").exists():
            raise BagError(_no_metadata_message(self.path))
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
    """Write a new rosbag2 folder (``metadata.yaml`` + one ``.mcap`` or ``.db3`` file), atomically.

    Topics are registered once with :meth:`add_topic`; :meth:`write` takes raw CDR bytes (copying input
    messages costs no re-serialisation), :meth:`write_message` serialises a ``rosbags`` message.

    The bag is written in a hidden folder beside ``path`` and renamed to ``path`` by :meth:`close` (layout
    and guarantees: module docstring). Leaving the ``with`` block normally commits; leaving it with an
    exception (or ``close(commit=False)``) closes the bag cleanly and keeps it as ``<path>.partial``
    (:attr:`partial_path`), never under ``path``.

    Args:
        path: Bag folder to create.
        storage: ``"mcap"`` or ``"sqlite3"`` (default: from the suffix, see :func:`storage_for`).
        overwrite: Replace an existing bag at ``path`` (only a rosbag2 bag, see :func:`not_a_bag_reason`).
        version: rosbag2 metadata version, one of :data:`BAG_VERSIONS` (default 8, Humble-readable).
        protected: Paths the bag must not be, contain or lie inside (e.g. the input bag's
            :func:`bag_paths`); checked with symlinks followed.

    Raises:
        BagError: If ``path`` exists (and ``overwrite`` is false), is not a bag that may be replaced,
            overlaps a protected path, or cannot be created; or for an unknown version.
    """

    def __init__(
        self,
        path: str | Path,
        storage: str | None = None,
        overwrite: bool = False,
        version: int = DEFAULT_BAG_VERSION,
        protected: Sequence[str | Path] = (),
    ) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer

        self.path = Path(path)
        self.storage = storage_for(self.path, storage)
        if version not in BAG_VERSIONS:
            raise BagError(
                f"unknown rosbag2 version {version}; expected one of {', '.join(map(str, BAG_VERSIONS))}"
            )
        self.version = int(version)
        self.overwrite = overwrite
        self.partial_path: Path | None = None
        check_not_overlapping(self.path, protected, "output bag")
        self._check_target()
        self._tmp = self.path.parent / f".{self.path.name}.partial-{os.getpid()}-{secrets.token_hex(3)}"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._tmp.mkdir()
        except OSError as exc:
            raise BagError(f"cannot create bag {self.path}: {exc.strerror or exc}") from exc
        self._bag = self._tmp / storage_file_stem(self.path)
        plugin = StoragePlugin.MCAP if self.storage == "mcap" else StoragePlugin.SQLITE3
        try:
            self._writer = Writer(self._bag, version=self.version, storage_plugin=plugin)  # type: ignore[arg-type]
            self._writer.open()
        except Exception as exc:
            shutil.rmtree(self._tmp, ignore_errors=True)
            raise BagError(f"cannot create bag {self.path}: {exc}") from exc
        self._connections: dict[str, Any] = {}
        self.counts: dict[str, int] = {}
        self._open = True

    def _check_target(self) -> None:
        """The target may be created, or (with ``overwrite``) replaced; raise otherwise."""
        if not os.path.lexists(self.path):
            return
        if not self.overwrite:
            raise BagError(f"output bag {self.path} exists already (pass --overwrite to replace it)")
        reason = not_a_bag_reason(self.path)
        if reason is not None:
            raise BagError(f"{self.path} exists and is not a rosbag2 bag ({reason}); refusing to replace it")

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close(commit=exc_type is None)

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

    def close(self, commit: bool = True) -> None:
        """Write the index and ``metadata.yaml``, then put the bag in place (idempotent).

        Args:
            commit: True: rename the finished bag to :attr:`path` (replacing the old bag there, if
                ``overwrite``). False (an interrupted or failed write): keep it as ``<path>.partial``
                and leave :attr:`path` as it was.

        Raises:
            BagError: If the bag cannot be finished or renamed.
        """
        if not self._open:
            return
        self._open = False
        try:
            self._writer.close()
        except Exception as exc:
            shutil.rmtree(self._tmp, ignore_errors=True)
            raise BagError(f"cannot finish bag {self.path}: {exc}") from exc
        try:
            if commit:
                try:
                    self._commit()
                except BagError:
                    self._keep_partial()  # the finished bag is not lost: it stays as <path>.partial
                    raise
            else:
                self._keep_partial()
        finally:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def _commit(self) -> None:
        previous = self._tmp / "previous"
        try:
            _fsync_tree(self._bag)
            if os.path.lexists(self.path):
                self._check_target()  # still a bag: nothing else appeared there meanwhile
                # Two renames on one file system: the old bag moves into the hidden folder (deleted
                # with it), the new one takes its name.
                os.rename(self.path, previous)
            try:
                os.rename(self._bag, self.path)
            except OSError:
                if os.path.lexists(previous):
                    os.rename(previous, self.path)  # put the old bag back
                raise
        except OSError as exc:
            raise BagError(f"cannot move the finished bag into place at {self.path}: {exc}") from exc

    def _keep_partial(self) -> None:
        partial = self.path.with_name(self.path.name + ".partial")
        if os.path.lexists(partial) and not_a_bag_reason(partial) is None:
            shutil.rmtree(partial) if partial.is_dir() else partial.unlink()
        if os.path.lexists(partial):
            LOG.warning("%s: interrupted; %s is in the way, the partial bag is dropped", self.path, partial)
            return
        os.rename(self._bag, partial)
        self.partial_path = partial
        LOG.warning(
            "%s: interrupted; the messages written so far are in %s (a readable bag); %s was left as it was",
            self.path,
            partial,
            self.path,
        )


def _no_metadata_message(path: Path) -> str:
    """What to say about a folder passed as a bag that has no ``metadata.yaml``."""
    try:
        names = sorted(e.name for e in path.iterdir())
    except OSError as exc:
        return f"cannot open bag {path}: {exc.strerror or exc}"
    if not names:
        return (
            f"{path} is an empty folder, not a rosbag2 bag (a bag is a folder with metadata.yaml and "
            f".mcap / .db3 storage files, or a single .mcap / .db3 file)"
        )
    storage = [n for n in names if Path(n).suffix in _SUFFIX_STORAGE]
    if storage:
        return (
            f"{path} has no metadata.yaml (a recording that was killed?): pass its storage file "
            f"directly ({path / storage[0]}) or recreate the metadata with `ros2 bag reindex {path}`"
        )
    return f"{path} is not a rosbag2 bag: it has no metadata.yaml and no .mcap / .db3 file"


def open_bag(path: str | Path) -> BagReader:
    """Open a rosbag2 for reading (see :class:`BagReader`).

    Raises:
        BagError: If it cannot be opened.
    """
    return BagReader(path)
