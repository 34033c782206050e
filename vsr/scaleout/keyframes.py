"""Find where a video can be cut, from its packets alone (nothing is decoded), and plan the
segments of a scale-out job.

A cut is where a decoder can start and give exactly the frames a straight decode gives:

- a random access point, read from the bitstream rather than trusted from the container's
  keyframe flag (`media.bitstream`): an IDR (H.264, HEVC IDR/BLA), an HEVC CRA or an H.264
  I-frame with a recovery point that recovers at once (open GOPs: their leading frames belong
  to the previous segment by timestamp), or a VP8/VP9 key frame. Other codecs' keyframe flags
  are taken as they are. A flagged keyframe that is none of these is refused, with the reason
  kept in `KeyframeIndex.refused`.
- a clean cut in time: every packet before it presents before every packet from it on
  (max(pts[:p]) < min(pts[p:])). Open-GOP leading B-frames (decoded after the keyframe,
  presented before it) satisfy that; the previous segment's decoder reads on past its end
  keyframe until a frame at or after it comes out. Inputs whose timestamps go backwards
  (concatenated streams, packed B-frames in AVI) have keyframes that are not clean cuts: they
  are refused for more than one segment, because frames would be lost or doubled at the
  seams. Packets that share a timestamp (VP9's hidden alt-ref frames) are fine.

Timestamps are the demuxer's, so the source's own timeline: MP4 edit lists applied (frames an
edit list hides are decoded, never shown, and never counted), B-frame delay in the pts. What a
straight decode learnt before a cut and a decoder started there would not know (in-band
parameter sets, the x264 version SEI) is recorded per cut as NAL units the segment's decoder
gets first (`KeyframeIndex.prime`).
"""

from __future__ import annotations

import bisect
import itertools
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av

from ..errors import SourceError
from ..media import bitstream
from ..media.probe import open_video

#: In-band parameter sets remembered for priming; a stream that sends more distinct ones
#: (a new PPS every frame) is not cut after that point rather than primed with all of them.
MAX_PRIMING_UNITS = 64


@dataclass(frozen=True)
class KeyframeIndex:
    """The video stream's cut points and extent, in its time base.

    Attributes:
        keyframes: pts of the clean cuts, ascending (the first frame's included).
        first_pts, end_pts: the first shown frame's pts; one past the last frame's end.
        packets: video packets read.
        problem: why the input cannot be split at all, None when it can.
        frames: pts of the frames a decode shows (edit-list discards and hidden VP8/VP9
            alt-ref frames left out), ascending and distinct: what each segment must hold
            (`expected`).
        refused: (pts, why) of keyframes the container flags that are not cuts.
        primes: (cut pts, NAL units) for cuts whose decoder must first learn what a straight
            decode learnt before them.
    """

    time_base: Fraction
    keyframes: tuple[int, ...]
    first_pts: int
    end_pts: int
    packets: int
    problem: str | None = None
    frames: tuple[int, ...] = field(default=(), repr=False)
    refused: tuple[tuple[int, str], ...] = ()
    primes: tuple[tuple[int, tuple[bytes, ...]], ...] = field(default=(), repr=False)

    @property
    def seconds(self) -> float:
        return float((self.end_pts - self.first_pts) * self.time_base)

    def at(self, pts: int) -> float:
        """Seconds from the start of the stream."""
        return float((pts - self.first_pts) * self.time_base)

    def prime(self, pts: int) -> tuple[bytes, ...]:
        """The NAL units a decoder starting at the cut `pts` gets before its first packet."""
        return dict(self.primes).get(pts, ())

    def expected(self, start: int, end: int | None) -> tuple[int, int | None, int | None]:
        """(frames, first pts, last pts) a straight decode shows with start <= pts < end
        (end None: to the end); (0, None, None) when the scan saw no frames there."""
        lo = bisect.bisect_left(self.frames, start)
        hi = len(self.frames) if end is None else bisect.bisect_left(self.frames, end)
        if hi <= lo:
            return 0, None, None
        return hi - lo, self.frames[lo], self.frames[hi - 1]


@dataclass(frozen=True)
class Segment:
    """Frames with start_pts <= pts < end_pts (end None: to the end), in time order by index."""

    index: int
    start_pts: int
    end_pts: int | None
    seconds: float


@dataclass
class _Packets:
    """What the scan keeps of each video packet, in decode order."""

    pts: list[int] = field(default_factory=list)
    keys: list[int] = field(default_factory=list)  # decode positions of random access points
    shown: list[int] = field(default_factory=list)  # pts of packets an edit list does not hide
    refused: list[tuple[int, str]] = field(default_factory=list)
    primes: dict[int, tuple[bytes, ...]] = field(default_factory=dict)  # decode position -> units


class _Learnt:
    """What a straight H.264/HEVC decode has learnt from the packets so far: every distinct
    in-band parameter set (in the order of its last appearance, so that replaying them leaves
    each id with its latest content) and the latest x264 version SEI."""

    def __init__(self) -> None:
        self.sets: dict[bytes, None] = {}
        self.sei: bytes | None = None
        self.overflow = False

    def prime_for(self, unit: bitstream.AccessUnit) -> tuple[bytes, ...]:
        """Units to feed a decoder that starts at `unit` (before it learns from `unit`)."""
        sei = () if self.sei is None or unit.encoder_sei is not None else (self.sei,)
        return (*self.sets, *sei)

    def learn(self, unit: bitstream.AccessUnit) -> None:
        for nal in unit.parameter_sets:
            self.sets.pop(nal, None)
            self.sets[nal] = None
        if len(self.sets) > MAX_PRIMING_UNITS:
            self.overflow = True
        if unit.encoder_sei is not None:
            self.sei = unit.encoder_sei


def scan(url: str, format: str | None = None, options: dict[str, str] | None = None) -> KeyframeIndex:
    """Read every video packet of `url` (no decoding); `format` and `options` as for the
    input itself (--input-format, --input-option).

    Raises:
        SourceError: the input cannot be opened, has no video, or no timed video packets.
    """
    container, video = open_video(url, format, options)
    with container:
        tb = video.time_base or Fraction(1, 90000)
        codec = video.codec_context.name
        nal = codec in bitstream.NAL_CODECS
        read_bytes = nal or codec in ("vp8", "vp9")
        length_size = bitstream.nal_length_size(codec, bytes(video.codec_context.extradata or b""))
        learnt = _Learnt()
        seen = _Packets()
        missing = 0
        last_duration = 0
        try:
            for packet in container.demux(video):
                if not packet.size:
                    continue
                if packet.pts is None:
                    missing += 1
                    continue
                pts = int(packet.pts)
                position = len(seen.pts)
                data = bytes(packet) if read_bytes else b""
                unit = bitstream.access_unit(codec, data, length_size) if nal else None
                why = _not_a_start(codec, packet, data, unit, learnt)
                if packet.is_keyframe or (unit is not None and unit.random_access):
                    if why is None and not packet.is_discard:
                        seen.keys.append(position)
                        if unit is not None:
                            seen.primes[position] = learnt.prime_for(unit)
                    elif why is not None and packet.is_keyframe and position:
                        seen.refused.append((pts, why))
                if unit is not None:
                    learnt.learn(unit)
                seen.pts.append(pts)
                if not packet.is_discard and bitstream.vpx_shows(codec, data) is not False:
                    seen.shown.append(pts)
                last_duration = int(packet.duration or 0)
        except av.error.FFmpegError:
            pass  # damaged tail: what was read can still be planned; the workers report damage
    if not seen.pts:
        raise SourceError(f"no timed video packets in {url!r}")
    return index_from_packets(
        tb,
        seen.pts,
        seen.keys,
        missing,
        last_duration,
        shown=seen.shown,
        refused=seen.refused,
        primes=seen.primes,
    )


def _not_a_start(
    codec: str, packet: Any, data: bytes, unit: bitstream.AccessUnit | None, learnt: _Learnt
) -> str | None:
    """Why a decoder cannot start at this packet (None: it can)."""
    if unit is not None:
        if unit.random_access is None:
            return "not an IDR or recovery point: frames after it may reference frames before it"
        if learnt.overflow:
            return f"more than {MAX_PRIMING_UNITS} distinct in-band parameter sets before it"
        return None
    key = bitstream.vpx_keyframe(codec, data)
    if key is False:
        return f"flagged as a keyframe, but its {codec.upper()} frame header says otherwise"
    return None if packet.is_keyframe else "not a keyframe"


def index_from_packets(
    tb: Fraction,
    pts: list[int],
    keys: list[int],
    missing: int = 0,
    last_duration: int = 0,
    *,
    shown: list[int] | None = None,
    refused: list[tuple[int, str]] | None = None,
    primes: dict[int, tuple[bytes, ...]] | None = None,
) -> KeyframeIndex:
    """The cut analysis of packets in decode order (`keys`: decode positions of random access
    points; `shown`: pts of the packets a decode shows, default all; `primes`: decode
    position -> NAL units a decoder starting there needs first)."""
    # Packets sharing a pts (VP9's hidden alt-ref frames) are harmless: only a keyframe that
    # is not a clean cut makes the pts ranges lie about which frames a segment holds.
    problem = f"{missing} video packet(s) have no timestamp" if missing else None
    shown = pts if shown is None else shown
    refused = list(refused or [])
    # Clean cuts: prefix max before p < suffix min from p.
    suffix_min: list[float] = [0] * (len(pts) + 1)
    suffix_min[len(pts)] = math.inf
    for i in range(len(pts) - 1, -1, -1):
        suffix_min[i] = min(pts[i], suffix_min[i + 1])
    prefix_max = -math.inf
    cuts: list[int] = []
    cut_primes: dict[int, tuple[bytes, ...]] = {}
    key_set = set(keys)
    for i, p in enumerate(pts):
        if i in key_set:
            if i == 0 or prefix_max < suffix_min[i]:
                cuts.append(p)
                if primes and primes.get(i):
                    cut_primes[p] = primes[i]
            elif prefix_max == suffix_min[i]:
                refused.append((p, "a timestamp it shares with a frame before it"))
            elif problem is None:
                problem = (
                    f"video timestamps go backwards near {float((p - min(pts)) * tb):.3f}s "
                    f"(pts {p} after {int(prefix_max)})"
                )
        prefix_max = max(prefix_max, p)
    first = min(shown) if shown else min(pts)
    cuts = [c for c in cuts if c >= first]
    if not cuts or cuts[0] != first:
        # The stream starts with frames that need an earlier keyframe: start at the first pts.
        cuts = [first, *[c for c in cuts if c > first]]
    step = last_duration or _typical_step(pts)
    return KeyframeIndex(
        tb,
        tuple(sorted(set(cuts))),
        first,
        max(pts) + max(1, step),
        len(pts),
        problem,
        tuple(sorted(set(shown))),
        tuple(sorted(refused)),
        tuple(sorted(cut_primes.items())),
    )


def _typical_step(pts: list[int]) -> int:
    ordered = sorted(pts[-16:])
    steps = [b - a for a, b in itertools.pairwise(ordered) if b > a]
    return sorted(steps)[len(steps) // 2] if steps else 1


#: Default segment length bounds (seconds): long enough that seeking and encoder start-up are
#: noise, short enough that a lost worker or a crash costs little.
MIN_SECONDS, MAX_SECONDS = 30.0, 120.0


def wanted_count(
    index: KeyframeIndex, segments: int | None, segment_seconds: float | None, workers: int
) -> int:
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
