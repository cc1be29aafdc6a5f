"""Progress report for long offline jobs: a one-line bar on a terminal, plain log lines otherwise.

A bar redrawn with ``\\r`` is unreadable in a CI log or a file, so when the stream is not a TTY the
reporter prints a full line at most every ``log_interval`` seconds (and at the end) instead.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def format_duration(seconds: float) -> str:
    """``75.2`` -> ``"1:15"``; ``3725`` -> ``"1:02:05"``; unknown (negative/inf/nan) -> ``"--:--"``."""
    if not (seconds >= 0 and seconds < float("inf")):
        return "--:--"
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """Frames done, frames per second and ETA for a job of (about) ``total`` frames.

    Args:
        total: Expected number of frames (``None`` or 0 when unknown: no percentage, no ETA).
        label: Short prefix, e.g. ``"replay"``.
        stream: Output stream (default ``sys.stderr``, so stdout stays clean for results).
        tty: Force bar (``True``) or log-line (``False``) mode; default: ``stream.isatty()``.
        min_interval: Minimum seconds between bar redraws on a terminal.
        log_interval: Seconds between log lines when not on a terminal.
        enabled: ``False`` silences everything (library use, tests).
    """

    def __init__(
        self,
        total: int | None,
        label: str = "",
        stream: TextIO | None = None,
        tty: bool | None = None,
        min_interval: float = 0.1,
        log_interval: float = 5.0,
        enabled: bool = True,
    ) -> None:
        self.total = int(total) if total else None
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        if tty is None:
            isatty = getattr(self.stream, "isatty", None)
            tty = bool(isatty and isatty())
        self.tty = tty
        self.min_interval = min_interval
        self.log_interval = log_interval
        self.enabled = enabled
        self.count = 0
        self.start = time.perf_counter()
        self._last_draw = float("-inf")
        self._closed = False
        self._width = 0

    @property
    def elapsed(self) -> float:
        """Seconds since the reporter was created."""
        return time.perf_counter() - self.start

    @property
    def rate(self) -> float:
        """Frames per second so far (0 before the first frame)."""
        elapsed = self.elapsed
        return self.count / elapsed if elapsed > 0 and self.count else 0.0

    @property
    def eta(self) -> float:
        """Estimated seconds left (``inf`` when unknown)."""
        rate = self.rate
        if not self.total or rate <= 0:
            return float("inf")
        return max(self.total - self.count, 0) / rate

    def text(self, bar_width: int = 24) -> str:
        """The status line, e.g. ``replay [#####-----] 50/100 50% 12.3 fps ETA 0:04``."""
        parts = [self.label] if self.label else []
        if self.total:
            frac = min(self.count / self.total, 1.0)
            filled = round(frac * bar_width)
            if self.tty:
                parts.append("[" + "#" * filled + "-" * (bar_width - filled) + "]")
            parts.append(f"{self.count}/{self.total} {100 * frac:3.0f}%")
        else:
            parts.append(f"{self.count} frames")
        parts.append(f"{self.rate:.1f} fps")
        parts.append(f"elapsed {format_duration(self.elapsed)}")
        if self.total:
            parts.append(f"ETA {format_duration(self.eta)}")
        return " ".join(parts)

    def update(self, n: int = 1) -> None:
        """Count ``n`` more frames and redraw if due."""
        self.count += n
        if not self.enabled or self._closed:
            return
        now = time.perf_counter()
        interval = self.min_interval if self.tty else self.log_interval
        if now - self._last_draw >= interval:
            self._last_draw = now
            self._draw()

    def _draw(self) -> None:
        line = self.text()
        if self.tty:
            # Pad to erase leftovers of a longer previous line; no newline so the bar stays in place.
            pad = max(self._width - len(line), 0)
            self._width = len(line)
            self.stream.write("\r" + line + " " * pad)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Draw the final state and end the line (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if not self.enabled:
            return
        self._draw()
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
