"""Behaviour of the bounded, cancellable channel between stage threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

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

    def run(fn: Callable[[], object]) -> None:
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=(lambda: full.put(1),)),
        threading.Thread(target=run, args=(empty.get,)),
    ]
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


class FakeClock:
    """A monotonic clock the test moves by hand, so budget decisions are deterministic."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def latency_channel(
    budget: float = 0.5,
    cost: float | None = None,
    maxsize: int = 64,
    span: Callable[[str], tuple[float, float] | None] | None = None,
) -> tuple[Channel[str], FakeClock]:
    from vsr.channel import Policy

    clock = FakeClock()
    ch: Channel[str] = Channel(
        maxsize,
        policy=Policy.LATENCY,
        droppable=lambda x: x.startswith("v"),
        budget=budget,
        span=span,
        clock=clock,
    )
    if cost is not None:
        ch.served(1, cost)
    return ch, clock


def test_latency_keeps_a_burst_that_can_be_served_within_the_budget() -> None:
    """30 frames at once at 10 ms each fit a 500 ms budget: nothing is dropped (a one-slot
    queue would have kept one)."""
    ch, _ = latency_channel(cost=0.010)
    for i in range(30):
        ch.put(f"v{i}")
    ch.close()
    assert list(ch) == [f"v{i}" for i in range(30)] and ch.dropped == 0


def test_latency_drops_the_oldest_frames_that_could_not_be_served_in_time() -> None:
    """At 50 ms a frame, 10 queued frames take the whole 500 ms budget: of 15 arriving at
    once the 5 oldest are dropped and counted, the newest 10 kept in order."""
    ch, _ = latency_channel(cost=0.050)
    for i in range(15):
        ch.put(f"v{i}")
    ch.close()
    assert list(ch) == [f"v{i}" for i in range(5, 15)] and ch.dropped == 5


def test_latency_counts_the_time_frames_already_waited() -> None:
    """A frame that waited 430 ms still fits 2 x 30 ms of model time, but not 3: it is
    dropped when a third frame comes, and the newer ones are kept."""
    ch, clock = latency_channel(cost=0.030)
    ch.put("v0")
    clock.now += 0.430
    ch.put("v1")
    assert len(ch) == 2 and ch.dropped == 0  # 0.43 + 2 x 0.03 = 0.49
    clock.now += 0.020
    ch.put("v2")  # 0.45 + 3 x 0.03 = 0.54 > 0.5: v0 goes; v1 is 0.02 old
    ch.close()
    assert list(ch) == ["v1", "v2"] and ch.dropped == 1


def test_latency_counts_the_batch_the_consumer_is_working_on() -> None:
    """Queued frames also wait for the consumer's current batch: 2 frames taken at 100 ms
    each leave room for 3 more in a 500 ms budget, not 5; served() ends that wait."""
    ch, clock = latency_channel(cost=0.100)
    ch.put("v0")
    ch.put("v1")
    assert ch.next_batch(2, 0) == ["v0", "v1"]
    for i in range(2, 8):
        ch.put(f"v{i}")
    assert ch.dropped == 3 and len(ch) == 3
    clock.now += 0.15
    ch.served(2, 0.2)
    assert ch.next_batch(8, 0) == ["v5", "v6", "v7"] and ch.dropped == 3


def test_latency_never_drops_the_newest_frame_even_if_it_cannot_make_the_budget() -> None:
    """A model slower than the budget still gets the newest frame (newest frame wins)."""
    ch, _ = latency_channel(cost=2.0)
    for i in range(4):
        ch.put(f"v{i}")
    ch.close()
    assert list(ch) == ["v3"] and ch.dropped == 3


def test_latency_holds_at_most_maxsize_frames() -> None:
    """Before any measurement (no cost yet) a burst is still bounded by maxsize."""
    ch, _ = latency_channel(maxsize=4)
    for i in range(10):
        ch.put(f"v{i}")
    ch.close()
    assert list(ch) == ["v6", "v7", "v8", "v9"] and ch.dropped == 6


def test_latency_never_drops_or_counts_audio() -> None:
    """Audio between frames neither counts towards the budget nor is dropped."""
    ch, _ = latency_channel(cost=0.100)
    for i in range(8):
        ch.put(f"v{i}")
        ch.put(f"a{i}")
    ch.close()
    got = list(ch)
    assert [x for x in got if x.startswith("a")] == [f"a{i}" for i in range(8)]
    assert [x for x in got if x.startswith("v")] == [f"v{i}" for i in range(3, 8)]
    assert ch.dropped == 3


def test_latency_plans_with_the_median_call_so_one_slow_call_drops_nothing() -> None:
    """One 400 ms call among 10 ms ones (another process took the CPU) does not make the
    channel think a 30-frame burst is 12 s of work."""
    ch, _ = latency_channel()
    for seconds in (0.010, 0.011, 0.400, 0.009, 0.010):
        ch.served(1, seconds)
    assert ch.cost == pytest.approx(0.010)
    for i in range(30):
        ch.put(f"v{i}")
    assert ch.dropped == 0


def test_latency_trims_audio_that_ends_before_the_first_frame_handed_out() -> None:
    """When the first frames had to be dropped, audio that would play before the first
    upscaled frame is trimmed (counted apart), also when it arrives late; the rest is kept."""

    def span(x: str) -> tuple[float, float]:
        t = float(x[1:]) / 100  # "v8" is at 0.08 s; "a7" plays 0.07-0.09 s
        return (t, t) if x.startswith("v") else (t, t + 0.02)

    ch, _ = latency_channel(cost=0.200, span=span)  # 2 frames fill 0.4 of the 0.5 s budget
    for item in ["v0", "a0", "v4", "a2", "v8", "a7", "v12"]:
        ch.put(item)
    assert ch.dropped == 2  # v0, v4
    assert ch.trimmed == 2  # a0, a2 end by 0.04, before v8 (now the oldest frame)
    assert ch.next_batch(1, 0) == ["v8"]
    ch.put("a6")  # MPEG-TS delivers audio late: ends at 0.08, before the first frame shown
    ch.put("a9")
    ch.close()
    assert list(ch) == ["a7", "v12", "a9"] and ch.trimmed == 3 and ch.dropped == 2


def test_latency_hands_out_the_first_frame_before_audio_queued_ahead_of_it() -> None:
    """Audio left at the head after its frames were dropped is not handed out before the
    first frame: had it been, a later drop could leave it playing before the video starts."""

    def span(x: str) -> tuple[float, float]:
        t = float(x[1:]) / 100
        return (t, t) if x.startswith("v") else (t, t + 0.02)

    ch, _ = latency_channel(cost=0.200, span=span)
    for item in ["v4", "a7", "v8", "v12"]:  # v4 dropped: a7 (0.07-0.09) now leads v8
        ch.put(item)
    assert ch.dropped == 1 and ch.trimmed == 0
    assert ch.next_batch(1, 0) == ["v8"]
    ch.close()
    assert list(ch) == ["a7", "v12"]
