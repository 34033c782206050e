"""Behaviour of the bounded, cancellable channel between stage threads."""

from __future__ import annotations

import threading
import time

import pytest

from vsr.channel import Channel
from vsr.errors import Cancelled


def test_put_blocks_while_full_until_a_get_makes_room() -> None:
    """A full channel holds back its producer (back-pressure) until the consumer takes one."""
    ch: Channel[int] = Channel(2)
    ch.put(1)
    ch.put(2)
    done = threading.Event()

    def producer() -> None:
        ch.put(3)
        done.set()

    t = threading.Thread(target=producer)
    t.start()
    assert not done.wait(0.2)
    assert ch.get() == 1
    assert done.wait(2)
    t.join()
    assert [ch.get(), ch.get()] == [2, 3]


def test_close_drains_queued_items_then_iteration_stops() -> None:
    """close() is end of stream: what is queued is still delivered, in order."""
    ch: Channel[int] = Channel(4)
    for i in range(3):
        ch.put(i)
    ch.close()
    assert list(ch) == [0, 1, 2]


def test_cancel_wakes_a_blocked_put_and_a_blocked_get() -> None:
    """cancel() makes every blocked put() and get() raise Cancelled at once."""
    full: Channel[int] = Channel(1)
    full.put(0)
    empty: Channel[int] = Channel(1)
    errors: list[BaseException] = []

    def run(fn) -> None:  # type: ignore[no-untyped-def]
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(lambda: full.put(1),)),
               threading.Thread(target=run, args=(empty.get,))]
    for t in threads:
        t.start()
    time.sleep(0.1)
    full.cancel()
    empty.cancel()
    for t in threads:
        t.join(2)
        assert not t.is_alive()
    assert len(errors) == 2 and all(isinstance(e, Cancelled) for e in errors)


def test_batches_waits_for_full_batches_and_releases_the_short_last_one_on_close() -> None:
    """batches(n, None) yields only full batches until close() releases the remainder."""
    ch: Channel[int] = Channel(16)
    for i in range(7):
        ch.put(i)
    ch.close()
    assert list(ch.batches(3, None)) == [[0, 1, 2], [3, 4, 5], [6]]


def test_batches_with_zero_wait_takes_only_what_is_queued() -> None:
    """batches(n, 0) never waits for more items than are already queued."""
    ch: Channel[int] = Channel(16)
    ch.put(1)
    it = ch.batches(8, 0)
    t0 = time.monotonic()
    assert next(it) == [1]
    assert time.monotonic() - t0 < 0.5
    ch.cancel()
    with pytest.raises(Cancelled):
        next(it)


def test_put_after_cancel_raises() -> None:
    """A producer learns of an abort at its next put()."""
    ch: Channel[int] = Channel(1)
    ch.cancel()
    with pytest.raises(Cancelled):
        ch.put(1)


def test_drop_oldest_never_blocks_evicts_the_oldest_and_counts_it() -> None:
    """A live channel keeps the newest frames; each eviction is counted."""
    from vsr.channel import Policy

    ch: Channel[int] = Channel(2, policy=Policy.DROP_OLDEST)
    for i in range(5):
        ch.put(i)
    ch.close()
    assert list(ch) == [3, 4] and ch.dropped == 3


def test_drop_oldest_never_drops_items_marked_undroppable() -> None:
    """Audio (undroppable) survives eviction; only video frames are dropped."""
    from vsr.channel import Policy

    ch: Channel[str] = Channel(2, policy=Policy.DROP_OLDEST, droppable=lambda x: x.startswith("v"))
    for item in ["v0", "a0", "v1", "v2", "a1", "v3"]:
        ch.put(item)
    ch.close()
    got = list(ch)
    assert "a0" in got and "a1" in got and got[-1] == "v3"
    assert ch.dropped == 3 and [x for x in got if x.startswith("v")] == ["v3"]
