"""Reading a rosbag2 (a bag folder or a bare ``.mcap`` / ``.db3`` file) as raw messages."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from causal_tune_ros.bags.messages import IMAGE_TYPES
from causal_tune_ros.bags.paths import STORAGE_OF_SUFFIX
from causal_tune_ros.errors import BagError


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
    storage = [n for n in names if Path(n).suffix in STORAGE_OF_SUFFIX]
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
