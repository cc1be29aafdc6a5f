"""Per-bag results and the fleet summary: what was done, skipped, retried and lost, and how fast."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: Bag outcomes.
DONE = "done"  # processed in this run
SKIPPED = "skipped"  # complete from an earlier run, not redone
KEPT = "kept"  # outputs exist but do not match this run (other settings, changed input): not redone
FAILED = "failed"  # could not be processed (corrupt bag, worker deaths beyond the retry bound, ...)


@dataclass
class BagResult:
    """One bag's outcome.

    Attributes:
        name: Bag name (output ``OUT/<name>``).
        input: Input bag path.
        status: :data:`DONE`, :data:`SKIPPED`, :data:`KEPT` or :data:`FAILED` (``""`` while running).
        frames: Image messages seen on the segmented topics.
        processed: Frames segmented and written.
        corrupt: Frames skipped as undecodable.
        failed: Frames the model failed on.
        rows: Rows in the frame index.
        conditions: Weather condition -> processed frames.
        seconds: Wall time of the (last) attempt.
        model_seconds: Time in the model.
        attempts: Attempts made (worker deaths cause more than one).
        worker: ``pid@host`` of the worker that did the last attempt.
        error: Why it failed.
        note: Anything else worth saying (why it was kept, an incomplete index ...).
        attempt: Folder holding the finished attempt's results, until committed.
    """

    name: str
    input: str = ""
    status: str = ""
    frames: int = 0
    processed: int = 0
    corrupt: int = 0
    failed: int = 0
    rows: int = 0
    conditions: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    model_seconds: float = 0.0
    attempts: int = 0
    worker: str = ""
    error: str | None = None
    note: str | None = None
    attempt: str | None = None

    def fill(self, summary: Any, seconds: float) -> None:
        """Take the counts of a ``replay`` :class:`~causal_tune_ros.replay.ReplaySummary`."""
        topics = summary.topics.values()
        self.frames = sum(s.frames for s in topics)
        self.processed = summary.processed
        self.corrupt = sum(s.corrupt for s in topics)
        self.failed = sum(s.failed for s in topics)
        conditions: Counter[str] = Counter()
        for s in topics:
            conditions.update(s.conditions)
        self.conditions = dict(sorted(conditions.items()))
        self.seconds = seconds
        self.model_seconds = summary.model_seconds

    @property
    def fps(self) -> float:
        """Processed frames per second of the attempt."""
        return self.processed / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (without the attempt folder)."""
        d = asdict(self)
        d.pop("attempt")
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BagResult:
        """Inverse of :meth:`to_dict` (unknown keys ignored)."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def line(self) -> str:
        """One human-readable line."""
        if self.status == FAILED:
            tries = f" after {self.attempts} attempts" if self.attempts > 1 else ""
            return f"{self.name}: FAILED{tries}: {self.error}"
        if self.status == KEPT:
            return f"{self.name}: kept, not redone: {self.note} (--overwrite redoes it)"
        parts = [f"{self.name}: {self.processed} frames"]
        if self.corrupt or self.failed:
            parts.append(f"({self.corrupt} corrupt, {self.failed} failed in the model)")
        if self.conditions:
            parts.append("[" + ", ".join(f"{c} {n}" for c, n in self.conditions.items()) + "]")
        if self.status == SKIPPED:
            parts.append("- already done, skipped")
        else:
            parts.append(f"in {self.seconds:.1f} s ({self.fps:.1f} fps) on {self.worker}")
            if self.attempts > 1:
                parts.append(f"after {self.attempts} attempts")
        text = " ".join(parts)
        return f"{text}; {self.note}" if self.note else text


@dataclass
class FleetSummary:
    """What a fleet run did.

    Attributes:
        out: Output folder.
        bags: One result per input bag, in input order.
        workers: Workers started (0 when there was nothing to do).
        seconds: Wall time of the run (Ray start included).
        work_seconds: Wall time from the first worker ready to the last bag done.
        index_rows: Rows in ``OUT/index.parquet`` after the run.
        worker_deaths: Attempts lost to a dying worker.
        interrupted: The run was stopped before the end (Ctrl-C).
    """

    out: Path
    bags: list[BagResult] = field(default_factory=list)
    workers: int = 0
    seconds: float = 0.0
    work_seconds: float = 0.0
    index_rows: int = 0
    worker_deaths: int = 0
    interrupted: bool = False

    def count(self, status: str) -> int:
        """Bags with this status."""
        return sum(b.status == status for b in self.bags)

    @property
    def processed(self) -> int:
        """Frames processed in this run."""
        return sum(b.processed for b in self.bags if b.status == DONE)

    @property
    def fps(self) -> float:
        """Frames processed in this run per second of work (model loading and Ray start excluded)."""
        return self.processed / self.work_seconds if self.work_seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        """No bag failed and the run was not interrupted."""
        return not self.interrupted and self.count(FAILED) == 0

    def format(self) -> str:
        """A multi-line report."""
        done = [b for b in self.bags if b.status == DONE]
        conditions: Counter[str] = Counter()
        for b in done:
            conditions.update(b.conditions)
        corrupt = sum(b.corrupt for b in done)
        failed_frames = sum(b.failed for b in done)
        shares = ", ".join(f"{c} {n}" for c, n in sorted(conditions.items()))
        lines = [
            f"fleet: {len(self.bags)} bags -> {self.out}"
            + (" (interrupted: run the same command again to resume)" if self.interrupted else ""),
            f"  done {len(done)}, already done {self.count(SKIPPED)}, kept {self.count(KEPT)}, "
            f"failed {self.count(FAILED)}, not started {self.count('')}",
            f"  frames: {self.processed} processed, {corrupt} corrupt, {failed_frames} failed in the model"
            + (f" [{shares}]" if shares else ""),
        ]
        if self.worker_deaths:
            retried = [b.name for b in self.bags if b.attempts > 1]
            lines.append(f"  worker deaths: {self.worker_deaths}; retried: {', '.join(retried) or '-'}")
        lines.extend(f"  failed: {b.line()}" for b in self.bags if b.status == FAILED)
        lines.extend(f"  kept: {b.line()}" for b in self.bags if b.status == KEPT)
        lines.append(
            f"  {self.processed} frames in {self.work_seconds:.1f} s on {self.workers} workers "
            f"({self.fps:.1f} fps); {self.seconds:.1f} s in all"
        )
        lines.append(f"  index: {self.out / 'index.parquet'} ({self.index_rows} rows)")
        return "\n".join(lines)

    def to_json(self) -> str:
        """The summary as JSON (``OUT/fleet_summary.json``)."""
        data = {
            "out": str(self.out),
            "workers": self.workers,
            "seconds": self.seconds,
            "work_seconds": self.work_seconds,
            "processed": self.processed,
            "fps": self.fps,
            "index_rows": self.index_rows,
            "worker_deaths": self.worker_deaths,
            "interrupted": self.interrupted,
            "counts": {s: self.count(s) for s in (DONE, SKIPPED, KEPT, FAILED)},
            "bags": [b.to_dict() for b in self.bags],
        }
        return json.dumps(data, indent=2)
