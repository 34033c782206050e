"""Opening an input (main thread): open a file, pipe, device or URL with PyAV and probe it.

`open_input()` opens the container and decodes up to the first video frame, so a missing
file, a file with no video or a stream that cannot be decoded is reported before any thread
starts, and the output learns the real frame geometry, colour tags and rotation (headers can
lie; the first frame cannot). What it returns, an `OpenedInput`, is then handed to exactly
one decode thread (`source.run_source`, `live.run_live_source`) or to the scale-out join,
which owns the container from there on.
"""

from __future__ import annotations

import itertools
import logging
import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import IntEnum
from fractions import Fraction
from typing import Any, TypeVar

import av
from av.video.reformatter import ColorPrimaries, ColorRange, ColorTrc

from ..errors import NoVideoFrame, SourceError, UsageError, reason
from ..frames import Chapter, MatrixTag, StreamInfo, VideoInfo, seconds_of
from ..options import SourceOptions
from . import bitstream
from .captions import a53_of
from .picture_metadata import has_dolby_vision, hdr10_of
from .probe import TEXT_FORMATS

log = logging.getLogger(__name__)
Tag = TypeVar("Tag", bound=IntEnum)

IMAGE_FORMATS = {
    "image2",
    "png_pipe",
    "jpeg_pipe",
    "webp_pipe",
    "bmp_pipe",
    "tiff_pipe",
    "gif",
    "pgm_pipe",
    "ppm_pipe",
    "jpegls_pipe",
    "qoi_pipe",
}


@dataclass(frozen=True)
class Span:
    """The part of the input a run reads, as the source thread applies it.

    A scale-out segment is a keyframe-aligned range that keeps the input's times (the join
    lays the parts end to end); a trim (`--start`, `--duration`) starts anywhere and moves
    every output time `shift` seconds earlier, video, audio and subtitles alike, so they stay
    in sync and the output starts where an untrimmed run's would.

    Attributes:
        start_pts: frames before this pts (video time base) are decoded but not kept.
        end_pts: frames at or after it end the video (None: to the end).
        begin: audio and subtitles timed before this (input seconds) are left out (None: kept).
        shift: seconds subtracted from every output time.
    """

    start_pts: int | None = None
    end_pts: int | None = None
    begin: float | None = None
    shift: Fraction = Fraction(0)

    def before(self, seconds: float | None) -> bool:
        """Whether a passthrough item starting at `seconds` lies before the span (untimed: no)."""
        return self.begin is not None and seconds is not None and seconds < self.begin - 1e-6


@dataclass(frozen=True)
class OpenedInput:
    """An open container positioned just after the first decoded video frame.

    Attributes:
        container: the av.container.InputContainer (owned by the one thread it is handed to).
        video: its video stream that is decoded.
        info: what was probed (geometry, colour, rate, passthrough streams).
        first_frame: the first decoded av.VideoFrame (at or after `span.start_pts`).
        pending: passthrough packets demuxed before the first frame, in order.
        span: the part of the input the run reads (all of it unless a segment or a trim).
        options: what it was opened with (a live reconnect opens it again the same way).
        early_errors: input times of the packets that failed to decode before the first frame
            (None where a packet has no time).
    """

    container: Any  # av.container.InputContainer
    video: Any  # av.VideoStream
    info: StreamInfo
    first_frame: Any  # av.VideoFrame
    pending: list[Any]
    options: SourceOptions
    early_errors: list[float | None] = field(default_factory=list)
    span: Span = Span()


def open_input(opts: SourceOptions) -> OpenedInput:
    """Open the input and decode its first video frame.

    Raises:
        SourceError: missing file, unreadable or non-media data, no video stream, or no
            video frame that can be decoded.
    """
    url = opts.url
    name = "standard input" if url == "-" else repr(url)
    stdin = _InterruptibleReader(sys.stdin.buffer) if url == "-" else None
    try:
        target: Any = stdin if stdin is not None else url
        try:
            container = av.open(
                target,
                "r",
                format=opts.format,
                options=dict(opts.options),
                timeout=(opts.open_timeout, opts.timeout),
            )
        finally:
            if stdin is not None:
                stdin.reraise()
    except FileNotFoundError as exc:
        raise SourceError(f"cannot open input {name}: no such file or directory") from exc
    except av.error.FFmpegError as exc:
        raise SourceError(f"cannot open input {name}: {reason(exc)}") from exc
    except OSError as exc:
        raise SourceError(f"cannot open input {name}: {exc.strerror or exc}") from exc
    try:
        if opts.format is None and container.format.name in TEXT_FORMATS:
            raise SourceError(
                f"cannot open input {name}: it is text, not video "
                f"(FFmpeg reads it as {container.format.long_name})",
                hint=f"to render it as video on purpose, pass --input-format {container.format.name}",
            )
        if not container.streams.video:
            kinds = ", ".join(sorted({s.type for s in container.streams})) or "no streams"
            raise SourceError(
                f"no video stream in {name} (it has {kinds})",
                hint="vsr upscales video and images; this input has none",
            )
        video = container.streams.video[0]
        _check_size(video.codec_context.width, video.codec_context.height, opts.max_pixels, name, "declares")
        video.thread_type = opts.decoder_threads
        passthrough = (
            [] if opts.video_only else [s for s in container.streams if s.type in ("audio", "subtitle")]
        )
        early_errors: list[float | None] = []
        span = Span(opts.start_pts, opts.end_pts)
        try:
            if opts.start_pts is not None:
                first, pending = _start_at_cut(
                    container, video, opts.start_pts, opts.video_prime, name, early_errors
                )
            else:
                first, pending = _first_frame(container, video, passthrough, name, early_errors)
                if opts.start or opts.duration is not None:
                    first, pending, span = _trim(
                        container, video, passthrough, opts, name, early_errors, first, pending
                    )
        finally:
            if stdin is not None:
                stdin.reraise()
        if span.end_pts is not None and first.pts is not None and first.pts >= span.end_pts:
            raise NoVideoFrame(f"no video frame in {name} between pts {span.start_pts} and {span.end_pts}")
        _check_size(first.width, first.height, opts.max_pixels, name, "has")
        video_info = _video_info(container, video, first)
        t_first = seconds_of(first)
        # --frames N ends the output N frames after its first: at its rate, where it has one
        until = (
            t_first + opts.max_frames / float(video_info.rate)
            if opts.max_frames and video_info.rate and t_first is not None
            else None
        )
        info = StreamInfo(
            url=url,
            format_name=container.format.name,
            video=video_info,
            passthrough=tuple(passthrough),
            container_metadata=dict(container.metadata),
            is_image=container.format.name in IMAGE_FORMATS,
            dropped_streams=_dropped_streams(container, video),
            chapters=() if opts.video_only else _chapters(container, video, span, until),
        )
    except BaseException:
        container.close()
        raise
    return OpenedInput(container, video, info, first, pending, opts, early_errors, span)


def _check_size(width: int, height: int, max_pixels: int, name: str, verb: str) -> None:
    """Refuse frames beyond the pixel budget before anything that size is allocated."""
    if max_pixels and width * height > max_pixels:
        raise SourceError(
            f"input {name} {verb} {width}x{height} frames ({width * height} pixels), "
            f"more than the budget of {max_pixels}",
            hint="raise --max-pixels if this is intended (memory grows with scale squared and --batch)",
        )


class CannotSeek(SourceError):
    """The input refuses to seek (a pipe, a stream, some raw formats)."""


PIPE_HINT = (
    "a pipe cannot be rewound: send a streamable container (MPEG-TS, Matroska, NUT) "
    "or an MP4 written with -movflags +faststart, or pass the file's path"
)


class _InterruptibleReader:
    """Standard input for PyAV that lets Ctrl-C through.

    PyAV calls `read()` from a C callback that swallows KeyboardInterrupt ("Exception ignored
    in pyio_read_gil") and keeps reading, so a signal while waiting for input was lost. Here
    it ends the input instead; `reraise()` raises it again once PyAV has returned.
    """

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.interrupted: BaseException | None = None

    def read(self, n: int = -1) -> bytes:
        if self.interrupted is not None:
            return b""
        try:
            data: bytes = self.raw.read(n)
            return data
        except KeyboardInterrupt as exc:
            self.interrupted = exc
            return b""

    def reraise(self) -> None:
        if self.interrupted is not None:
            exc, self.interrupted = self.interrupted, None
            raise exc


def _seek_first_frame(
    container: Any,
    video: Any,
    start: int,
    passthrough: list[Any],
    name: str,
    errors: list[float | None],
    needs: str,
) -> tuple[Any, list[Any]]:
    """Seek to the keyframe at or before pts `start` and decode up to the first frame at or
    after it, gathering the `passthrough` packets demuxed on the way.

    Seeking by timestamp can land past the wanted keyframe in containers without an index
    (MPEG-TS): then frames would be lost, so it retries from further back; landing before it
    only costs decoding a few frames that are skipped. `needs` says what needs the seek, for
    the error of an input that cannot seek.

    Raises:
        CannotSeek: the input refuses to seek.
    """
    second = max(1, int(1 / video.time_base)) if video.time_base else 90000
    first: Any = None
    pending: list[Any] = []
    for back in (0, 1, 3, 7, 15, 31):  # seconds before the keyframe
        try:
            container.seek(start - back * second, stream=video, backward=True, any_frame=False)
        except av.error.FFmpegError as exc:
            raise CannotSeek(
                f"cannot seek in input {name}: {reason(exc)}", hint=f"{needs} a seekable file"
            ) from exc
        video.codec_context.flush_buffers()
        errors.clear()
        earlier: list[Any] = []
        try:
            first, pending = _first_frame(container, video, passthrough, name, errors, start, earlier)
        except SourceError:
            # Landed on frames that need an earlier keyframe and found none after them
            # (MPEG-TS seeks by decode time): try from further back.
            if back == 31:
                raise
            continue
        if first.pts is None or first.pts <= start or earlier:
            return first, pending  # at the start, or decoded from a frame before it
    if first is None:
        raise SourceError(f"cannot seek to pts {start} in {name}")
    log.warning(
        "seeking to pts %d in %s landed after it: frames before pts %s may be missing", start, name, first.pts
    )
    return first, pending


def _start_at_cut(
    container: Any, video: Any, start: int, prime: tuple[bytes, ...], name: str, errors: list[float | None]
) -> tuple[Any, list[Any]]:
    """Start decoding a scale-out segment at its cut: the keyframe packet with pts `start`,
    and decode up to the first frame at or after it.

    The first packet the decoder sees is that keyframe, wherever the container's seek lands:
    packets demuxed before it are passed over, not decoded. Decoding from an earlier
    keyframe instead would leave the decoder in a state a straight decode does not have at
    the cut (concealment of damaged frames reaches into the pictures before an IDR), and a
    seek that lands on a packet that is no keyframe (an index that flags too much) would
    feed the decoder frames without their references. `prime` (NAL units: what a straight
    decode learnt before the cut, see `bitstream`) goes in front of the keyframe's bytes.
    A seek that lands after the keyframe (MPEG-TS seeks by decode time, without an index)
    is retried from further back.

    Raises:
        CannotSeek: the input refuses to seek.
        SourceError: no packet at pts `start` is found.
    """
    second = max(1, int(1 / video.time_base)) if video.time_base else 90000
    cc = video.codec_context
    length_size = bitstream.nal_length_size(cc.name, bytes(cc.extradata or b""))
    for back in (0, 1, 3, 7, 15, 31):  # seconds before the keyframe
        try:
            container.seek(start - back * second, stream=video, backward=True, any_frame=False)
        except av.error.FFmpegError as exc:
            raise CannotSeek(
                f"cannot seek in input {name}: {reason(exc)}", hint="scale-out segments need a seekable file"
            ) from exc
        video.codec_context.flush_buffers()
        errors.clear()
        packets = container.demux(video)
        try:
            for packet in packets:
                if not packet.size or packet.pts is None:
                    continue
                if packet.pts > start:
                    break  # landed after the cut (every packet before it presents earlier)
                if packet.pts == start:
                    cut = av.Packet(bitstream.prepend(cc.name, bytes(packet), prime, length_size))
                    cut.pts, cut.dts, cut.duration = packet.pts, packet.dts, packet.duration
                    cut.time_base, cut.is_keyframe = packet.time_base, True
                    cut.stream = video
                    return _first_frame(
                        container, video, [], name, errors, start, packets=itertools.chain([cut], packets)
                    )
        except av.error.FFmpegError as exc:
            raise SourceError(f"cannot read input {name}: {reason(exc)}") from exc
    raise SourceError(
        f"cannot find the keyframe at pts {start} in {name}",
        hint="the file changed since its keyframes were scanned, or its index "
        "is damaged: run it without --segments",
    )


def _trim(
    container: Any,
    video: Any,
    passthrough: list[Any],
    opts: SourceOptions,
    name: str,
    errors: list[float | None],
    first: Any,
    pending: list[Any],
) -> tuple[Any, list[Any], Span]:
    """The first frame, early packets and `Span` of a trimmed run (`opts.start`,
    `opts.duration`), given the input's first frame.

    Times count from the first video frame, as `vsr compare --at` does, so a frame picked
    there starts the same trim here. Every output time is the input's less the start, so the
    start instant lands where an untrimmed run starts (the first frame at or after it up to a
    frame later), audio and subtitles from that same instant. A file is sought (to the
    keyframe before the start); a pipe, or anything else that cannot seek, is decoded
    forward and what lies before the start is dropped.

    Raises:
        UsageError: a negative start or a duration of 0 or less, an input without
            timestamps, or a start at or past its end.
    """
    if opts.start < 0:
        raise UsageError(f"--start {opts.start:g}s: a start is 0 or more seconds")
    if opts.duration is not None and opts.duration <= 0:
        raise UsageError(f"--duration {opts.duration:g}s: a duration is more than 0 seconds")
    tb = video.time_base
    if first.pts is None or not tb:
        raise UsageError(
            f"cannot trim {name}: its frames have no timestamps",
            hint="leave out --start and --duration (--frames still works)",
        )
    t0_pts = first.pts
    # Frames at or after the start, before its end: whole ticks up from the first frame's.
    start_pts = t0_pts + math.ceil(opts.start / tb - 1e-6)
    end_pts = None if opts.duration is None else t0_pts + math.ceil((opts.start + opts.duration) / tb - 1e-6)
    length = _duration(container, video)
    if opts.start and length is not None and opts.start >= length:
        raise UsageError(
            f"--start {opts.start:g}s is past the end of {name} ({length:.3f}s long)",
            hint=f"pick a start below {length:.3f}",
        )
    if opts.start:
        try:
            try:
                if opts.url == "-":
                    raise CannotSeek("standard input")
                first, pending = _seek_first_frame(
                    container, video, start_pts, passthrough, name, errors, "--start needs"
                )
            except CannotSeek:  # a pipe or an unseekable stream: decode up to the start
                more: list[Any] = []
                first, more = _first_frame(container, video, passthrough, name, errors, start_pts)
                pending = pending + more
        except NoVideoFrame as exc:
            if container.format.name in IMAGE_FORMATS and length is None:  # not a sequence
                raise UsageError(
                    f"--start {opts.start:g}s is past the end of {name}: it is an image (one frame)",
                    hint="leave out --start",
                ) from exc
            raise UsageError(
                f"--start {opts.start:g}s is past the last video frame of {name}",
                hint="pick an earlier start",
            ) from exc
    # Not the first frame decoded after the seek: frames can come out of order (AVI).
    return (
        first,
        pending,
        Span(start_pts, end_pts, begin=float(start_pts * tb), shift=Fraction((start_pts - t0_pts) * tb)),
    )


def _duration(container: Any, video: Any) -> float | None:
    """The input's length in seconds as its headers give it (None when they do not)."""
    if video.duration and video.time_base:
        return float(video.duration * video.time_base)
    if container.duration:
        return float(container.duration / av.time_base)
    return None


def _first_frame(
    container: Any,
    video: Any,
    passthrough: list[Any],
    name: str,
    errors: list[float | None],
    start: int | None = None,
    earlier: list[Any] | None = None,
    packets: Iterator[Any] | None = None,
) -> tuple[Any, list[Any]]:
    """Decode up to the first video frame (the first at or after pts `start` when given);
    packets that fail on the way are noted in `errors`, frames decoded before `start` are
    counted in `earlier`. `packets`: where the packets come from (default: the demuxer)."""
    pending: list[Any] = []
    wanted = {s.index for s in passthrough}

    def wanted_frame(frame: Any) -> bool:
        if start is None or frame.pts is None or frame.pts >= start:
            return True
        if earlier is not None:
            earlier.append(frame.pts)
        return False

    try:
        for packet in packets if packets is not None else container.demux([video, *passthrough]):
            if packet.stream.index in wanted:
                if packet.size:
                    pending.append(packet)
                continue
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                if start is None or (packet.pts is not None and packet.pts >= start):
                    errors.append(seconds_of(packet))
                if len(errors) > 500:
                    break
                continue
            for frame in frames:
                if wanted_frame(frame):
                    return frame, pending
        for frame in video.decode(None):
            if wanted_frame(frame):
                return frame, pending
    except av.error.EOFError:
        pass  # the demuxer's end-of-stream packet had already flushed the decoder
    except av.error.FFmpegError as exc:
        raise SourceError(
            f"cannot read input {name}: {reason(exc)}", hint=PIPE_HINT if name == "standard input" else None
        ) from exc
    raise NoVideoFrame(f"no decodable video frame in {name}", hint="the file may be truncated or damaged")


def _chapters(container: Any, video: Any, span: Span, until: float | None = None) -> tuple[Chapter, ...]:
    """The input's chapters on the output's clock: those a trim leaves out dropped, the
    others cut to its span and moved by its shift (as every stream is); `until` (input
    seconds: where `--frames` ends the output) cuts them too."""
    try:
        raw = container.chapters()
    except (AttributeError, av.error.FFmpegError):  # a PyAV without chapters
        return ()
    tb_v = video.time_base or Fraction(1, 90000)
    begin = Fraction(span.start_pts * tb_v) if span.start_pts is not None else None
    end = Fraction(span.end_pts * tb_v) if span.end_pts is not None else None
    if until is not None:
        cut = Fraction(until).limit_denominator(1_000_000)
        end = cut if end is None else min(end, cut)
    chapters = []
    for c in raw:
        tb = Fraction(c["time_base"])
        start, stop = Fraction(c["start"]) * tb, Fraction(c["end"]) * tb
        if (begin is not None and stop <= begin) or (end is not None and start >= end):
            continue
        if begin is not None:
            start = max(start, begin)
        if end is not None:
            stop = min(stop, end)
        start, stop = start - span.shift, stop - span.shift
        chapters.append(
            Chapter(
                round(start / tb),
                round(stop / tb),
                tb,
                {str(k): str(v) for k, v in dict(c["metadata"]).items()},
            )
        )
    return tuple(chapters)


def _dropped_streams(container: Any, video: Any) -> tuple[str, ...]:
    """ "#2 data (GoPro MET)": the input's streams that no output carries (data tracks, extra
    video such as cover art or a depth map, attachments). A timecode track is not among
    them: its tag travels on the video stream, from which MP4/MOV rebuild the track."""
    dropped = []
    for s in container.streams:
        if s.type in ("audio", "subtitle") or s is video:
            continue
        if "timecode" in s.metadata and video.metadata.get("timecode") == s.metadata["timecode"]:
            continue
        cc = s.codec_context
        name = s.metadata.get("handler_name") or (cc.name if cc is not None else "") or "unknown"
        dropped.append(f"#{s.index} {s.type} ({name.strip()})")
    return tuple(dropped)


def _tag(kind: type[Tag], frame_value: Any, stream_value: Any) -> Tag | int:
    """A colour tag (`kind`: PyAV's ColorRange, ColorPrimaries or ColorTrc, or MatrixTag) from
    the first frame, or from the stream (container boxes such as MP4's `colr`) when the
    bitstream leaves it unspecified (or at 0: the reserved value of the primaries and
    transfer, RGB's matrix, which a decoder also reports for untagged input). A number `kind`
    has no name for (FFmpeg's reserved values) stays a plain int, so the output carries it."""
    unspecified = kind["UNSPECIFIED"]
    v = int(frame_value)
    if v in (unspecified, 0) and stream_value is not None and int(stream_value) not in (unspecified, 0):
        v = int(stream_value)
    try:
        return kind(v)
    except ValueError:
        return v


def _sar(video: Any) -> Fraction:
    for sar in (video.sample_aspect_ratio, video.codec_context.sample_aspect_ratio):
        if sar and sar > 0:
            return Fraction(sar)
    return Fraction(1)


def _video_info(container: Any, video: Any, first: Any) -> VideoInfo:
    cc = video.codec_context
    rate = video.average_rate or video.guessed_rate or None
    duration = _duration(container, video)
    frames = int(video.frames or 0)
    if not frames and duration and rate:
        frames = round(duration * float(rate))
    fmt = first.format
    depth = max((c.bits for c in fmt.components), default=8)
    return VideoInfo(
        width=first.width,
        height=first.height,
        time_base=video.time_base or Fraction(1, 90000),
        rate=Fraction(rate) if rate else None,
        frames=frames,
        duration=duration,
        pix_fmt=fmt.name,
        colorspace=_tag(MatrixTag, first.colorspace, cc.colorspace),
        color_range=_tag(ColorRange, first.color_range, cc.color_range),
        color_primaries=_tag(ColorPrimaries, first.color_primaries, cc.color_primaries),
        color_trc=_tag(ColorTrc, first.color_trc, cc.color_trc),
        rotation=round(first.rotation or 0),
        metadata=dict(video.metadata),
        codec=cc.name,
        bit_depth=depth,
        sar=_sar(video),
        hdr10=hdr10_of(first),
        dolby_vision=has_dolby_vision(first, video),
        captions=a53_of(first) is not None,
    )
