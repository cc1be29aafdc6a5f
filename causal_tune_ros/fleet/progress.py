"""Fleet progress: frames over all bags, rate, ETA and the bag counts (on ``causal_tune_ros.progress``)."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from causal_tune_ros.progress import progress_bar


class FleetProgress:
    """Frames done over the whole fleet, with the bag counts alongside.

    Args:
        frames: Frames expected over the bags to process (from their metadata; a guess when unknown).
        bags: Bags to process.
        stream: Output stream (default ``sys.stderr``).
        tty: Bar (``True``) or log lines (``False``); default ``stream.isatty()``.
        log_interval: Seconds between log lines off a terminal.
        enabled: ``False`` prints nothing.
    """

    def __init__(
        self,
        frames: int,
        bags: int,
        stream: TextIO | None = None,
        tty: bool | None = None,
        log_interval: float = 10.0,
        enabled: bool = True,
    ) -> None:
        self.enabled = enabled
        self.bags = bags
        self.bags_done = 0
        self.bags_failed = 0
        self.frames = 0
        self._bar: Any = progress_bar(
            frames or None,
            "fleet",
            unit="frame",
            enabled=enabled,
            stream=stream if stream is not None else sys.stderr,
            tty=tty,
            log_interval=log_interval,
        )
        self._bar.set_postfix_str(self._bags_text(), refresh=False)

    def _bags_text(self) -> str:
        failed = f", {self.bags_failed} failed" if self.bags_failed else ""
        return f"bags {self.bags_done}/{self.bags}{failed}"

    def set(self, frames: int, bags_done: int, bags_failed: int) -> None:
        """Frames done so far over the fleet and the bag counts; redraws when due."""
        delta = frames - self.frames
        changed = (bags_done, bags_failed) != (self.bags_done, self.bags_failed)
        self.frames, self.bags_done, self.bags_failed = frames, bags_done, bags_failed
        if self._bar is None:
            return
        if changed:
            self._bar.set_postfix_str(self._bags_text(), refresh=False)
        self._bar.update(delta)

    def add_total(self, frames: int) -> None:
        """More frames to do than expected (a retried bag redoes its frames)."""
        if self._bar is not None and self._bar.total is not None:
            self._bar.total += frames
            self._bar.refresh()

    def write(self, line: str) -> None:
        """Print a line (a bag's result) on stdout without breaking the bar (nothing when disabled)."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.write(line, file=sys.stdout)
        else:
            print(line, flush=True)

    def close(self) -> None:
        """Final state and end of line (idempotent)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
