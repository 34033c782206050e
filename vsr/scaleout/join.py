"""Join finished parts into the output: verify them, remux their video packets in order with
their own (absolute, source) timestamps, and copy audio, subtitles and metadata once from the
original input, all through the sink's muxing code.

Not FFmpeg's concat demuxer (it re-bases timestamps and was off by up to 28 ms at segment
starts on VFR input), and no per-segment audio (each AAC part would add priming samples and a
click at every seam): audio is the original's, packet for packet.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import av

from ..errors import EncodeError, VsrError, reason
from ..frames import AudioFrame, AudioPacket, Item, VideoPacket
from ..media import output_container
from ..media.decode import Decoder, DecodeSpec
from ..media.input import open_input
from ..options import SinkOptions, SourceOptions
from ..pipeline.sink import SinkCounters, run_sink
from .manifest import SegmentRecord
from .worker import describe_part

log = logging.getLogger(__name__)


class JoinError(VsrError):
    """The parts do not fit together (exit 1): a bug or a tampered work directory."""


def verify(work: Path, records: Sequence[SegmentRecord], time_base: Fraction) -> list[Path]:
    """Check every part against its record and its neighbours; return their paths in order.

    Raises:
        JoinError: a part is missing, has other frames than recorded, different encoder
            extradata, or timestamps outside its range or overlapping its neighbour's.
    """
    paths = []
    previous_last: int | None = None
    extradata = None
    for rec in sorted(records, key=lambda r: r.index):
        if rec.frames == 0:
            continue  # damage left this range without a decodable frame: nothing to join
        path = work / rec.file
        if not path.is_file():
            raise JoinError(f"segment {rec.index}: part '{path}' is missing")
        part = describe_part(path, time_base)
        if (part.frames, part.first_pts, part.last_pts) != (rec.frames, rec.first_pts, rec.last_pts):
            raise JoinError(
                f"segment {rec.index}: part '{path}' holds {part.frames} frames "
                f"pts {part.first_pts}..{part.last_pts}, the manifest says "
                f"{rec.frames} frames pts {rec.first_pts}..{rec.last_pts}"
            )
        if part.frames == 0 or part.first_pts is None or part.last_pts is None:
            raise JoinError(f"segment {rec.index}: part '{path}' has no frames")
        if part.first_pts < rec.start_pts or (rec.end_pts is not None and part.last_pts >= rec.end_pts):
            raise JoinError(
                f"segment {rec.index}: frames pts {part.first_pts}..{part.last_pts} "
                f"outside its range [{rec.start_pts}, {rec.end_pts})"
            )
        if previous_last is not None and part.first_pts <= previous_last:
            raise JoinError(
                f"segment {rec.index} overlaps the one before it (pts {part.first_pts} <= {previous_last})"
            )
        if extradata is not None and part.extradata != extradata:
            raise JoinError(
                f"segment {rec.index} was encoded with other encoder settings "
                "(its extradata differs): the parts cannot be joined without re-encoding"
            )
        extradata = part.extradata
        previous_last = part.last_pts
        paths.append(path)
    if not paths:
        raise JoinError("no segment has a decodable frame")
    return paths


def join(
    parts: Sequence[Path],
    source: SourceOptions,
    sink: SinkOptions,
    scale: int,
    counters: SinkCounters | None = None,
) -> output_container.OpenedOutput:
    """Write the output from the parts and the original's other streams; renamed into place
    only when complete (the sink's temporary-file rule)."""
    counters = counters or SinkCounters()
    original = open_input(
        SourceOptions(source.url, format=source.format, options=dict(source.options), max_pixels=0)
    )
    try:
        with av.open(str(parts[0])) as first:
            out = output_container.open_output(
                sink, original.info, scale, video_template=first.streams.video[0]
            )
        try:
            audio = Decoder(original, DecodeSpec(decode_audio=out.decode_audio))
            items = heapq.merge(_video_packets(parts), _passthrough(audio), key=_Clock().key)
            run_sink(out, items, counters)
        except BaseException:
            output_container.discard(out)
            raise
        output_container.finish(out)
        return out
    finally:
        original.container.close()


def _video_packets(parts: Sequence[Path]) -> Iterator[Item]:
    """Every part's video packets in order; decode timestamps kept strictly increasing.

    Each part's encoder starts its decode timestamps a few frames before its first pts (the
    B-frame delay); on VFR input that can touch the previous part's last dts. Such a dts is
    moved up by one tick, which is valid while it stays <= its pts.
    """
    last_dts: int | None = None
    for path in parts:
        try:
            with av.open(str(path)) as c:
                v = c.streams.video[0]
                for pk in c.demux(v):
                    if not pk.size:
                        continue
                    if pk.dts is not None and last_dts is not None and pk.dts <= last_dts:
                        if pk.pts is None or last_dts + 1 > pk.pts:
                            raise JoinError(
                                f"cannot join '{path}': its decode timestamps run into the previous part's"
                            )
                        pk.dts = last_dts + 1
                    if pk.dts is not None:
                        last_dts = pk.dts
                    yield VideoPacket(pk)
        except av.error.FFmpegError as exc:
            raise EncodeError(f"cannot read segment part '{path}': {reason(exc)}") from exc


def _passthrough(decoder: Decoder) -> Iterator[Item]:
    """The original's audio and subtitle packets (decoded where the output re-encodes them)."""
    streams = list(decoder.src.info.passthrough)
    if not streams:
        return
    yield from decoder.early()
    try:
        for packet in decoder.src.container.demux(streams):
            yield from decoder.passthrough(packet)
    except av.error.FFmpegError as exc:
        log.warning("cannot read the input's audio past this point: %s", reason(exc))
    yield from decoder.flush_audio()


class _Clock:
    """Merge key: an item's time in seconds (decode time for video); untimed items keep the
    time of the item before them in their own stream."""

    def __init__(self) -> None:
        self.last: dict[int, float] = {}

    def key(self, item: Item) -> float:
        if isinstance(item, VideoPacket):
            obj, stream = item.packet, -1
            ts = obj.dts if obj.dts is not None else obj.pts
        elif isinstance(item, (AudioPacket, AudioFrame)):
            obj = item.packet if isinstance(item, AudioPacket) else item.frame
            stream = item.stream_index
            ts = obj.pts
        else:
            return 0.0
        if ts is None or not obj.time_base:
            return self.last.get(stream, float("-inf"))
        t = float(ts * obj.time_base)
        self.last[stream] = t
        return t
