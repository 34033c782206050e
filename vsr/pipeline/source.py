"""The file source (thread "vsr-source"): decode an opened input into Frames.

`run_source()` owns the container `input.open_input()` opened: it demuxes, decodes (through
`decode.Decoder`), converts each frame to Y + CrCb (or native YUV planes), repairs timestamps,
and puts Frames and passthrough items (audio, subtitles) into the channel in demux order,
trimming what lies after a cut (`--frames`, a segment's end, a graceful stop).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Any

import av

from ..channel import Channel
from ..errors import DecodeError, reason
from ..frames import AudioFrame, AudioPacket, Item, seconds_of
from ..media.captions import a53_of
from ..media.color import split_frame
from ..media.decode import Decoder, DecodeSpec, SourceCounters
from ..media.discontinuity import Timeline, discontinuous
from ..media.fingerprint import frame_fingerprint
from ..media.input import OpenedInput
from ..media.resolution import SizeWatch
from ..media.timestamps import Pending, TimestampRepair
from ..options import OnError

log = logging.getLogger(__name__)

#: Passthrough items (audio packets or decoded audio frames) held back at most, waiting for
#: the video to catch up; beyond it they are sent on (only trimming at a cut gets less exact).
MAX_HELD = 2048


def run_source(
    src: OpenedInput, out: Channel[Item], stop: threading.Event, spec: DecodeSpec, *, counters: SourceCounters
) -> None:
    """Demux and decode everything, putting Frames and passthrough items into `out`.

    Closes `out` on normal end of stream (or when `stop` is set); on an exception the
    pipeline cancels the channels instead. Always closes the input container.

    Args:
        src: the opened input; this thread owns its container from now on.
        out: where Frames and passthrough items go.
        stop: set for a graceful stop: the input ends here.
        spec: streams to decode, the damage policy, the colour path, the reorder depth.
        counters: what was decoded, skipped and repaired.
    """
    counters.decode_errors += len(src.early_errors)
    counters.error_times += [t for t in src.early_errors if t is not None]
    try:
        video = src.info.video
        tb = video.time_base
        stamps = TimestampRepair(tb, video.rate, spec.reorder_depth)
        max_frames = src.options.max_frames
        span = src.span
        start_pts, end_pts = span.start_pts, span.end_pts
        shift_pts = round(span.shift / tb)  # whole ticks: the trim starts on one
        index = 0
        # Passthrough items timed after the latest decoded video frame wait here, so that a
        # cut (max_frames, end_pts, stop) can drop what lies after the video's end; after a max_frames
        # cut, demuxing goes on (without decoding video) until every passthrough stream has
        # passed the cut, so audio interleaved late (mp4 chunks) is not lost.
        held: collections.deque[Item] = collections.deque()
        video_time = float("-inf")
        max_pts: int | None = None
        cut: float | None = None  # the end of the video in seconds, once a cut is reached
        waiting = {s.index for s in src.info.passthrough if s.type == "audio"}
        sizes = SizeWatch(video.width, video.height, video.sar, src.options.max_pixels, src.video)

        def send(item: Item) -> None:
            out.put(_shifted(item, span.shift) if span.shift else item)

        def release(limit: float) -> None:
            while held:
                t = _start(held[0])
                if t is not None and t > limit:
                    break
                send(held.popleft())

        def end_of_video() -> float:
            return float((max_pts + stamps.step) * tb) if max_pts is not None else video_time

        def wants_video() -> bool:
            return cut is None

        for item in _demux_decode(src, Decoder(src, spec, counters), wants_video):
            if stop.is_set():
                break
            if not isinstance(item, av.VideoFrame):
                if span.before(_start(item)):
                    continue  # a trim's audio before its first frame
                if cut is None:
                    held.append(item)
                    release(video_time)
                    if len(held) > MAX_HELD:  # audio far past the video: stop holding it back
                        send(held.popleft())
                    continue
                t = _start(item)
                if t is None or t < cut:
                    send(item)
                else:
                    waiting.discard(item.stream_index)
                    if not waiting:
                        break
                continue
            if (max_frames is not None and index >= max_frames) or (
                end_pts is not None and item.pts is not None and item.pts >= end_pts
            ):
                # The end of the video (frames come in presentation order, so nothing
                # earlier follows the first one past a range's end).
                cut = end_of_video()
                release(cut - 1e-9)
                waiting -= {getattr(i, "stream_index", -1) for i in held}  # already past it
                held.clear()
                if not waiting:
                    break
                continue
            frame = item
            if frame.pts is not None and (start_pts is not None and frame.pts < start_pts):
                continue  # decoded after the seek, before the segment (open-GOP leading frames)
            y, crcb, sar = _picture(src, frame, index, spec, counters, sizes)
            pts = frame.pts - shift_pts if frame.pts is not None else None
            for ready in stamps.push(Pending(index, time.monotonic(), y, crcb, a53_of(frame), sar), pts):
                out.put(ready)
            index += 1
            counters.frames = index
            if frame.pts is not None:
                max_pts = frame.pts if max_pts is None else max(max_pts, frame.pts)
                video_time = max(video_time, float(frame.pts * tb))
                release(video_time)
        release(end_of_video() - 1e-9 if (cut is not None or stop.is_set()) else float("inf"))
        for ready in stamps.flush():
            out.put(ready)
        counters.repaired_pts = stamps.repaired
        out.close()
    finally:
        src.container.close()


def _picture(
    src: OpenedInput, frame: Any, index: int, spec: DecodeSpec, counters: SourceCounters, sizes: SizeWatch
) -> tuple[Any, Any, Any]:
    """Luma and chroma of decoded frame `index`, as the model and the compose stage take them:
    its damage counted (or refused with `OnError.STOP`), its size change noted (`SizeWatch`),
    fingerprinted when the run records fingerprints (a scale-out segment:
    `vsr.media.fingerprint`). Returns the planes and the frame's sample aspect ratio.

    Raises:
        DecodeError: the decoder concealed damage in it and `spec.on_error` is STOP.
    """
    video = src.info.video
    t0 = time.perf_counter()
    if frame.is_corrupt:
        # The decoder concealed damage in this frame. FFmpeg keeps such frames, and so does
        # "skip" (a concealed frame is better than a gap); "stop" refuses it.
        when = float(frame.pts * video.time_base) if frame.pts is not None else None
        if spec.on_error is OnError.STOP:
            at = f" at {when:.3f}s" if when is not None else ""
            raise DecodeError(
                f"damaged frame {index}{at} in {src.info.url!r}: the decoder had to conceal errors",
                hint="use --on-error skip to keep going past damage",
            )
        counters.corrupt_frames += 1
        if when is not None:
            counters.corrupt_times.append(when)
    frame, sar = sizes.check(frame, float(frame.pts * video.time_base) if frame.pts is not None else None)
    counters.size_changes = sizes.changes
    if src.options.fingerprints:
        # Before the colour split: what the rest of the run is made from.
        counters.fingerprints += frame_fingerprint(frame)
    y, crcb = split_frame(frame, spec.native)
    counters.color_seconds += time.perf_counter() - t0
    return y, crcb, sar


def _shifted(item: Item, seconds: Fraction) -> Item:
    """A passthrough item timed `seconds` earlier (a trim's output clock).

    A copied packet moves by whole ticks of its time base; where the shift is not a whole
    number of them (AVI times MP3 in packets of 1152 samples: 26 ms ticks) the packet is first
    re-timed in samples, so the audio stays in sync to the sample, not to the tick."""
    if isinstance(item, AudioPacket):
        pk = item.packet
        if pk.pts is None or not pk.time_base:
            return item
        rate = getattr(pk.stream.codec_context, "sample_rate", 0) or 0
        if (seconds / pk.time_base).denominator != 1 and rate:
            fine = Fraction(1, rate)
            scale = Fraction(pk.time_base) / fine
            pk.pts = round(pk.pts * scale)
            if pk.dts is not None:
                pk.dts = round(pk.dts * scale)
            if pk.duration:
                pk.duration = round(pk.duration * scale)
            pk.time_base = fine
        ticks = round(seconds / pk.time_base)
        pk.pts -= ticks
        if pk.dts is not None:
            pk.dts -= ticks
    elif isinstance(item, AudioFrame):  # timed in samples by decode.AudioTimeline
        item.frame.pts -= round(seconds * item.frame.sample_rate)
    return item


def _start(item: Any) -> float | None:
    """Start time (s) of a passthrough item, None when unknown."""
    return seconds_of(item.packet if isinstance(item, AudioPacket) else item.frame)


def _demux_decode(src: OpenedInput, decoder: Decoder, wants_video: Callable[[], bool]) -> Iterator[Any]:
    """Video frames (the first one included) and passthrough items, in demux order.

    Once `wants_video()` turns False (a --frames cut), video packets are passed over and the
    video decoder is not flushed: demuxing goes on for the passthrough streams only.
    """
    yield src.first_frame
    video = src.video
    counters = decoder.counters
    yield from decoder.early()
    packets: Iterator[Any] = src.container.demux([video, *src.info.passthrough])
    opts = src.options
    segment = opts.video_only or opts.start_pts is not None or opts.end_pts is not None
    if discontinuous(src.container) and not segment:
        # MPEG-TS and its kin may restart their clock (joined recordings): mended before
        # decoding, so that the video and what goes with it move together. Not in a scale-out
        # segment (video only, cut by the input's own ticks), whose frames the job checks
        # against a straight decode and joins with the input's audio by the input's times.
        packets = Timeline(video.index, rate=src.info.video.rate, found=counters.discontinuities).packets(
            packets
        )
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
            if decoder.on_error is OnError.STOP:
                raise DecodeError(
                    f"cannot read input {src.info.url!r} after frame {counters.frames}: {reason(exc)}"
                ) from exc
            break
        finally:
            counters.decode_seconds += time.perf_counter() - t0
        if packet.stream.index != video.index:
            yield from decoder.passthrough(packet)
            continue
        if not wants_video():
            continue
        yield from decoder.video(packet)
    if wants_video():
        yield from decoder.video(None)
    yield from decoder.flush_audio()
