"""Latest-frame-only hand-off between ROS callbacks and the inference worker thread (no rclpy here).

Image callbacks must never wait for inference: they drop the newest message into a single slot and
return. A worker thread takes whatever is in the slot when it is free, so a frame that arrives while an
older one is still waiting replaces it; the replaced frame is counted as dropped. Output lag is thereby
bounded by one inference, whatever the input rate.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Mailbox(Protocol[T_co]):
    """What :class:`FrameWorker` takes its items from (a :class:`LatestSlot`, or a camera batcher)."""

    def take(self, timeout: float | None = None) -> T_co | None:
        """The next item; None on timeout or once closed."""
        ...

    def close(self) -> None:
        """Wake every waiter; ``take`` returns None from now on."""
        ...

    @property
    def closed(self) -> bool:
        """True once closed."""
        ...


class LatestSlot(Generic[T]):
    """A one-item mailbox: ``put`` replaces, ``take`` waits. Thread safe.

    Attributes:
        dropped: How many items were replaced before anyone took them.
        accepted: How many items were put in total.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._has_item = False
        self._closed = False
        self.dropped = 0
        self.accepted = 0

    def put(self, item: T) -> bool:
        """Store ``item`` as the newest one, replacing (and counting) an untaken older one.

        Args:
            item: The new item.

        Returns:
            True if an older item was dropped to make room.
        """
        with self._cond:
            replaced = self._has_item
            if replaced:
                self.dropped += 1
            self._item = item
            self._has_item = True
            self.accepted += 1
            self._cond.notify()
        return replaced

    def take(self, timeout: float | None = None) -> T | None:
        """Wait for an item and remove it from the slot.

        Args:
            timeout: Seconds to wait at most; None waits until an item arrives or the slot closes.

        Returns:
            The newest item, or None on timeout or when the slot is closed.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: self._has_item or self._closed, timeout=timeout):
                return None
            if self._closed:
                return None
            item, self._item, self._has_item = self._item, None, False
            return item

    def clear(self) -> None:
        """Discard a waiting item without counting it as dropped (used when the node stops)."""
        with self._cond:
            self._item, self._has_item = None, False

    def close(self) -> None:
        """Wake every waiter; ``take`` returns None from now on."""
        with self._cond:
            self._closed = True
            self._item, self._has_item = None, False
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed


class FrameWorker(Generic[T]):
    """A daemon thread that feeds the newest item of a :class:`Mailbox` to a handler, one at a time.

    The handler must not raise; if it does anyway, ``on_error`` gets the exception and the worker goes
    on with the next item (a bug in one frame never stops the node).

    Args:
        handler: Called with each item taken from the slot, in the worker thread.
        on_error: Called with an exception that escaped ``handler``.
        name: Thread name (shows in debuggers and ``py-spy``).
        mailbox: Where items come from; default a fresh :class:`LatestSlot` fed by :meth:`submit`.
    """

    def __init__(
        self,
        handler: Callable[[T], None],
        on_error: Callable[[BaseException], None],
        name: str = "segmentation-worker",
        mailbox: Mailbox[T] | None = None,
    ) -> None:
        self.slot: Mailbox[T] = mailbox if mailbox is not None else LatestSlot()
        self._handler = handler
        self._on_error = on_error
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._busy = threading.Event()

    def start(self) -> None:
        """Start the thread (once)."""
        self._thread.start()

    def submit(self, item: T) -> bool:
        """Hand ``item`` over without waiting; returns True if an older waiting item was dropped.

        Raises:
            TypeError: If the worker was given a mailbox other than a :class:`LatestSlot`.
        """
        if not isinstance(self.slot, LatestSlot):
            raise TypeError("submit() needs the default LatestSlot mailbox; put into the mailbox instead")
        return self.slot.put(item)

    @property
    def busy(self) -> bool:
        """True while the handler runs."""
        return self._busy.is_set()

    def stop(self, timeout: float = 10.0) -> bool:
        """Close the slot and wait for the current item to finish.

        Args:
            timeout: Seconds to wait for the thread.

        Returns:
            True if the thread ended within ``timeout``.
        """
        self.slot.close()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while True:
            item = self.slot.take()
            if item is None:
                if self.slot.closed:
                    return
                continue
            self._busy.set()
            try:
                self._handler(item)
            except Exception as exc:  # the worker must survive any single frame
                self._on_error(exc)
            finally:
                self._busy.clear()
