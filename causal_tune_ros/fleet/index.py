"""The frame index: one row per frame a fleet run segmented or tried to, in Parquet.

Columns (``OUT/index.parquet``; each bag's rows are first written to its own part file):

================  =========  ==================================================================
column            type       meaning
================  =========  ==================================================================
bag               string     the bag's name (its output is ``OUT/<bag>``)
topic             string     input image topic
stamp             int64      log time of the input message, nanoseconds (the outputs carry it)
condition         string     weather condition whose band was used (null if not decoded)
condition_source  string     how it was decided: ``classifier`` (``--weather auto``), ``topic``
                             (the bag's weather topic), ``default`` (``topic`` mode before the
                             first weather message: clear), ``fixed`` (a condition given)
band_low          float32    band-pass low edge used
band_high         float32    band-pass high edge used
drivable          float32    share of pixels in a drivable class, 0..1
confidence        float32    mean over pixels of the maximum class probability, 0..1
status            string     ``ok``, ``corrupt`` (could not be decoded), ``failed`` (the model failed)
reason            string     why a frame was not ``ok`` (null when it was)
share_<class>     float32    share of pixels of each class, 0..1 (``share_road``, ``share_sky``, ...)
================  =========  ==================================================================

Rows of frames that are not ``ok`` have nulls in the per-pixel columns.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from causal_tune_ros.fleet.extra import require

#: Frame status values.
STATUS_OK = "ok"
STATUS_CORRUPT = "corrupt"
STATUS_FAILED = "failed"

#: ``condition_source`` values, per ``--weather`` mode.
SOURCE_CLASSIFIER = "classifier"
SOURCE_TOPIC = "topic"
SOURCE_DEFAULT = "default"
SOURCE_FIXED = "fixed"

#: Key of the JSON document stored in a part file's Parquet metadata.
META_KEY = b"causal_tune_fleet"

#: Columns before the per-class shares, in order.
BASE_COLUMNS = (
    "bag",
    "topic",
    "stamp",
    "condition",
    "condition_source",
    "band_low",
    "band_high",
    "drivable",
    "confidence",
    "status",
    "reason",
)


def share_column(class_name: str) -> str:
    """Index column of a class's pixel share: ``"traffic light"`` -> ``"share_traffic_light"``."""
    return "share_" + (re.sub(r"[^0-9a-z]+", "_", class_name.lower()).strip("_") or "unnamed")


def schema(class_names: Sequence[str]) -> Any:
    """The ``pyarrow`` schema of the index for a class set.

    Raises:
        FleetError: If pyarrow is not installed.
    """
    pa = require("pyarrow")
    fields = [
        pa.field("bag", pa.string()),
        pa.field("topic", pa.string()),
        pa.field("stamp", pa.int64()),
        pa.field("condition", pa.string()),
        pa.field("condition_source", pa.string()),
        pa.field("band_low", pa.float32()),
        pa.field("band_high", pa.float32()),
        pa.field("drivable", pa.float32()),
        pa.field("confidence", pa.float32()),
        pa.field("status", pa.string()),
        pa.field("reason", pa.string()),
    ]
    fields += [pa.field(share_column(n), pa.float32()) for n in class_names]
    return pa.schema(fields)


class FrameRecorder:
    """Collects the index rows of one bag while :class:`~causal_tune_ros.replay.Replayer` runs it.

    :meth:`on_frame` is the replayer's per-frame callback (processed frames); :meth:`on_skip` takes the
    frames it skipped; :meth:`note_weather` the stamps of valid messages on the bag's weather topic.

    Args:
        bag: The bag's name.
        class_names: The model's classes, in id order.
        weather_mode: ``ReplayOptions.weather`` (``auto``, ``topic`` or a condition).
    """

    def __init__(self, bag: str, class_names: Sequence[str], weather_mode: str) -> None:
        self.bag = bag
        self.class_names = list(class_names)
        self.weather_mode = weather_mode
        self._columns: dict[str, list[Any]] = {c: [] for c in BASE_COLUMNS}
        self._shares: list[np.ndarray] = []
        self._first_weather: int | None = None
        self._lock = threading.Lock()
        self.skipped = 0

    def __len__(self) -> int:
        return len(self._columns["stamp"])

    def note_weather(self, stamp: int) -> None:
        """A valid condition was logged on the weather topic at ``stamp`` (ns)."""
        with self._lock:
            if self._first_weather is None or stamp < self._first_weather:
                self._first_weather = stamp

    def _source(self, stamp: int) -> str:
        if self.weather_mode == "auto":
            return SOURCE_CLASSIFIER
        if self.weather_mode == "topic":
            first = self._first_weather
            return SOURCE_TOPIC if first is not None and first <= stamp else SOURCE_DEFAULT
        return SOURCE_FIXED

    def on_frame(self, topic: str, stamp: int, rgb: np.ndarray, result: Any, condition: str) -> None:
        """Replayer callback: a frame was segmented and written."""
        mask = np.asarray(result.class_mask)
        pixels = max(mask.size, 1)
        k = len(self.class_names)
        shares = np.bincount(mask.ravel(), minlength=k)[:k].astype(np.float64) / pixels
        drivable = float(np.count_nonzero(result.drivable_mask)) / pixels
        conf = result.confidence
        confidence = float(np.mean(conf)) if conf is not None else None
        band = result.band.as_tuple() if getattr(result, "band", None) is not None else (None, None)
        with self._lock:
            self._append(
                topic, stamp, condition, self._source(stamp), band, drivable, confidence, STATUS_OK, None
            )
            self._shares.append(shares.astype(np.float32))

    def on_skip(self, topic: str, stamp: int, reason: str) -> None:
        """A frame the replayer skipped: ``corrupt`` or ``failed`` (reason starting with "model failed")."""
        status = STATUS_FAILED if reason.startswith("model failed") else STATUS_CORRUPT
        with self._lock:
            self._append(topic, stamp, None, None, (None, None), None, None, status, reason)
            self._shares.append(np.full(len(self.class_names), np.nan, dtype=np.float32))
            self.skipped += 1

    def _append(
        self,
        topic: str,
        stamp: int,
        condition: str | None,
        source: str | None,
        band: tuple[float | None, float | None],
        drivable: float | None,
        confidence: float | None,
        status: str,
        reason: str | None,
    ) -> None:
        values = (
            self.bag,
            topic,
            int(stamp),
            condition,
            source,
            band[0],
            band[1],
            drivable,
            confidence,
            status,
            reason,
        )
        for column, value in zip(BASE_COLUMNS, values, strict=True):
            self._columns[column].append(value)

    def table(self, metadata: Mapping[str, Any] | None = None) -> Any:
        """The rows as a ``pyarrow.Table`` in time order, with ``metadata`` stored as JSON in the schema."""
        pa = require("pyarrow")
        with self._lock:
            order = np.argsort(np.asarray(self._columns["stamp"], dtype=np.int64), kind="stable")
            data: dict[str, Any] = {c: [v[i] for i in order] for c, v in self._columns.items()}
            shares = (
                np.stack(self._shares)[order]
                if self._shares
                else np.zeros((0, len(self.class_names)), dtype=np.float32)
            )
        for j, name in enumerate(self.class_names):
            column = shares[:, j]
            data[share_column(name)] = pa.array(column, mask=np.isnan(column), type=pa.float32())
        sch = schema(self.class_names)
        if metadata is not None:
            sch = sch.with_metadata({META_KEY: json.dumps(metadata).encode()})
        return pa.Table.from_pydict(data, schema=sch)


def write_table(table: Any, path: Path) -> Path:
    """Write a Parquet file atomically: beside it under a temporary name, then rename.

    Returns:
        ``path``.
    """
    pq = require("pyarrow.parquet")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_metadata(path: Path) -> dict[str, Any] | None:
    """The JSON metadata of a part file, or ``None`` if it is unreadable or has none."""
    pq = require("pyarrow.parquet")
    try:
        meta = pq.read_schema(path).metadata or {}
        return json.loads(meta[META_KEY]) if META_KEY in meta else None
    except (OSError, ValueError, KeyError):
        return None


def concat(parts: Sequence[Path]) -> Any:
    """Concatenate part files into one table (columns of differing class sets are unified, nulls filled).

    The parts' own metadata is dropped.
    """
    pa = require("pyarrow")
    pq = require("pyarrow.parquet")
    tables = [pq.read_table(p).replace_schema_metadata(None) for p in parts]
    if not tables:
        return schema([]).empty_table()
    return pa.concat_tables(tables, promote_options="default")
