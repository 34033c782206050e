"""Bounded, cancellable FIFO between two stage threads: the pipeline's one concurrency primitive.

End of stream and abort are *states* of the channel, not items in it, so a full queue can
never hold back a cancellation and no sentinel value can be confused with data.
"""

from __future__ import annotations

import collections
import enum
import threading
import time
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from .errors import Cancelled

T = TypeVar("T")


class Policy(enum.Enum):
    """What `put()` does when the channel is full."""

    BLOCK = "block"  # wait for room: lossless, back-pressure (file mode)
    DROP_OLDEST = "drop_oldest"  # never wait: evict the oldest droppable item, count it (live)


class Channel(Generic[T]):
    """A deque guarded by one Condition.

    With `Policy.BLOCK`, `put()` blocks while the channel holds `maxsize` items
    (back-pressure: memory stays flat however long the video). With `Policy.DROP_OLDEST`,
    `put()` never waits: it evicts the oldest item for which `droppable(item)` is true (video
    frames; audio must never be dropped) and counts it in `dropped`; this is the only place
    vsr ever drops frames. `close()` means normal end of stream: consumers drain what is
    queued, then iteration stops. `cancel()` means abort: every blocked or later
    `put()`/`get()` raises `Cancelled` at once.
    """

    def __init__(self, maxsize: int, name: str = "", policy: Policy = Policy.BLOCK,
                 droppable: Callable[[T], bool] = lambda _item: True) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        self.maxsize = maxsize
        self.name = name
        self.policy = policy
        self.droppable = droppable
        self.dropped = 0
        self._items: collections.deque[T] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self._cancelled = False
        self.wait_put = 0.0  # seconds producers spent blocked on a full channel
        self.wait_get = 0.0  # seconds consumers spent blocked on an empty channel

    def put(self, item: T) -> None:
        with self._cond:
            if self.policy is Policy.DROP_OLDEST and len(self._items) >= self.maxsize:
                self._evict()
            if len(self._items) >= self.maxsize and not self._cancelled and \
                    self.policy is Policy.BLOCK:
                t0 = time.perf_counter()
                while len(self._items) >= self.maxsize and not self._cancelled:
                    self._cond.wait()
                self.wait_put += time.perf_counter() - t0
            if self._cancelled:
                raise Cancelled(self.name)
            if self._closed:
                raise RuntimeError(f"put() on closed channel {self.name!r}")
            self._items.append(item)
            self._cond.notify_all()

    def _evict(self) -> None:
        """Drop the oldest droppable items until there is room (never-droppable items stay:
        they are small, and the consumer forwards them at once)."""
        kept: collections.deque[T] = collections.deque()
        while self._items and len(self._items) + len(kept) >= self.maxsize:
            item = self._items.popleft()
            if self.droppable(item):
                self.dropped += 1
            else:
                kept.append(item)
        self._items.extendleft(reversed(kept))

    def _wait_for_item(self, deadline: float | None) -> bool:
        """Wait until an item is queued; False on close/timeout with nothing queued."""
        t0 = time.perf_counter()
        try:
            while not self._items:
                if self._cancelled:
                    raise Cancelled(self.name)
                if self._closed:
                    return False
                timeout = None if deadline is None else deadline - time.monotonic()
                if timeout is not None and timeout <= 0:
                    return False
                self._cond.wait(timeout)
            if self._cancelled:
                raise Cancelled(self.name)
            return True
        finally:
            self.wait_get += time.perf_counter() - t0

    def get(self) -> T:
        """The next item; raises `EOFError` after close() once drained."""
        with self._cond:
            if not self._wait_for_item(None):
                raise EOFError(self.name)
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def __iter__(self) -> Iterator[T]:
        while True:
            try:
                yield self.get()
            except EOFError:
                return

    def next_batch(self, max_items: int, max_wait: float | None = None) -> list[T] | None:
        """Up to `max_items`, or None once closed and drained.

        Blocks for the first item, then collects more until `max_items` are in hand or
        `max_wait` seconds pass (`None`: wait for a full batch; only close() releases a
        short one; `0`: take only what is queued right now).
        """
        with self._cond:
            if not self._wait_for_item(None):
                return None
            batch = [self._items.popleft()]
            deadline = None if max_wait is None else time.monotonic() + max_wait
            while len(batch) < max_items:
                if not self._items and not self._wait_for_item(deadline):
                    break
                batch.append(self._items.popleft())
                self._cond.notify_all()
            self._cond.notify_all()
            return batch

    def batches(self, max_items: int, max_wait: float | None = None) -> Iterator[list[T]]:
        """`next_batch()` until the channel is closed and drained."""
        while (batch := self.next_batch(max_items, max_wait)) is not None:
            yield batch

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def cancel(self) -> None:
        with self._cond:
            self._cancelled = True
            self._items.clear()
            self._cond.notify_all()

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)
