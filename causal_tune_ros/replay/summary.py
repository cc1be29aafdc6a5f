"""What a replay did: per camera topic counts (:class:`TopicStats`) and the :class:`ReplaySummary`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from causal_tune_ros.replay.topics import OUTPUT_NAMES

_MAX_REASONS = 5  # skip reasons kept per topic for the summary


@dataclass
class TopicStats:
    """Per input topic counts.

    Attributes:
        frames: Image messages seen (including skipped and ``every``-thinned ones).
        processed: Frames run through the model and written.
        corrupt: Frames skipped because they could not be decoded.
        failed: Frames the model could not process (e.g. non-finite output).
        reasons: The first few skip reasons, ``"t=<ns>: <reason>"``.
        conditions: How many frames were processed under each weather condition.
    """

    frames: int = 0
    processed: int = 0
    corrupt: int = 0
    failed: int = 0
    reasons: list[str] = field(default_factory=list)
    conditions: dict[str, int] = field(default_factory=dict)

    def note(self, stamp: int, reason: str) -> None:
        """Keep a skip reason (the first few only)."""
        if len(self.reasons) < _MAX_REASONS:
            self.reasons.append(f"t={stamp}: {reason}")


@dataclass
class ReplaySummary:
    """What a replay did.

    Attributes:
        input_path: Input bag.
        output_path: Output bag.
        storage: Output storage plugin.
        topics: Per input image topic statistics.
        outputs: Per input image topic, its output topic names.
        copied: Input messages copied to the output bag.
        seconds: Wall time of the whole replay.
        model_seconds: Time spent in ``SegmentationPipeline.process`` (the model stage).
        videos: Video files written.
        dropped: Input topics that were this run's own output topics (the input is an earlier replay's
            output) -> messages not copied.
    """

    input_path: Path
    output_path: Path
    storage: str
    topics: dict[str, TopicStats]
    outputs: dict[str, dict[str, str]]
    copied: int = 0
    seconds: float = 0.0
    model_seconds: float = 0.0
    videos: list[Path] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def processed(self) -> int:
        """Frames processed over all topics."""
        return sum(s.processed for s in self.topics.values())

    @property
    def skipped(self) -> int:
        """Frames skipped (corrupt or failed) over all topics."""
        return sum(s.corrupt + s.failed for s in self.topics.values())

    @property
    def fps(self) -> float:
        """Processed frames per wall-clock second."""
        return self.processed / self.seconds if self.seconds > 0 else 0.0

    def format(self) -> str:
        """A human-readable multi-line report."""
        lines = [f"replay: {self.input_path} -> {self.output_path} ({self.storage})"]
        for topic, s in self.topics.items():
            out = self.outputs[topic]
            ns = out["class_mask"].rsplit("/", 1)[0] or ""
            line = f"  {topic}: {s.frames} frames, {s.processed} processed"
            if s.corrupt:
                line += f", {s.corrupt} skipped as corrupt"
            if s.failed:
                line += f", {s.failed} failed in the model"
            if s.conditions:
                line += " [" + ", ".join(f"{c}: {n}" for c, n in sorted(s.conditions.items())) + "]"
            lines.append(line + f" -> {ns}/{{{','.join(OUTPUT_NAMES)}}}")
            lines.extend(f"    skipped {r}" for r in s.reasons)
        lines.append(f"  skipped frames: {self.skipped}")
        lines.append(f"  input messages copied: {self.copied}")
        if self.dropped:
            lines.append(
                f"  dropped {sum(self.dropped.values())} input messages of an earlier replay's outputs, "
                f"replaced by this run's: {', '.join(sorted(self.dropped))}"
            )
        share = 100 * self.model_seconds / self.seconds if self.seconds > 0 else 0.0
        lines.append(
            f"  {self.processed} frames in {self.seconds:.2f} s ({self.fps:.2f} fps); "
            f"model {self.model_seconds:.2f} s ({share:.0f}% of the time)"
        )
        lines.extend(f"  video: {v}" for v in self.videos)
        return "\n".join(lines)
