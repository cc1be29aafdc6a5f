"""Progress of long jobs (training, evaluation, replay, fleet) on tqdm: a bar on a terminal, else log lines.

A bar redrawn with ``\\r`` is unreadable in a CI log or a file, so off a terminal the same tqdm object
prints one full line at most every ``log_interval`` seconds, and a last one when it closes.

>>> bar = progress_bar(100, "replay", unit="frame")  # doctest: +SKIP
>>> bar.update(); bar.close()  # doctest: +SKIP
"""

from __future__ import annotations

import math
import sys
from typing import Any, TextIO

from tqdm import tqdm

#: Log-line layout when the total is known: ``replay 50/100 50% 12.30frame/s elapsed 00:04 ETA 00:04``.
LOG_FORMAT = (
    "{desc} {n_fmt}/{total_fmt} {percentage:3.0f}% {rate_noinv_fmt} elapsed {elapsed} ETA {remaining}"
)
#: Log-line layout when it is not: ``replay 50 frames 12.30frame/s elapsed 00:04``.
LOG_FORMAT_OPEN = "{desc} {n_fmt} {unit}s {rate_noinv_fmt} elapsed {elapsed}"


def format_duration(seconds: float) -> str:
    """``75.2`` -> ``"01:15"``; ``3725`` -> ``"1:02:05"`` (tqdm's clock format); unknown -> ``"--:--"``.

    Args:
        seconds: A duration; negative, infinite or NaN means unknown.
    """
    if not (seconds >= 0 and math.isfinite(seconds)):
        return "--:--"
    return tqdm.format_interval(round(seconds))


def is_terminal(stream: Any) -> bool:
    """Whether ``stream`` is an interactive terminal (a bar can be redrawn in place there)."""
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


class _LineWriter:
    """Turns tqdm's in-place redraws (``"\\r" + line + padding``) into one log line per redraw."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> None:
        for part in text.split("\r"):
            line = part.rstrip()
            if line:
                self.stream.write(line + "\n")

    def flush(self) -> None:
        self.stream.flush()


def progress_bar(
    total: int | None,
    desc: str,
    unit: str = "it",
    *,
    enabled: bool = True,
    stream: TextIO | None = None,
    tty: bool | None = None,
    initial: int = 0,
    log_interval: float = 5.0,
) -> tqdm:
    """A tqdm progress bar on a terminal, or log lines (at most one per ``log_interval`` s) elsewhere.

    Args:
        total: Expected count (``None`` or 0 when unknown: no percentage, no ETA).
        desc: Short prefix, e.g. ``"replay"``.
        unit: What is counted (``"frame"``, ``"step"``, ``"img"``).
        enabled: ``False`` returns a bar that prints nothing (library use, tests, ``--quiet``).
        stream: Output stream (default ``sys.stderr``, so stdout stays clean for results).
        tty: Force bar (``True``) or log-line (``False``) mode; default: whether ``stream`` is a terminal.
        initial: Count already done (a resumed job).
        log_interval: Seconds between log lines off a terminal.

    Returns:
        A ``tqdm`` object: ``update(n)``, ``set_postfix_str``, ``write``, ``close`` (or use it as a
        context manager).
    """
    stream = stream if stream is not None else sys.stderr
    tty = is_terminal(stream) if tty is None else tty
    total = int(total) if total else None
    if tty or not enabled:
        return tqdm(
            total=total,
            desc=desc,
            unit=unit,
            initial=initial,
            file=stream,
            dynamic_ncols=True,
            disable=not enabled,
        )
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        initial=initial,
        file=_LineWriter(stream),
        mininterval=log_interval,
        miniters=1,  # check the clock on every update: a line is due by time, not by count
        bar_format=(LOG_FORMAT if total else LOG_FORMAT_OPEN) + "{postfix}",
    )
