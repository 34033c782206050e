"""Bounded, cancellable FIFO between two stage threads: the pipeline's one concurrency primitive.

End of stream and abort are *states* of the channel, not items in it, so a full queue can
never hold back a cancellation and no sentinel value can be confused with data. It is also the
one place where vsr drops anything: live mode's `Policy.LATENCY` evicts frames here, counted.
"""

from __future__ import annotations

import collections
import enum
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from .errors import Cancelled

T = TypeVar("T")

#: LATENCY plans with the median of the consumer's last calls: one slow call (another process
#: took the CPU) must not make it drop a burst it can in fact serve.
COST_WINDOW = 9


class Policy(enum.Enum):
    """What `put()` does when the channel is full."""

    BLOCK = "block"  # wait for room: lossless, back-pressure (file mode)
    DROP_OLDEST = "drop_oldest"  # never wait: evict the oldest droppable item, count it
    # Never wait; keep bursts while they can still be served within `budget` seconds, evict the
    # oldest droppable item only when it could not (or beyond `maxsize` of them): live mode.
    LATENCY = "latency"


class Channel(Generic[T]):
    """A deque guarded by one Condition.

    With `Policy.BLOCK`, `put()` blocks while the channel holds `maxsize` items
    (back-pressure: memory stays flat however long the video). With `Policy.DROP_OLDEST`,
    `put()` never waits: it evicts the oldest item for which `droppable(item)` is true (video
    frames; audio must never be dropped) and counts it in `dropped`; this is the only place
    vsr ever drops frames. `close()` means normal end of stream: consumers drain what is
    queued, then iteration stops. `cancel()` means abort: every blocked or later
    `put()`/`get()` raises `Cancelled` at once.

    With `Policy.LATENCY`, `put()` never waits either, but a burst is kept as long as it can
    still be served in time: the oldest droppable item is evicted only while its age (since
    its `put()`) plus the consumer's expected time for every droppable item queued (plus what
    is left of the batch it is working on) would exceed `budget` seconds, or while more than
    `maxsize` droppable items are held (the memory bound). The newest item is never evicted,
    so a consumer slower than the budget still gets the latest one. The expected time per
    item comes from the consumer's measurements, reported with `served()`. Undroppable items
    neither count nor wait; with `span` given, those that end before the first droppable
    item handed out are trimmed and counted in `trimmed`: when the first frames of a live
    stream had to be dropped, its audio still starts with its first video frame.
    """

    def __init__(
        self,
        maxsize: int,
        name: str = "",
        policy: Policy = Policy.BLOCK,
        droppable: Callable[[T], bool] = lambda _item: True,
        budget: float = 0.0,
        span: Callable[[T], tuple[float, float] | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """
        Args:
            maxsize: items held (BLOCK, DROP_OLDEST), droppable items held (LATENCY).
            name: for error messages.
            policy: what `put()` does when there is no room (see `Policy`).
            droppable: which items may be evicted (video frames; never audio).
            budget: LATENCY: seconds an item may wait plus be served.
            span: LATENCY: an item's (start, end) media time in seconds, None if it has none;
                enables trimming undroppable items that end before the first droppable one.
            clock: monotonic seconds (tests inject a fake one).
        """
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        self.maxsize = maxsize
        self.name = name
        self.policy = policy
        self.droppable = droppable
        self.budget = budget
        self.span = span
        self.clock = clock
        self.dropped = 0
        self.trimmed = 0  # undroppable items trimmed before the first droppable one
        self.cost: float | None = None  # consumer seconds per droppable item (recent median)
        self._costs: collections.deque[float] = collections.deque(maxlen=COST_WINDOW)
        self._busy_until = 0.0  # when the consumer is expected to finish its current batch
        self._lead: float | None = None  # start time of the first droppable item handed out
        self._stamps: collections.deque[float] = collections.deque()  # put() time per item
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
            if self.policy is Policy.LATENCY and not self._cancelled and not self._closed:
                if self._trimmable(item, self._floor()):
                    self.trimmed += 1
                    return
                self._items.append(item)
                self._stamps.append(self.clock())
                self._shed()
                self._cond.notify_all()
                return
            if len(self._items) >= self.maxsize and not self._cancelled and self.policy is Policy.BLOCK:
                t0 = time.perf_counter()
                while len(self._items) >= self.maxsize and not self._cancelled:
                    self._cond.wait()
                self.wait_put += time.perf_counter() - t0
            if self._cancelled:
                raise Cancelled(self.name)
            if self._closed:
                raise RuntimeError(f"put() on closed channel {self.name!r}")
            self._items.append(item)
            self._stamps.append(self.clock())
            self._cond.notify_all()

    def served(self, items: int, seconds: float) -> None:
        """The consumer reports that it took `seconds` for `items` droppable items (LATENCY:
        the expected time per item that `put()` plans with is the median of the last
        `COST_WINDOW` reports)."""
        if items <= 0:
            return
        with self._cond:
            self._costs.append(seconds / items)
            self.cost = statistics.median(self._costs)
            self._busy_until = 0.0

    def _shed(self) -> None:
        """LATENCY: evict the oldest droppable items that could no longer be served within
        the budget (never the newest one), then trim what now precedes the oldest kept one."""
        drop = [i for i, item in enumerate(self._items) if self.droppable(item)]
        now = self.clock()
        ahead = max(0.0, self._busy_until - now) if self.cost is not None else 0.0
        cost = self.cost or 0.0
        k = 0  # droppable items to evict, oldest first
        while k < len(drop) - 1:
            left = len(drop) - k
            age = now - self._stamps[drop[k]]
            if left <= self.maxsize and age + ahead + cost * left <= self.budget:
                break
            k += 1
        if not k:
            return
        gone = set(drop[:k])
        kept = [
            (t, item)
            for i, (t, item) in enumerate(zip(self._stamps, self._items, strict=True))
            if i not in gone
        ]
        self._stamps = collections.deque(t for t, _ in kept)
        self._items = collections.deque(item for _, item in kept)
        self.dropped += k
        self._trim()

    def _floor(self) -> float | None:
        """Undroppable items ending at or before this media time are trimmed: the first
        droppable item handed out, or before that the oldest one queued."""
        if self.span is None or self._lead is not None:
            return self._lead
        for item in self._items:
            if self.droppable(item):
                s = self.span(item)
                return s[0] if s else None
        return None

    def _trimmable(self, item: T, floor: float | None) -> bool:
        if floor is None or self.span is None or self.droppable(item):
            return False
        s = self.span(item)
        return s is not None and s[1] <= floor

    def _trim(self) -> None:
        floor = self._floor()
        if floor is None:
            return
        keep = [not self._trimmable(item, floor) for item in self._items]
        if all(keep):
            return
        self.trimmed += keep.count(False)
        pairs = [p for p, k in zip(zip(self._stamps, self._items, strict=True), keep, strict=True) if k]
        self._stamps = collections.deque(t for t, _ in pairs)
        self._items = collections.deque(item for _, item in pairs)

    def _pop(self) -> T:
        """The next item, noting when the consumer is expected to be done with it (LATENCY).

        Until the first droppable item is handed out, it goes first: undroppable items queued
        ahead of it (its older frames were dropped) wait until it is known which of them play
        before it; they are trimmed or follow it.
        """
        i = 0
        if (
            self.span is not None
            and self._lead is None
            and self._items
            and not self.droppable(self._items[0])
        ):
            i = next((j for j, x in enumerate(self._items) if self.droppable(x)), 0)
        item = self._items[i]
        del self._items[i]
        del self._stamps[i]
        if self.policy is Policy.LATENCY and self.droppable(item):
            now = self.clock()
            self._busy_until = max(self._busy_until, now) + (self.cost or 0.0)
            if self._lead is None and self.span is not None:
                s = self.span(item)
                if s is not None:
                    self._lead = s[0]
                    self._trim()
        return item

    def _evict(self) -> None:
        """Drop the oldest droppable items until there is room (never-droppable items stay:
        they are small, and the consumer forwards them at once)."""
        kept: collections.deque[tuple[float, T]] = collections.deque()
        while self._items and len(self._items) + len(kept) >= self.maxsize:
            stamp, item = self._stamps.popleft(), self._items.popleft()
            if self.droppable(item):
                self.dropped += 1
            else:
                kept.append((stamp, item))
        self._items.extendleft(item for _, item in reversed(kept))
        self._stamps.extendleft(stamp for stamp, _ in reversed(kept))

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
            item = self._pop()
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
            if self.policy is Policy.LATENCY:
                self._shed()  # what waited too long while the consumer was busy
            batch = [self._pop()]
            deadline = None if max_wait is None else time.monotonic() + max_wait
            while len(batch) < max_items:
                if not self._items and not self._wait_for_item(deadline):
                    break
                batch.append(self._pop())
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
            self._stamps.clear()
            self._cond.notify_all()

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)
