"""Writing a rosbag2 atomically (:class:`BagWriter`), as ``ros2 bag record`` lays it out.

Bags written here:

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
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from causal_tune_ros.bags.messages import msg_class, qos_profile, serialize, typestore
from causal_tune_ros.bags.paths import (
    check_not_overlapping,
    not_a_bag_reason,
    storage_file_stem,
    storage_for,
)
from causal_tune_ros.errors import BagError

LOG = logging.getLogger(__name__)

#: rosbag2 metadata versions :class:`BagWriter` can write: 8 is read by Humble and Jazzy, 9 by Jazzy.
BAG_VERSIONS = (8, 9)
#: Default metadata version: the one ROS 2 Humble's rosbag2 parses (QoS profiles as a YAML string).
DEFAULT_BAG_VERSION = 8


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
