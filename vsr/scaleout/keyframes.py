"""Find where a video can be cut, from its packets alone (nothing is decoded), and plan the
segments of a scale-out job.

A keyframe at decode position p is a clean cut when every packet before it presents before
every packet from it on: max(pts[:p]) < min(pts[p:]). Open-GOP leading B-frames (decoded after
the keyframe, presented before it) satisfy that; they belong to the previous segment, whose
decoder reads on past its end keyframe until a frame at or after it comes out. Inputs whose
timestamps go backwards (concatenated streams, packed B-frames in AVI) have keyframes that are
not clean cuts: they are refused for more than one segment, because frames would be lost or
doubled at the seams. Packets that share a timestamp (VP9's hidden alt-ref frames) are fine.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from fractions import Fraction

import av

from ..errors import SourceError
from ..media.probe import open_video


@dataclass(frozen=True)
class KeyframeIndex:
    """The video stream's cut points and extent, in its time base."""

    time_base: Fraction
    keyframes: tuple[int, ...]  # pts of keyframes that are clean cuts, ascending (first included)
    first_pts: int
    end_pts: int  # one past the last frame (its pts + duration)
    packets: int
    problem: str | None = None  # why the input cannot be split, None when it can

    @property
    def seconds(self) -> float:
        return float((self.end_pts - self.first_pts) * self.time_base)

    def at(self, pts: int) -> float:
        """Seconds from the start of the stream."""
        return float((pts - self.first_pts) * self.time_base)


@dataclass(frozen=True)
class Segment:
    """Frames with start_pts <= pts < end_pts (end None: to the end), in time order by index."""

    index: int
    start_pts: int
    end_pts: int | None
    seconds: float


def scan(url: str, format: str | None = None, options: dict[str, str] | None = None) -> KeyframeIndex:
    """Read every video packet header of `url` (no decoding); `format` and `options` as for
    the input itself (--input-format, --input-option).

    Raises:
        SourceError: the input cannot be opened, has no video, or no timed video packets.
    """
    container, video = open_video(url, format, options)
    with container:
        tb = video.time_base or Fraction(1, 90000)
        pts: list[int] = []
        keys: list[int] = []  # decode positions of keyframes
        missing = 0
        last_duration = 0
        try:
            for packet in container.demux(video):
                if not packet.size:
                    continue
                if packet.pts is None:
                    missing += 1
                    continue
                if packet.is_keyframe:
                    keys.append(len(pts))
                pts.append(int(packet.pts))
                last_duration = int(packet.duration or 0)
        except av.error.FFmpegError:
            pass  # damaged tail: what was read can still be planned; the workers report damage
    if not pts:
        raise SourceError(f"no timed video packets in {url!r}")
    return index_from_packets(tb, pts, keys, missing, last_duration)


def index_from_packets(tb: Fraction, pts: list[int], keys: list[int], missing: int = 0,
                       last_duration: int = 0) -> KeyframeIndex:
    """The cut analysis of packets in decode order (`keys`: decode positions of keyframes)."""
    # Packets sharing a pts (VP9's hidden alt-ref frames) are harmless: only a keyframe that
    # is not a clean cut makes the pts ranges lie about which frames a segment holds.
    problem = f"{missing} video packet(s) have no timestamp" if missing else None
    # Clean cuts: prefix max before p < suffix min from p.
    suffix_min = [0] * (len(pts) + 1)
    suffix_min[len(pts)] = math.inf  # type: ignore[call-overload]
    for i in range(len(pts) - 1, -1, -1):
        suffix_min[i] = min(pts[i], suffix_min[i + 1])
    prefix_max = -math.inf
    cuts: list[int] = []
    key_set = set(keys)
    for i, p in enumerate(pts):
        if i in key_set:
            if i == 0 or prefix_max < suffix_min[i]:
                cuts.append(p)
            elif prefix_max == suffix_min[i]:
                pass  # a timestamp shared across this keyframe: not a cut, nothing wrong
            elif problem is None:
                problem = (f"video timestamps go backwards near {float((p - min(pts)) * tb):.3f}s "
                           f"(pts {p} after {int(prefix_max)})")
        prefix_max = max(prefix_max, p)
    first = min(pts)
    if not cuts or cuts[0] != first:
        # The stream starts with frames that need an earlier keyframe: start at the first pts.
        cuts = [first, *[c for c in cuts if c > first]]
    step = last_duration or _typical_step(pts)
    return KeyframeIndex(tb, tuple(sorted(set(cuts))), first, max(pts) + max(1, step), len(pts),
                         problem)


def _typical_step(pts: list[int]) -> int:
    ordered = sorted(pts[-16:])
    steps = [b - a for a, b in itertools.pairwise(ordered) if b > a]
    return sorted(steps)[len(steps) // 2] if steps else 1


#: Default segment length bounds (seconds): long enough that seeking and encoder start-up are
#: noise, short enough that a lost worker or a crash costs little.
MIN_SECONDS, MAX_SECONDS = 30.0, 120.0


def wanted_count(index: KeyframeIndex, segments: int | None, segment_seconds: float | None,
                 workers: int) -> int:
    """How many segments to aim for: as asked, or 2 per worker and at most MAX_SECONDS each."""
    if segments is not None:
        return max(1, segments)
    if segment_seconds is not None:
        return max(1, math.ceil(index.seconds / segment_seconds))
    return max(2 * workers, math.ceil(index.seconds / MAX_SECONDS))


def plan(index: KeyframeIndex, count: int) -> list[Segment]:
    """Cut at the clean keyframes nearest to `count` equal parts (fewer when keyframes are few).

    A cut that would leave a segment shorter than a quarter of the ideal length is skipped:
    a sliver costs a seek and an encoder start for almost no work.
    """
    span = index.end_pts - index.first_pts
    shortest = span / count / 4
    starts = [index.first_pts]
    candidates = [k for k in index.keyframes[1:] if index.end_pts - k >= shortest]
    for i in range(1, count):
        candidates = [k for k in candidates if k - starts[-1] >= shortest]
        if not candidates:
            break
        ideal = index.first_pts + span * i / count
        best = min(candidates, key=lambda k: abs(k - ideal))
        starts.append(best)
        candidates = [k for k in candidates if k > best]
    return segments_at(index, starts)


def segments_at(index: KeyframeIndex, starts: list[int]) -> list[Segment]:
    """The segments that begin at `starts` (ascending; each ends where the next begins)."""
    segments = []
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else None
        seconds = float(((end if end is not None else index.end_pts) - start) * index.time_base)
        segments.append(Segment(i, start, end, seconds))
    return segments
