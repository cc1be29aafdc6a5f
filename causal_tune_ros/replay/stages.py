"""The replay's stages in threads: reading in the calling thread, the model and the writer in their own,
linked by small bounded queues (one item per frame or camera batch, so memory stays flat on long bags).

PyTorch releases the GIL while it computes, so reading the next frame and writing the previous one overlap
the model. The reader stays in the calling thread because SQLite handles only work in the thread that
opened them (the writer opens its bag in its own thread for the same reason), and so that Ctrl-C lands in
the stage that drives the others.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable
from typing import TypeVar

from causal_tune_ros.bags import BagWriter

T = TypeVar("T")

QUEUE_SIZE = 8  # items in flight between stages: enough to hide jitter, small enough for 4K images
_DONE = object()


def run_threaded(
    items: Iterable[T],
    infer: Callable[[T], None],
    emit: Callable[[BagWriter, T], None],
    open_writer: Callable[[], BagWriter],
    stop: threading.Event,
) -> None:
    """Feed ``items`` (read here) through ``infer`` (model thread) to ``emit`` (writer thread).

    The writer's bag is committed only when no stage stopped early (``stop`` set by Ctrl-C, SIGTERM or a
    failure); otherwise the previous output stays and the new one is kept as ``.partial``.

    Args:
        items: The reading stage, iterated in the calling thread.
        infer: The model stage, called on each item in the model thread.
        emit: The writing stage, called with the open writer and each item in the writer thread.
        open_writer: Opens the output bag (called in the writer thread).
        stop: Set by any stage that fails, and by the caller to stop early.

    Raises:
        BaseException: The first error of any stage (later ones are usually consequences of stopping).
    """
    to_model: queue.Queue = queue.Queue(maxsize=QUEUE_SIZE)
    to_writer: queue.Queue = queue.Queue(maxsize=QUEUE_SIZE)
    errors: list[BaseException] = []

    def model() -> None:
        try:
            while (item := to_model.get()) is not _DONE:
                infer(item)
                if not _put(to_writer, item, stop):
                    break
        except BaseException as exc:  # handed to the calling thread, re-raised there
            errors.append(exc)
            stop.set()
            _drain(to_model)
        finally:
            _put(to_writer, _DONE, stop, force=True)

    def write() -> None:
        try:
            with open_writer() as writer:
                while (item := to_writer.get()) is not _DONE:
                    emit(writer, item)
                # Stopped early (Ctrl-C, SIGTERM, a failed stage): keep the previous output.
                writer.close(commit=not stop.is_set())
        except BaseException as exc:
            errors.append(exc)
            stop.set()
            _drain(to_writer)

    threads = [
        threading.Thread(target=model, name="replay-model", daemon=True),
        threading.Thread(target=write, name="replay-writer", daemon=True),
    ]
    for t in threads:
        t.start()
    try:
        for item in items:
            if not _put(to_model, item, stop):
                break
    except BaseException as exc:
        errors.append(exc)
        stop.set()
    finally:
        _put(to_model, _DONE, stop, force=True)
        for t in threads:
            t.join()
    if errors:
        raise errors[0]


def _put(q: queue.Queue, item: object, stop: threading.Event, force: bool = False) -> bool:
    """Put with a stop check, so a stage blocked on a full queue notices another stage's failure.

    Returns False if it gave up because of ``stop`` (``force`` keeps trying: the end marker must arrive).
    """
    while True:
        if stop.is_set() and not force:
            return False
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            if stop.is_set() and force:
                _drain(q)


def _drain(q: queue.Queue) -> None:
    """Empty a queue so a producer blocked on it can finish."""
    while True:
        try:
            q.get_nowait()
        except queue.Empty:
            return
