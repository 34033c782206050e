"""Check each finished segment before the join (driver's thread): does it hold the frames a
straight decode of its range shows, and no damage a straight decode does not have?

The plan (`KeyframeIndex.expected`) says which frames a range holds, from the packets. A part
whose timestamps are exactly those and whose decode reported no damage is accepted at once.
Anything else (frames missing or extra, concealed frames) is compared with a straight decode
of the input, made once per job and only then: if that decode shows the same frames and the
same damage, the difference is the input's (a damaged file), and the segment is as good as
one machine's run. Otherwise the cut at the segment's start is not exact and the job drops it
(`job.ScaleOutJob` merges the segment into the one before).

Damage in a segment's first GOP is never accepted after a cut: FFmpeg conceals a damaged
picture from the picture decoded before it, which a straight decode has from before the cut
and the segment's decoder does not, so even the same count of concealed frames can differ in
every pixel.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av

from ..media.probe import open_video
from ..media.timestamps import Pending, TimestampRepair
from ..options import Mode, SourceOptions, tuning_for
from .keyframes import KeyframeIndex
from .manifest import SegmentRecord


@dataclass
class StraightDecode:
    """What decoding the whole input from its start shows: every frame's pts as one machine's
    run writes it (ascending), the decoder's pts of the frames it concealed damage in, and
    the pts of packets it refused."""

    frames: list[int] = field(default_factory=list)
    concealed: list[int] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)

    def within(self, start: int, end: int | None) -> list[int]:
        """The pts of the frames shown with start <= pts < end."""
        return _between(self.frames, start, end)

    def damaged(self, start: int, end: int | None) -> list[int]:
        """The pts of concealed frames and refused packets with start <= pts < end."""
        return sorted(_between(self.concealed, start, end) + _between(self.refused, start, end))


def _between(values: Sequence[int], start: int, end: int | None) -> list[int]:
    lo = bisect.bisect_left(values, start)
    hi = len(values) if end is None else bisect.bisect_left(values, end)
    return list(values[lo:hi])


class _Repair(TimestampRepair):
    """The source's timestamp repair, without its log line (the run said it already)."""

    def _note(self, what: str) -> None:
        self.repaired += 1


def straight_decode(source: SourceOptions) -> StraightDecode:
    """Decode the input's video from the start, as one machine's run does (slice threads,
    damaged packets skipped, timestamps repaired as the file source repairs them), keeping
    only timestamps and damage (at the decoder's own timestamps, as runs report it).

    Raises:
        SourceError: the input cannot be opened or has no video stream.
    """
    container, video = open_video(source.url, source.format, dict(source.options))
    result = StraightDecode()
    with container:
        video.thread_type = "SLICE"
        rate = video.average_rate or video.guessed_rate
        stamps = _Repair(video.time_base or Fraction(1, 90000), Fraction(rate) if rate else None,
                         tuning_for(Mode.FILE, 1).reorder_depth)

        def keep(frames: Any) -> None:
            for f in frames:
                pending = Pending(len(result.frames), 0.0, None, None)
                result.frames += [int(r.pts) for r in stamps.push(pending, f.pts) if r.pts is not None]
                if f.pts is not None and f.is_corrupt:
                    result.concealed.append(int(f.pts))

        try:
            for packet in container.demux(video):
                try:
                    keep(packet.decode())
                except av.error.EOFError:
                    pass
                except av.error.FFmpegError:
                    if packet.pts is not None:
                        result.refused.append(int(packet.pts))
            keep(video.decode(None))
        except av.error.EOFError:
            pass
        except av.error.FFmpegError:
            pass  # a demuxer error: the run stops reading there too
        result.frames += [int(r.pts) for r in stamps.flush() if r.pts is not None]
    result.frames.sort()
    result.concealed.sort()
    result.refused.sort()
    return result


def planned_ok(index: KeyframeIndex, rec: SegmentRecord, part_pts: tuple[int, ...]) -> bool:
    """Whether a finished segment is exactly what the plan says, with no damage: its part's
    timestamps are the frames the scan found in its range."""
    if rec.corrupt_frames or rec.decode_errors:
        return False
    return list(part_pts) == _between(index.frames, rec.start_pts, rec.end_pts)


def mismatch(index: KeyframeIndex, rec: SegmentRecord, part_pts: tuple[int, ...],
             straight: StraightDecode) -> str | None:
    """Why a segment differs from what a straight decode of its range shows (None: it does
    not), in words for the log line that drops its cut."""
    frames = straight.within(rec.start_pts, rec.end_pts)
    if list(part_pts) != frames:
        lost = len(set(frames) - set(part_pts))
        extra = len(set(part_pts) - set(frames))
        return (f"it decodes {len(part_pts)} frame(s) where a straight decode shows {len(frames)}"
                + (f" ({lost} missing, {extra} extra)" if lost or extra else " (other timestamps)"))
    tb = index.time_base
    begin = float(rec.start_pts * tb)
    end = float(rec.end_pts * tb) if rec.end_pts is not None else float("inf")
    mine = sorted(round(t, 6) for t in rec.damage_times if begin - 1e-9 <= t < end - 1e-9)
    theirs = sorted(round(float(p * tb), 6) for p in straight.damaged(rec.start_pts, rec.end_pts))
    if mine != theirs:
        return (f"damage at {len(mine)} place(s) where a straight decode has it at "
                f"{len(theirs)}")
    if rec.index and theirs:
        gop_end = next((k for k in index.keyframes if k > rec.start_pts), None)
        if rec.end_pts is not None and (gop_end is None or gop_end > rec.end_pts):
            gop_end = rec.end_pts
        if straight.damaged(rec.start_pts, gop_end):
            return ("damage right after it, which a decoder started there conceals from other "
                    "pictures than a straight decode does")
    return None
