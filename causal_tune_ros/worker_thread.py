"""Run a callable in a fresh worker thread and hand its result (or exception) back to the caller."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def run_in_worker(fn: Callable[[], T], on_interrupt: Callable[[], None] | None = None) -> T:
    """Call ``fn`` in a fresh thread, wait for it and return its result (re-raising its exception).

    PyTorch's OpenMP workers spin-wait for the thread that drives them; when that is the process's main
    thread and the CPU cores are oversubscribed (a shared machine, a busy vehicle computer), inference
    there is many times slower than in any other thread (docs/PERFORMANCE.md, "Design measurements").
    The replay, the demo and the benchmarks therefore run every model call through this.

    Args:
        fn: What to run.
        on_interrupt: Called on Ctrl-C in the caller (e.g. to ask ``fn`` to stop); the worker is then
            awaited, so it can finish cleanly (close a bag), before ``KeyboardInterrupt`` propagates.

    Returns:
        What ``fn`` returned.

    Raises:
        BaseException: Whatever ``fn`` raised, re-raised in the caller.
    """
    box: list[Any] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            box.append(fn())
        except BaseException as exc:  # re-raised in the caller
            errors.append(exc)

    worker = threading.Thread(target=target, name="causal-tune-worker", daemon=True)
    worker.start()
    try:
        worker.join()
    except KeyboardInterrupt:
        if on_interrupt is not None:
            on_interrupt()
            worker.join()
        raise
    if errors:
        raise errors[0]
    return box[0]
