"""Timestamp discontinuities on the input's clock, mended at the demuxer (in the thread that
demuxes: the file source, "vsr-source", or the live source).

Why: MPEG-TS may restart its clock anywhere. Two recordings joined with `cat a.ts b.ts`, an
encoder or camera restarted behind a UDP stream, a splice in a broadcast: the timestamps jump
back to 0 (or forward by hours) and every later frame would collide with the earlier ones.
Repairing them one by one (`timestamps.TimestampRepair`) packs a whole second part into 1 ms
steps. FFmpeg detects such jumps in the formats that allow them (`AVFMT_TS_DISCONT`:
MPEG-TS, MPEG-PS, HLS) and continues the timeline (`ts_discontinuity_detect` in fftools);
this module does the same, on the packets, before anything is decoded:

- A jump is a packet time (dts, else pts) more than `BACK_TOLERANCE` before its stream's
  previous one, or more than `threshold` seconds (FFmpeg's `-dts_delta_threshold`, 10 s) away
  from where the stream's next packet was due.
- The video's clock decides: when the video jumps, a new *epoch* starts whose offset puts the
  first new video packet one frame after the last old one (file mode), or after the gap that
  really passed (live mode: arrival times are known). Audio and subtitles that jumped
  together with it get the same offset, so sync holds on both sides. A stream that jumps
  before the video (the demuxer hands a whole audio PES out before a video PES, which ends
  only when the next one starts) is held back until the video's jump says where it goes;
  held past `HOLD_SECONDS` of its own time, it starts the epoch itself.
- Audio that would overlap its own stream's earlier packets after the jump (the first part's
  sound ran a little longer than its video) is dropped: a muxer refuses it anyway.
- MPEG-TS counters wrap at 2^33 ticks of 1/90 000 s (26.5 hours): such a wrap is unwrapped
  exactly (not a discontinuity; the times simply go on).
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

log = logging.getLogger(__name__)

#: FFmpeg's -dts_delta_threshold default: a forward jump beyond it (seconds) is a discontinuity.
FORWARD_THRESHOLD = 10.0
#: A packet more than this (seconds) before its stream's previous one is a jump back (FFmpeg's).
BACK_TOLERANCE = 0.1
#: Media seconds of its own that a stream which jumped before the video waits for the video.
HOLD_SECONDS = 2.0
HOLD_PACKETS = 1024
#: Live: seconds before a jump in which the longest silence between packets is its real gap.
WALL_WINDOW = 2.0
#: The MPEG-TS clock: 33-bit counters at 90 kHz.
WRAP_BITS = 33
TS_TIME_BASE = Fraction(1, 90000)
#: AVFMT_TS_DISCONT: formats whose timestamps may jump (FFmpeg's flag).
TS_DISCONT = 0x0200


def discontinuous(container: Any) -> bool:
    """Whether an input container's format allows timestamp discontinuities (MPEG-TS, ...)."""
    fmt = getattr(container, "format", None)
    return bool(fmt is not None and int(getattr(fmt, "flags", 0) or 0) & TS_DISCONT)


@dataclass(frozen=True)
class Discontinuity:
    """One jump of the input's clock, as mended.

    Attributes:
        at: seconds on the continued timeline where the new part starts.
        jump: seconds the input's clock jumped (negative: back).
        gap: seconds between the old part's last frame and the new part's first.
    """

    at: float
    jump: float
    gap: float


@dataclass
class _Stream:
    """What is known of one stream's clock; times in its own ticks, unwrapped."""

    time_base: Fraction
    epoch: int  # the offset (index into Timeline.offsets) its packets get
    last: int  # the latest packet's time, before the offset
    due: int  # where its next packet is expected: last + the packet's duration
    wraps: int = 0  # 33-bit counter wraps passed
    # A packet that jumped, held until the next one says whether the stream jumped (the next
    # continues from it) or the packet's time was damaged (the next continues the old clock).
    suspect: tuple[Any, int, int, float] | None = None  # (packet, time, wrap ticks, arrival)
    after_suspect: list[tuple[Any, int]] = field(default_factory=list)  # untimed, behind it
    # A jump before the video's: its packets wait here for the video's jump.
    held: list[tuple[Any, int]] = field(default_factory=list)  # (packet, wrap ticks)
    held_first: int | None = None  # the first held packet's time
    floor: int | None = None  # after a jump: the old part's end (output ticks); less is dropped
    step: int = 0  # the duration of the old part's last packet


class Timeline:
    """Re-times packets so that their clock never jumps (see the module docstring).

    Args:
        video_index: the video stream's index: its clock decides where a new part goes.
        rate: the video's frame rate (for a packet without a duration); None: 25.
        live: place a new part after the real gap (wall clock), not one frame after.
        threshold: seconds of forward jump that make a discontinuity.
        wraps: unwrap 33-bit MPEG-TS counters.
        found: where each discontinuity is recorded (shared with the run's counters).
        clock: monotonic seconds (the arrival time of packets, live mode).
    """

    def __init__(
        self,
        video_index: int,
        *,
        rate: Fraction | None = None,
        live: bool = False,
        threshold: float = FORWARD_THRESHOLD,
        wraps: bool = True,
        found: list[Discontinuity] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.video_index = video_index
        self.frame = 1 / Fraction(rate) if rate else Fraction(1, 25)
        self.live = live
        self.threshold = threshold
        self.wraps = wraps
        self.found: list[Discontinuity] = found if found is not None else []
        self.clock = clock
        self.offsets: list[Fraction] = [Fraction(0)]  # seconds added to each epoch's times
        self.streams: dict[int, _Stream] = {}
        self.dropped = 0  # packets dropped: overlapping their stream's old part after a jump
        self.damaged = 0  # packets whose time was damaged (a one-packet jump), re-timed
        self.wrapped = 0
        # Live: (arrival, silence before it) of recent packets. A restarted sender's outage is
        # the longest silence just before its new packets (the old stream's last video packet
        # comes out only when the next one starts, so arrival times alone would hide it).
        self._arrivals: collections.deque[tuple[float, float]] = collections.deque(maxlen=256)
        self._jumped_at: float | None = None  # wall time of a pending jump's first packet

    def packets(self, source: Iterable[Any]) -> Iterator[Any]:
        """`source`'s packets re-timed, in demux order (those held back come out when the
        video's jump is known, or at the end)."""
        try:
            for packet in source:
                yield from self.push(packet)
        except Exception:
            # The input failed (a demuxer error, a lost connection): what was held back is
            # still good; the error follows it.
            yield from self.flush()
            raise
        yield from self.flush()

    def push(self, packet: Any) -> list[Any]:
        """One demuxed packet in; the packets ready to go on out (none, it, or it with
        packets held back before it)."""
        idx = packet.stream.index
        s = self.streams.get(idx)
        raw = packet.dts if packet.dts is not None else packet.pts
        if raw is None or not packet.time_base:
            if s is None:
                return [self._shift(packet, len(self.offsets) - 1, 0)]
            add = s.wraps << WRAP_BITS
            if s.suspect is not None:
                s.after_suspect.append((packet, add))
                return []
            if s.held_first is not None:
                s.held.append((packet, add))
                return []
            return self._settle(idx, s, [self._shift(packet, s.epoch, add)])
        now = self.clock()
        if self.live:
            previous = self._arrivals[-1][0] if self._arrivals else now
            self._arrivals.append((now, now - previous))
        if s is None:
            tb = Fraction(packet.time_base)
            s = self.streams[idx] = _Stream(tb, len(self.offsets) - 1, raw, raw)
            self._note(idx, s, raw, packet)
            return [self._shift(packet, s.epoch, 0)]
        t = self._unwrap(s, raw)
        add = t - raw
        out: list[Any] = []
        if s.suspect is not None:
            sp, st, sadd, sat = s.suspect
            behind, s.suspect, s.after_suspect = s.after_suspect, None, []
            dur = self._duration(idx, s, sp)
            if not self._jumps(s.time_base, st, st + dur, t):  # the stream did jump
                out += self._jump(idx, s, sp, st, sadd, sat)
                out += self._hold_or_settle(idx, s, behind)
            else:  # the suspect's time was damaged: it goes on the old clock
                out += self._settle(idx, s, [self._damaged(idx, s, sp)])
                out += self._settle(idx, s, [self._shift(p, s.epoch, a) for p, a in behind])
        return out + self._accept(idx, s, packet, t, add, now)

    def flush(self) -> list[Any]:
        """The packets still held back (the input ended)."""
        out: list[Any] = []
        for idx, s in self.streams.items():
            if s.suspect is not None:
                sp = s.suspect[0]
                behind, s.suspect, s.after_suspect = s.after_suspect, None, []
                out += self._settle(idx, s, [self._damaged(idx, s, sp)])
                out += self._settle(idx, s, [self._shift(p, s.epoch, a) for p, a in behind])
        for idx, s in list(self.streams.items()):
            if s.held_first is None:
                continue
            if len(self.offsets) - 1 > s.epoch:
                out += self._release(idx, s, len(self.offsets) - 1)
            else:
                out += self._start_epoch(idx, s)
        return out

    # --- internals -------------------------------------------------------------------------

    def _accept(self, idx: int, s: _Stream, packet: Any, t: int, add: int, now: float) -> list[Any]:
        """A timed packet with no suspect before it."""
        if s.held_first is not None:  # waiting for the video's jump
            s.held.append((packet, add))
            self._note(idx, s, t, packet)
            if (t - s.held_first) * s.time_base > HOLD_SECONDS or len(s.held) > HOLD_PACKETS:
                return self._start_epoch(idx, s)
            return []
        if self._jumps(s.time_base, s.last, s.due, t):
            s.suspect = (packet, t, add, now)
            return []
        self._note(idx, s, t, packet)
        return self._settle(idx, s, [self._shift(packet, s.epoch, add)])

    def _hold_or_settle(self, idx: int, s: _Stream, items: list[tuple[Any, int]]) -> list[Any]:
        if s.held_first is not None:
            s.held += items
            return []
        return self._settle(idx, s, [self._shift(p, s.epoch, a) for p, a in items])

    def _jump(self, idx: int, s: _Stream, packet: Any, t: int, add: int, at: float) -> list[Any]:
        """Stream `idx` jumped (confirmed) to time `t` with `packet`."""
        newest = len(self.offsets) - 1
        s.floor = self._end(s)
        if newest > s.epoch:  # another stream started the new part: this one joins it
            s.epoch = newest
            self._note(idx, s, t, packet)
            return self._settle(idx, s, [self._shift(packet, newest, add)])
        if self._jumped_at is None:
            self._jumped_at = at
        s.step = s.due - s.last
        s.held_first = t
        s.held = [(packet, add)]
        self._note(idx, s, t, packet)
        if idx == self.video_index or self.video_index not in self.streams:
            return self._start_epoch(idx, s)
        return []

    def _start_epoch(self, idx: int, s: _Stream) -> list[Any]:
        """A new epoch whose offset puts stream `idx`'s first new packet right after its old
        part ended, or after the wall-clock gap (live); streams waiting for it join it."""
        tb = s.time_base
        assert s.held_first is not None
        prev_end = (s.floor if s.floor is not None else s.due) * tb
        gap = Fraction(0)
        if self.live and self._jumped_at is not None:
            since = self._jumped_at - WALL_WINDOW
            wall = max((quiet for t, quiet in self._arrivals if since <= t <= self._jumped_at), default=0.0)
            gap = max(Fraction(0), Fraction(wall) - s.step * tb)
        gap = round(gap / tb) * tb
        offset = prev_end + gap - s.held_first * tb
        jump = float((s.held_first - (s.floor or 0)) * tb + self.offsets[s.epoch])
        self.offsets.append(offset)
        epoch = len(self.offsets) - 1
        first = s.held[0][0] if s.held else None
        shown = first.pts + s.held[0][1] if first is not None and first.pts is not None else s.held_first
        at = float(shown * tb + offset)  # where its first frame is shown, if it says
        after = float(gap + s.step * tb)
        self.found.append(Discontinuity(at, jump, after))
        seen = "video" if idx == self.video_index else f"stream #{idx}"
        log.warning(
            "timestamp discontinuity at %.3fs: the input's clock jumped %s by %.3fs "
            "(a restarted or joined stream; seen on the %s); the timeline goes on %.3fs "
            "after the last frame",
            at,
            "back" if jump < 0 else "forward",
            abs(jump),
            seen,
            after,
        )
        self._jumped_at = None
        out: list[Any] = []
        # Streams that jumped first and wait come out first: they were demuxed before.
        for other_idx, other in self.streams.items():
            if other_idx != idx and other.held_first is not None:
                out += self._release(other_idx, other, epoch)
        return out + self._release(idx, s, epoch)

    def _release(self, idx: int, s: _Stream, epoch: int) -> list[Any]:
        held, s.held, s.held_first = s.held, [], None
        s.epoch = epoch
        return self._settle(idx, s, [self._shift(p, epoch, a) for p, a in held])

    def _settle(self, idx: int, s: _Stream, packets: list[Any]) -> list[Any]:
        """Audio or subtitles of a stream that joined a new part, timed before its old part
        ended, are dropped: they overlap it, and a muxer refuses them. Never video: the
        video's new part starts where its old one ended."""
        if s.floor is None:
            return packets
        if idx == self.video_index:
            s.floor = None
            return packets
        kept = []
        for p in packets:
            t = p.dts if p.dts is not None else p.pts
            if s.floor is not None and t is not None and t < s.floor:
                self.dropped += 1
                continue
            s.floor = None
            kept.append(p)
        return kept

    def _damaged(self, idx: int, s: _Stream, packet: Any) -> Any:
        """A packet whose time jumped alone: its decode time is where its stream was due,
        and its presentation time is kept where it still lies near that (often only one of
        the two was damaged), else left to the decoder (video) or set to it (audio)."""
        self.damaged += 1
        if self.damaged == 1:
            log.info("input packet(s) with damaged timestamps: timing them after the one before")
        offset = round(self.offsets[s.epoch] / s.time_base)
        ticks = s.due + offset
        pts = packet.pts
        if pts is not None and packet.dts is not None and pts != packet.dts:
            wraps = (
                round((s.due - pts) / (1 << WRAP_BITS)) * (1 << WRAP_BITS)
                if self._wrapping(s.time_base)
                else 0
            )
            near = pts + wraps + offset
            plausible = 0 <= (near - ticks) * s.time_base <= 1  # a B-frame delay, not a jump
            pts = near if plausible else None
        else:
            pts = None
        packet.dts = ticks
        packet.pts = pts if pts is not None else (None if idx == self.video_index else ticks)
        s.last = s.due
        s.due = s.last + self._duration(idx, s, packet)
        return packet

    def _unwrap(self, s: _Stream, t: int) -> int:
        """`t` continued across 33-bit counter wraps of the MPEG-TS clock."""
        if not self._wrapping(s.time_base):
            return t
        period = 1 << WRAP_BITS
        full = t + (s.wraps << WRAP_BITS)
        if full < s.last - period // 2:
            s.wraps += 1
            full += period
            self.wrapped += 1
            log.info(
                "the input's MPEG-TS clock wrapped around (2^33 ticks, 26.5 h) at %.3fs: its times go on",
                float(full * s.time_base),
            )
        elif full > s.last + period // 2 and s.wraps:
            full -= period  # a straggler from before the wrap
        return full

    def _wrapping(self, tb: Any) -> bool:
        return self.wraps and Fraction(tb) == TS_TIME_BASE

    def _jumps(self, tb: Fraction, last: int, due: int, t: int) -> bool:
        return (t - last) * tb < -BACK_TOLERANCE or abs((t - due) * tb) > self.threshold

    def _end(self, s: _Stream) -> int:
        """Where stream `s`'s output so far ends, in its ticks (the offset applied)."""
        return s.due + round(self.offsets[s.epoch] / s.time_base)

    def _duration(self, idx: int, s: _Stream, packet: Any) -> int:
        duration = int(packet.duration or 0)
        if duration <= 0 and idx == self.video_index:
            duration = max(1, round(self.frame / s.time_base))
        return duration

    def _note(self, idx: int, s: _Stream, t: int, packet: Any) -> None:
        s.last = t
        s.due = t + self._duration(idx, s, packet)

    def _shift(self, packet: Any, epoch: int, add: int) -> Any:
        """The packet with its epoch's offset and its wrap ticks applied, in place. `add`
        unwraps the time the clock is read from (dts, else pts); the other (a B-frame's pts
        may have wrapped while its dts has not) is unwrapped to lie near it."""
        tb = packet.time_base
        if not tb:
            return packet
        ticks = round(self.offsets[epoch] / Fraction(tb))
        ref = packet.dts if packet.dts is not None else packet.pts
        if ref is None:
            return packet
        ref += add
        period = 1 << WRAP_BITS
        for name in ("pts", "dts"):
            value = getattr(packet, name)
            if value is None:
                continue
            wraps = round((ref - value) / period) * period if self._wrapping(tb) else 0
            if ticks or wraps:
                setattr(packet, name, value + wraps + ticks)
        return packet
