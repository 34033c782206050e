"""Input: open a file, pipe or URL with PyAV, and decode it into Frames (thread "vsr-source").

`open_input()` runs in the main thread: it opens the container and decodes up to the first
video frame, so a missing file, a file with no video or a stream that cannot be decoded is
reported before any thread starts, and the sink learns the real frame geometry, colour tags
and rotation (headers can lie; the first frame cannot). `run_source()` then owns the
container: it demuxes, decodes, converts each frame to Y + CrCb, and puts Frames and
passthrough packets (audio, subtitles) into the channel in demux order.
"""

from __future__ import annotations

import collections
import logging
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av

from .channel import Channel
from .color import split_frame
from .errors import DecodeError, NoVideoFrame, SourceError, reason
from .frames import AudioFrame, AudioPacket, Item, StreamInfo, VideoInfo, seconds_of
from .options import OnError, SourceOptions
from .signalling import has_dolby_vision, hdr10_of
from .timestamps import Pending, TimestampRepair

log = logging.getLogger(__name__)

IMAGE_FORMATS = {"image2", "png_pipe", "jpeg_pipe", "webp_pipe", "bmp_pipe", "tiff_pipe",
                 "gif", "pgm_pipe", "ppm_pipe", "jpegls_pipe", "qoi_pipe"}


@dataclass
class SourceCounters:
    """Written by the source thread, read by the pipeline after it ends."""

    frames: int = 0
    decode_errors: int = 0  # packets the decoder or demuxer rejected (their frames are lost)
    error_times: list[float] = field(default_factory=list)
    corrupt_frames: int = 0  # frames the decoder delivered with concealed damage (kept)
    corrupt_times: list[float] = field(default_factory=list)
    repaired_pts: int = 0
    resized: int = 0
    decode_seconds: float = 0.0
    color_seconds: float = 0.0


@dataclass
class OpenedInput:
    """An open container positioned just after the first decoded video frame."""

    container: Any  # av.container.InputContainer
    video: Any  # av.VideoStream
    info: StreamInfo
    first_frame: Any  # av.VideoFrame
    pending: list[Any]  # packets demuxed before the first frame: passthrough ones, in order
    options: SourceOptions
    early_errors: list[float | None] = field(default_factory=list)  # undecodable before it


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
            container = av.open(target, "r", format=opts.format, options=dict(opts.options),
                                timeout=(opts.open_timeout, opts.timeout))
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
            raise SourceError(f"cannot open input {name}: it is text, not video "
                              f"(FFmpeg reads it as {container.format.long_name})",
                              hint=f"to render it as video on purpose, pass --input-format "
                                   f"{container.format.name}")
        if not container.streams.video:
            kinds = ", ".join(sorted({s.type for s in container.streams})) or "no streams"
            raise SourceError(f"no video stream in {name} (it has {kinds})",
                              hint="vsr upscales video and images; this input has none")
        video = container.streams.video[0]
        _check_size(video.codec_context.width, video.codec_context.height, opts.max_pixels,
                    name, "declares")
        video.thread_type = opts.decoder_threads
        passthrough = [] if opts.video_only else \
            [s for s in container.streams if s.type in ("audio", "subtitle")]
        early_errors: list[float | None] = []
        try:
            if opts.start_pts is not None:
                first, pending = _seek_first_frame(container, video, opts, name, early_errors)
            else:
                first, pending = _first_frame(container, video, passthrough, name, early_errors)
        finally:
            if stdin is not None:
                stdin.reraise()
        if opts.end_pts is not None and first.pts is not None and first.pts >= opts.end_pts:
            raise NoVideoFrame(f"no video frame in {name} between pts {opts.start_pts} and "
                              f"{opts.end_pts}")
        _check_size(first.width, first.height, opts.max_pixels, name, "has")
        info = StreamInfo(
            url=url,
            format_name=container.format.name,
            video=_video_info(container, video, first),
            passthrough=tuple(passthrough),
            container_metadata=dict(container.metadata),
            is_image=container.format.name in IMAGE_FORMATS,
            dropped_streams=_dropped_streams(container, video),
        )
    except BaseException:
        container.close()
        raise
    return OpenedInput(container, video, info, first, pending, opts, early_errors)


def _check_size(width: int, height: int, max_pixels: int, name: str, verb: str) -> None:
    """Refuse frames beyond the pixel budget before anything that size is allocated."""
    if max_pixels and width * height > max_pixels:
        raise SourceError(f"input {name} {verb} {width}x{height} frames ({width * height} pixels), "
                          f"more than the budget of {max_pixels}",
                          hint="raise --max-pixels if this is intended (memory grows with scale "
                               "squared and --batch)")


PIPE_HINT = ("a pipe cannot be rewound: send a streamable container (MPEG-TS, Matroska, NUT) "
             "or an MP4 written with -movflags +faststart, or pass the file's path")

#: Demuxers that turn any text file into video (ANSI art): only used when asked for by name.
TEXT_FORMATS = {"tty", "bin", "adf", "idf", "xbin"}


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


def _seek_first_frame(container: Any, video: Any, opts: SourceOptions, name: str,
                      errors: list[float | None]) -> tuple[Any, list[Any]]:
    """Seek to the keyframe at `opts.start_pts` and decode the segment's first frame.

    Seeking by timestamp can land past the wanted keyframe in containers without an index
    (MPEG-TS): then frames would be lost, so it retries from further back; landing before it
    only costs decoding a few frames that are skipped.
    """
    start = opts.start_pts
    assert start is not None
    second = max(1, int(1 / video.time_base)) if video.time_base else 90000
    first: Any = None
    pending: list[Any] = []
    for back in (0, 1, 3, 7, 15, 31):  # seconds before the keyframe
        try:
            container.seek(start - back * second, stream=video, backward=True, any_frame=False)
        except av.error.FFmpegError as exc:
            raise SourceError(f"cannot seek in input {name}: {reason(exc)}",
                              hint="scale-out segments need a seekable file") from exc
        video.codec_context.flush_buffers()
        errors.clear()
        try:
            first, pending = _first_frame(container, video, [], name, errors, start)
        except SourceError:
            # Landed on frames that need an earlier keyframe and found none after them
            # (MPEG-TS seeks by decode time): try from further back.
            if back == 31:
                raise
            continue
        if first.pts is None or first.pts <= start:
            return first, pending
    if first is None:
        raise SourceError(f"cannot seek to pts {start} in {name}")
    log.warning("seeking to pts %d in %s landed after it: frames before pts %s may be missing",
                start, name, first.pts)
    return first, pending


def _first_frame(container: Any, video: Any, passthrough: list[Any], name: str,
                 errors: list[float | None], start: int | None = None) -> tuple[Any, list[Any]]:
    """Decode up to the first video frame (the first at or after pts `start` when given);
    packets that fail on the way are noted in `errors`."""
    pending: list[Any] = []
    wanted = {s.index for s in passthrough}

    def wanted_frame(frame: Any) -> bool:
        return start is None or frame.pts is None or frame.pts >= start

    try:
        for packet in container.demux([video, *passthrough]):
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
        raise SourceError(f"cannot read input {name}: {reason(exc)}", hint=PIPE_HINT if name ==
                          "standard input" else None) from exc
    raise NoVideoFrame(f"no decodable video frame in {name}",
                      hint="the file may be truncated or damaged")


def _dropped_streams(container: Any, video: Any) -> tuple[str, ...]:
    """"#2 data (GoPro MET)": the input's streams that no output carries (data tracks, extra
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


def _tag(frame_value: Any, stream_value: Any, unspecified: int) -> int:
    """A colour tag from the first frame, or from the stream (container boxes such as MP4's
    `colr`) when the bitstream leaves it unspecified."""
    v = int(frame_value)
    if v in (unspecified, 0) and stream_value is not None and int(stream_value) not in (unspecified, 0):
        return int(stream_value)
    return v


def _sar(video: Any) -> Fraction:
    for sar in (video.sample_aspect_ratio, video.codec_context.sample_aspect_ratio):
        if sar and sar > 0:
            return Fraction(sar)
    return Fraction(1)


def _video_info(container: Any, video: Any, first: Any) -> VideoInfo:
    cc = video.codec_context
    rate = video.average_rate or video.guessed_rate or None
    duration: float | None = None
    if video.duration and video.time_base:
        duration = float(video.duration * video.time_base)
    elif container.duration:
        duration = container.duration / av.time_base
    frames = int(video.frames or 0)
    if not frames and duration and rate:
        frames = round(duration * float(rate))
    fmt = first.format
    depth = max((c.bits for c in fmt.components), default=8)
    return VideoInfo(
        width=first.width, height=first.height,
        time_base=video.time_base or Fraction(1, 90000),
        rate=Fraction(rate) if rate else None,
        frames=frames, duration=duration,
        pix_fmt=fmt.name,
        colorspace=_tag(first.colorspace, cc.colorspace, 2),
        color_range=_tag(first.color_range, cc.color_range, 0),
        color_primaries=_tag(first.color_primaries, cc.color_primaries, 2),
        color_trc=_tag(first.color_trc, cc.color_trc, 2),
        rotation=round(first.rotation or 0),
        metadata=dict(video.metadata), codec=cc.name, bit_depth=depth,
        sar=_sar(video), hdr10=hdr10_of(first), dolby_vision=has_dolby_vision(first, video),
    )


def run_source(src: OpenedInput, out: Channel[Item], stop: threading.Event,
               decode_audio: frozenset[int], counters: SourceCounters,
               on_error: OnError = OnError.SKIP, reorder_depth: int = 4, native: bool = False) -> None:
    """Demux and decode everything, putting Frames and passthrough items into `out`.

    Closes `out` on normal end of stream (or when `stop` is set); on an exception the
    pipeline cancels the channels instead. Always closes the input container.

    Args:
        decode_audio: input stream indexes whose packets the sink wants decoded (it must
            re-encode them); other passthrough packets travel compressed.
        on_error: SKIP drops frames that fail to decode (counted, timestamps of the
            others untouched); STOP raises DecodeError at the first one.
        reorder_depth: frames held back to put timestamps in order.
        native: split by the native YUV path (`color.split_planes`) instead of YCrCb.
    """
    counters.decode_errors += len(src.early_errors)
    counters.error_times += [t for t in src.early_errors if t is not None]
    try:
        video = src.info.video
        stamps = TimestampRepair(video.time_base, video.rate, reorder_depth)
        max_frames = src.options.max_frames
        start_pts, end_pts = src.options.start_pts, src.options.end_pts
        index = 0
        tb = video.time_base
        # Passthrough items timed after the latest decoded video frame wait here, so that a
        # cut (max_frames, stop) can drop what lies after the video's end; after a max_frames
        # cut, demuxing goes on (without decoding video) until every passthrough stream has
        # passed the cut, so audio interleaved late (mp4 chunks) is not lost.
        held: collections.deque[Item] = collections.deque()
        video_time = float("-inf")
        max_pts: int | None = None
        cut: list[float] = []  # [end of the video in seconds] once max_frames is reached
        waiting = {s.index for s in src.info.passthrough if s.type == "audio"}

        def release(limit: float) -> None:
            while held:
                t = _start(held[0])
                if t is not None and t > limit:
                    break
                out.put(held.popleft())

        def end_of_video() -> float:
            return float((max_pts + stamps.step) * tb) if max_pts is not None else video_time

        for item in _demux_decode(src, decode_audio, counters, on_error, skip_video=cut):
            if stop.is_set():
                break
            if not isinstance(item, av.VideoFrame):
                if not cut:
                    held.append(item)
                    release(video_time)
                    if len(held) > MAX_HELD:  # audio far past the video: stop holding it back
                        out.put(held.popleft())
                    continue
                t = _start(item)
                if t is None or t < cut[0]:
                    out.put(item)
                else:
                    waiting.discard(item.stream_index)
                    if not waiting:
                        break
                continue
            if max_frames is not None and index >= max_frames:
                cut.append(end_of_video())
                release(cut[0] - 1e-9)
                waiting -= {getattr(i, "stream_index", -1) for i in held}  # already past it
                held.clear()
                if not waiting:
                    break
                continue
            frame = item
            if frame.pts is not None and (start_pts is not None and frame.pts < start_pts):
                continue  # decoded after the seek, before the segment (open-GOP leading frames)
            if frame.pts is not None and end_pts is not None and frame.pts >= end_pts:
                break  # the next segment's first frame: presentation order, nothing earlier follows
            t0 = time.perf_counter()
            if frame.is_corrupt:
                # The decoder concealed damage in this frame. FFmpeg keeps such frames, and
                # so does "skip" (a concealed frame is better than a gap); "stop" refuses it.
                when = float(frame.pts * tb) if frame.pts is not None else None
                if on_error is OnError.STOP:
                    at = f" at {when:.3f}s" if when is not None else ""
                    raise DecodeError(f"damaged frame {index}{at} in {src.info.url!r}: the decoder "
                                      "had to conceal errors", hint="use --on-error skip to "
                                      "keep going past damage")
                counters.corrupt_frames += 1
                if when is not None:
                    counters.corrupt_times.append(when)
            if frame.width != video.width or frame.height != video.height:
                if not counters.resized:
                    log.warning("frame %d is %dx%d, not %dx%d: scaling it (and any later such "
                                "frame) to the first frame's size", index, frame.width,
                                frame.height, video.width, video.height)
                counters.resized += 1
                frame = frame.reformat(width=video.width, height=video.height)
            y, crcb = split_frame(frame, native)
            counters.color_seconds += time.perf_counter() - t0
            for ready in stamps.push(Pending(index, time.monotonic(), y, crcb), frame.pts):
                out.put(ready)
            index += 1
            counters.frames = index
            if frame.pts is not None:
                max_pts = frame.pts if max_pts is None else max(max_pts, frame.pts)
                video_time = max(video_time, float(frame.pts * tb))
                release(video_time)
        release(end_of_video() - 1e-9 if (cut or stop.is_set()) else float("inf"))
        for ready in stamps.flush():
            out.put(ready)
        counters.repaired_pts = stamps.repaired
        out.close()
    finally:
        src.container.close()


def _start(item: Any) -> float | None:
    """Start time (s) of a passthrough item, None when unknown."""
    return seconds_of(item.packet if isinstance(item, AudioPacket) else item.frame)


def _demux_decode(src: OpenedInput, decode_audio: frozenset[int], counters: SourceCounters,
                  on_error: OnError, skip_video: list[float] | None = None) -> Iterator[Any]:
    """Video frames (first one included) and passthrough items, in demux order."""
    yield src.first_frame
    container, video = src.container, src.video
    streams = [video, *src.info.passthrough]

    def passthrough(packet: Any) -> Iterator[Item]:
        return passthrough_items(packet, decode_audio)

    for packet in src.pending:
        yield from passthrough(packet)
    packets = container.demux(streams)
    while True:
        t0 = time.perf_counter()
        try:
            packet = next(packets)
        except StopIteration:
            break
        except av.error.FFmpegError as exc:
            # A demuxer error mid-file (truncation, garbage): what was read stays valid.
            counters.decode_errors += 1
            log.warning("cannot read past this point of the input: %s", reason(exc))
            if on_error is OnError.STOP:
                raise DecodeError(f"cannot read input {src.info.url!r} after frame "
                                  f"{counters.frames}: {reason(exc)}") from exc
            break
        finally:
            counters.decode_seconds += time.perf_counter() - t0
        if packet.stream.index != video.index:
            yield from passthrough(packet)
            continue
        if skip_video:
            continue
        yield from _decode_packet(video, packet, counters, on_error, src.info.url)
    if not skip_video:
        yield from _decode_packet(video, None, counters, on_error, src.info.url)
    yield from flush_audio(src, decode_audio)


def passthrough_items(packet: Any, decode_audio: frozenset[int]) -> Iterator[Item]:
    """An audio/subtitle packet as the sink wants it: decoded (the output re-encodes that
    stream) or as it is (copied); a packet the decoder refuses is skipped."""
    idx = packet.stream.index
    if idx in decode_audio:
        try:
            for af in packet.decode():
                yield AudioFrame(idx, af)
        except av.error.FFmpegError as exc:
            log.debug("audio packet at %s: %s", packet.pts, reason(exc))
    elif packet.size:
        yield AudioPacket(idx, packet)


def flush_audio(src: OpenedInput, decode_audio: frozenset[int]) -> Iterator[Item]:
    """The last frames held in the decoders of the re-encoded audio streams."""
    for idx in decode_audio:
        stream = next(s for s in src.info.passthrough if s.index == idx)
        try:
            for af in stream.decode(None):
                yield AudioFrame(idx, af)
        except av.error.FFmpegError:
            pass


def _decode_packet(video: Any, packet: Any, counters: SourceCounters, on_error: OnError,
                   url: str) -> Iterator[Any]:
    t0 = time.perf_counter()
    try:
        frames = video.decode(packet)
    except av.error.EOFError:
        return  # the demuxer's own end-of-stream packet already flushed the decoder
    except av.error.FFmpegError as exc:
        counters.decode_errors += 1
        when = seconds_of(packet)
        if when is not None:
            counters.error_times.append(when)
        if on_error is OnError.STOP:
            at = f" at {when:.3f}s" if when is not None else ""
            raise DecodeError(f"cannot decode frame {counters.frames}{at} of {url!r}: "
                              f"{reason(exc)}") from exc
        return
    finally:
        counters.decode_seconds += time.perf_counter() - t0
    yield from frames


#: Passthrough items (audio packets or decoded audio frames) held back at most, waiting for
#: the video to catch up; beyond it they are sent on (only trimming at a cut gets less exact).
MAX_HELD = 2048
