"""Timestamp repair for decoded video (used by the file source's thread, "vsr-source").

Encoders and muxers reject timestamps that do not strictly increase, and real inputs have
missing, repeated and out-of-order ones (packed B-frames in AVI, damaged streams). This
module turns whatever the decoder gives into strictly increasing pts without moving frames.
"""

from __future__ import annotations

import collections
import heapq
import logging
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ..frames import Frame

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Pending:
    index: int
    captured: float
    y: Any
    crcb: Any
    captions: bytes | None = None
    sar: Fraction | None = None  # set when the frame's geometry is not the first frame's


class TimestampRepair:
    """Gives frames strictly increasing pts without ever reordering the frames themselves.

    Decoders output frames in presentation order, but some inputs attach the timestamps in
    another order (packed B-frames in AVI give 1, 2, 4, 3, 5, 7, 6, ...). The set of
    timestamps is right even then, so the k-th frame out gets the smallest timestamp among
    the next `depth` ones. Missing pts are extrapolated by one frame duration, and repeats
    nudged forward by one tick: encoders and muxers reject non-increasing timestamps, and a
    damaged input must not stop the run for that. Repairs are counted and logged once.
    """

    def __init__(self, time_base: Fraction, rate: Fraction | None, depth: int) -> None:
        step = (1 / (rate * time_base)) if rate and time_base else 1
        self.step = max(1, round(step))
        self.time_base = time_base
        self.depth = depth
        self.frames: collections.deque[Pending] = collections.deque()
        self.heap: list[int] = []
        self.last: int | None = None
        self.out_of_order = False
        self.repaired = 0

    def push(self, pending: Pending, pts: int | None) -> list[Frame]:
        self.frames.append(pending)
        if pts is None:
            self._note("missing")
            base = max([self.last or 0, *self.heap]) if (self.heap or self.last is not None) else None
            pts = 0 if base is None else base + self.step
        elif self.heap and pts < max(self.heap) and not self.out_of_order:
            self.out_of_order = True
            log.info("input timestamps are out of order: reassigning them in presentation order")
        heapq.heappush(self.heap, pts)
        ready = []
        while len(self.frames) > self.depth:
            ready.append(self._emit())
        return ready

    def flush(self) -> list[Frame]:
        return [self._emit() for _ in range(len(self.frames))]

    def _emit(self) -> Frame:
        p = self.frames.popleft()
        pts = heapq.heappop(self.heap)
        if self.last is not None and pts <= self.last:
            pts = self.last + 1
            self._note("repeated or non-increasing")
        self.last = pts
        return Frame(p.index, pts, self.time_base, p.captured, p.y, p.crcb, captions=p.captions, sar=p.sar)

    def _note(self, what: str) -> None:
        if not self.repaired:
            log.warning("input has %s video timestamps: repairing them", what)
        self.repaired += 1
