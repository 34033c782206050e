"""Check each finished segment before the join (driver's thread): does it hold the pictures
a straight decode of its range shows, at the same timestamps, with no damage a straight decode
does not have?

One straight decode of the whole input (decode only, no model) is the reference. It runs once
per job, in its own thread ("vsr-reference", `Reference`) while the segments run, and keeps per
frame only its timestamp and a 16-byte content fingerprint (`media.fingerprint`), so a long
file costs 16 bytes and a timestamp per frame, never a picture. Each segment's worker
fingerprints the frames its decoder made the same way. A segment is accepted when its
timestamps are the straight decode's in its range, its damage is at the same places, and its
fingerprints are the straight decode's: the model is deterministic per frame, so it then gives
one machine's output. Anything else means the cut at the segment's start is not exact, and
the job drops it (`job.ScaleOutJob` merges the segment into the one before). Timestamps and
damage flags alone do not prove it: a decoder started at a cut whose state differs from a
straight decode's there (an encoder-version SEI the keyframe scan does not recognise, ...)
makes other pictures with neither.

Damage in a segment's first GOP is never accepted after a cut: FFmpeg conceals a damaged
picture from the picture decoded before it, which a straight decode has from before the cut
and the segment's decoder does not.
"""

from __future__ import annotations

import bisect
import hashlib
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av

from ..errors import Cancelled
from ..media import fingerprint
from ..media.probe import open_video
from ..media.timestamps import Pending, TimestampRepair
from ..options import Mode, SourceOptions, tuning_for
from .keyframes import KeyframeIndex
from .manifest import SegmentRecord


@dataclass
class StraightDecode:
    """What decoding the whole input from its start shows: every frame's pts as one machine's
    run writes it (ascending), its content fingerprint (`fingerprint.SIZE` bytes each, in the
    same order), the decoder's pts of the frames it concealed damage in, the pts of packets
    it refused, and the seconds the decode took."""

    frames: list[int] = field(default_factory=list)
    concealed: list[int] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)
    fingerprints: bytearray = field(default_factory=bytearray)
    seconds: float = 0.0

    def within(self, start: int, end: int | None) -> list[int]:
        """The pts of the frames shown with start <= pts < end."""
        return _between(self.frames, start, end)

    def fingerprints_within(self, start: int, end: int | None) -> bytes:
        """The fingerprints of the frames shown with start <= pts < end, in pts order."""
        lo = bisect.bisect_left(self.frames, start)
        hi = len(self.frames) if end is None else bisect.bisect_left(self.frames, end)
        return bytes(self.fingerprints[lo * fingerprint.SIZE : max(lo, hi) * fingerprint.SIZE])

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


def straight_decode(source: SourceOptions, stop: threading.Event | None = None) -> StraightDecode:
    """Decode the input's video from the start, as one machine's run does (slice threads,
    damaged packets skipped, frames of another size scaled to the first one's, timestamps
    repaired as the file source repairs them), keeping only timestamps, fingerprints and
    damage (at the decoder's own timestamps, as runs report it).

    Raises:
        SourceError: the input cannot be opened or has no video stream.
        Cancelled: `stop` was set.
    """
    t0 = time.monotonic()
    container, video = open_video(source.url, source.format, dict(source.options))
    result = StraightDecode()
    with container:
        video.thread_type = "SLICE"
        rate = video.average_rate or video.guessed_rate
        stamps = _Repair(
            video.time_base or Fraction(1, 90000),
            Fraction(rate) if rate else None,
            tuning_for(Mode.FILE, 1).reorder_depth,
        )
        size: list[int] = []  # the first frame's (width, height): the run's picture size

        def keep(frames: Any) -> None:
            for f in frames:
                if not size:
                    size[:] = [f.width, f.height]
                if (f.width, f.height) != tuple(size):
                    f = f.reformat(width=size[0], height=size[1])  # as the file source does
                result.fingerprints += fingerprint.frame_fingerprint(f)
                pending = Pending(len(result.frames), 0.0, None, None)
                result.frames += [int(r.pts) for r in stamps.push(pending, f.pts) if r.pts is not None]
                if f.pts is not None and f.is_corrupt:
                    result.concealed.append(int(f.pts))

        try:
            for packet in container.demux(video):
                if stop is not None and stop.is_set():
                    raise Cancelled(f"the straight decode of {source.url!r} was stopped")
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
    # Repaired timestamps rise strictly, so the frames are in order already and stay paired
    # with their fingerprints.
    result.concealed.sort()
    result.refused.sort()
    result.seconds = time.monotonic() - t0
    return result


class Reference:
    """The job's straight decode, started at once in its own thread ("vsr-reference") so that
    it runs while the segments do; `result()` waits for it (and says how long it waited).

    Each libav object it opens stays in its thread; `cancel()` stops it within a packet and
    joins it, so no job leaves it running (call it on every way out).
    """

    def __init__(self, source: SourceOptions) -> None:
        self.source = source
        self.waited = 0.0  # seconds result() spent waiting for the decode to end
        self.returned = False  # result() has returned the decode (it no longer waits)
        self._stop = threading.Event()
        self._result: StraightDecode | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="vsr-reference")
        self._thread.start()

    def _run(self) -> None:
        try:
            self._result = straight_decode(self.source, self._stop)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the driver's thread
            self._error = exc

    def result(self) -> StraightDecode:
        """The straight decode, once it has ended.

        Raises:
            Whatever the decode raised (SourceError, ...), in the caller's thread.
        """
        t0 = time.monotonic()
        self._thread.join()
        self.waited += time.monotonic() - t0
        if self._error is not None:
            self._error.add_note(
                "in vsr stage 'vsr-reference' (the straight decode the segments are checked against)"
            )
            raise self._error
        assert self._result is not None
        self.returned = True
        return self._result

    def cancel(self) -> None:
        """Stop the decode (if it still runs) and join its thread."""
        self._stop.set()
        self._thread.join()


def content_digest(fingerprints: bytes) -> str:
    """One digest of a segment's frame fingerprints (what the manifest keeps, so that a
    --resume can check a part made before the driver stopped)."""
    return hashlib.sha256(fingerprints).hexdigest()


def mismatch(
    index: KeyframeIndex, rec: SegmentRecord, part_pts: tuple[int, ...], straight: StraightDecode
) -> str | None:
    """Why a segment differs from what a straight decode of its range shows (None: it does
    not), in words for the log line that drops its cut."""
    frames = straight.within(rec.start_pts, rec.end_pts)
    if list(part_pts) != frames:
        lost = len(set(frames) - set(part_pts))
        extra = len(set(part_pts) - set(frames))
        return f"it decodes {len(part_pts)} frame(s) where a straight decode shows {len(frames)}" + (
            f" ({lost} missing, {extra} extra)" if lost or extra else " (other timestamps)"
        )
    tb = index.time_base
    begin = float(rec.start_pts * tb)
    end = float(rec.end_pts * tb) if rec.end_pts is not None else float("inf")
    mine = sorted(round(t, 6) for t in rec.damage_times if begin - 1e-9 <= t < end - 1e-9)
    theirs = sorted(round(float(p * tb), 6) for p in straight.damaged(rec.start_pts, rec.end_pts))
    if mine != theirs:
        return f"damage at {len(mine)} place(s) where a straight decode has it at {len(theirs)}"
    if rec.index and theirs:
        gop_end = next((k for k in index.keyframes if k > rec.start_pts), None)
        if rec.end_pts is not None and (gop_end is None or gop_end > rec.end_pts):
            gop_end = rec.end_pts
        if straight.damaged(rec.start_pts, gop_end):
            return (
                "damage right after it, which a decoder started there conceals from other "
                "pictures than a straight decode does"
            )
    return None


def same_content(rec: SegmentRecord, straight: StraightDecode) -> bool:
    """Whether a segment's recorded content digest is the straight decode's over its range:
    every picture equal (the quick answer, and the only one a --resume has for a part made
    before the driver stopped)."""
    theirs = straight.fingerprints_within(rec.start_pts, rec.end_pts)
    return rec.content is not None and content_digest(theirs) == rec.content


def undefined_spans(index: KeyframeIndex, straight: StraightDecode) -> list[tuple[float, float]]:
    """The pts spans whose pictures FFmpeg does not define: around each place a straight
    decode conceals damage or refuses a packet, from the cut at or before it to the next cut
    after it (from the cut before, when the damage is at a cut: an open GOP's leading frames
    are predicted from their keyframe).

    Why: a concealed picture, and every picture predicted from it up to the next random
    access point, is made partly of whatever the decoder's buffers held there; it changes
    with the decoder's thread count and with how many frames the application still holds
    (one machine's pipeline holds other frames than a segment's or the straight decode), so
    two decodes of the same damaged file need not agree there, even on one machine.
    """
    keys = index.keyframes
    spans = []
    for d in sorted(straight.concealed + straight.refused):
        i = bisect.bisect_right(keys, d) - 1  # keys[i] <= d
        if i >= 1 and keys[i] == d:
            i -= 1
        lo = float(keys[i]) if i >= 0 else float("-inf")
        after = bisect.bisect_right(keys, d)
        hi = float(keys[after]) if after < len(keys) else float("inf")
        spans.append((lo, hi))
    return spans


def content_mismatch(
    index: KeyframeIndex, rec: SegmentRecord, straight: StraightDecode, fingerprints: bytes
) -> str | None:
    """Why a segment's pictures are not a straight decode's (None: they are), in words for
    the log line that drops its cut. Its timestamps must already be the straight decode's
    (`mismatch`), so that both fingerprint lists are in the same order. Pictures FFmpeg does
    not define (`undefined_spans`) are not compared.

    Args:
        fingerprints: the segment's per-frame fingerprints (`SegmentResult.fingerprints`).
    """
    theirs = straight.fingerprints_within(rec.start_pts, rec.end_pts)
    frames = straight.within(rec.start_pts, rec.end_pts)
    size = fingerprint.SIZE
    if len(fingerprints) != len(theirs):
        return (
            f"it fingerprinted {len(fingerprints) // size} frame(s) where a straight decode "
            f"shows {len(frames)}"
        )
    spans = undefined_spans(index, straight)
    differ = [
        pts
        for i, pts in enumerate(frames)
        if fingerprints[i * size : (i + 1) * size] != theirs[i * size : (i + 1) * size]
        and not any(lo <= pts < hi for lo, hi in spans)
    ]
    if not differ:
        return None
    flagged = "" if rec.corrupt_frames or rec.decode_errors else ", with no damage flagged"
    return (
        f"the pictures its decoder made differ from a straight decode's in {len(differ)} "
        f"of {len(frames)} frame(s), from {index.at(differ[0]):.3f}s{flagged}"
    )
