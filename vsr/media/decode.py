"""Decoding an opened input's packets, in whichever thread owns it: the file source
(`source.run_source`), the live source (`live.run_live_source`) or the scale-out join.

`Decoder` is the one place that decodes a video packet under the `OnError` policy, hands a
passthrough (audio, subtitle) packet on, copied or decoded for an output that re-encodes its
stream, hands on the packets demuxed before the first video frame, and flushes the audio
decoders at the end. Decoded audio is timed for the encoder by `AudioTimeline`, on the same
clock as the video. The demux loops stay with their callers: each ends and reports a lost
input its own way.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av

from ..errors import DecodeError, reason
from ..frames import AudioFrame, AudioPacket, Item, seconds_of
from ..options import OnError
from .discontinuity import Discontinuity
from .input import OpenedInput

log = logging.getLogger(__name__)


@dataclass
class SourceCounters:
    """Written by the source thread, read by the pipeline after it ends."""

    frames: int = 0
    decode_errors: int = 0  # packets the decoder or demuxer rejected (their frames are lost)
    error_times: list[float] = field(default_factory=list)
    corrupt_frames: int = 0  # frames the decoder delivered with concealed damage (kept)
    corrupt_times: list[float] = field(default_factory=list)
    repaired_pts: int = 0
    discontinuities: list[Discontinuity] = field(default_factory=list)  # jumps of the clock mended
    size_changes: int = 0  # frames whose size (or pixel aspect) differs from the one before
    decode_seconds: float = 0.0
    color_seconds: float = 0.0
    # With SourceOptions.fingerprints: one media.fingerprint.SIZE-byte fingerprint per frame
    # kept, in the order the frames go out (the order of their repaired timestamps).
    fingerprints: bytearray = field(default_factory=bytearray)


@dataclass(frozen=True)
class DecodeSpec:
    """What the source stage makes of the input, decided once by the pipeline.

    Attributes:
        decode_audio: input streams whose packets are decoded, because the output re-encodes
            them (`OpenedOutput.decode_audio`); other passthrough packets travel compressed.
        on_error: SKIP drops frames that fail to decode (counted, the timestamps of the
            others untouched); STOP raises DecodeError at the first one.
        native: split frames by the native YUV path (`color.split_planes`), not YCrCb.
        reorder_depth: file mode: frames held back to put timestamps in order.
    """

    decode_audio: frozenset[int] = frozenset()
    on_error: OnError = OnError.SKIP
    native: bool = False
    reorder_depth: int = 4


class AudioTimeline:
    """Times decoded audio frames (streams the output re-encodes) on the video's clock, in
    samples, for the encoder, which keeps these times.

    The encoder must not be left to time audio by its sample count from 0: the video keeps
    the input's times (file mode, the scale-out join) or is re-based (live), and an input
    whose streams start at 1.4 s (MPEG-TS) would come out with its audio 1.4 s early. Encoders
    with a fixed frame size (AAC: 1024 samples) re-chunk what they get and take each chunk's
    time from the frame it starts in, so the times must increase: a frame never starts before
    its stream's previous one ended (a damaged input's overlap, live's re-anchor after a
    reconnect), and a difference the input's timestamps are too coarse to express (rounding
    to their tick: 1 ms in Matroska) is closed; a real gap (lost packets) is kept, so what
    follows it stays in sync.

    Args:
        to_output: input time -> output time, in seconds; None leaves the frame out (live:
            before the first video frame). None (the default): the input's own times, as the
            file source keeps them for the video and for copied audio.
    """

    def __init__(self, to_output: Callable[[float], float | None] | None = None) -> None:
        self.to_output = to_output
        self.ends: dict[int, int] = {}  # stream -> where its last frame ended, in samples

    def place(self, stream_index: int, af: Any) -> AudioFrame | None:
        """The decoded frame `af` of input stream `stream_index`, its pts and time_base set
        on the output's clock (1/sample rate); None when `to_output` leaves it out. A frame
        without a time follows its stream's previous one (the first at 0)."""
        rate = af.sample_rate
        end = self.ends.get(stream_index)
        t_in = seconds_of(af)
        if t_in is None:
            start = end if end is not None else 0
        else:
            t = self.to_output(t_in) if self.to_output is not None else t_in
            if t is None:
                return None
            start = round(t * rate)
            # Overlapping its stream's previous frame, or apart from it by no more than the
            # input's rounding (one tick, in samples): it follows on.
            if end is not None and start - end <= math.ceil(rate * af.time_base):
                start = end
        af.pts, af.time_base = start, Fraction(1, rate)
        self.ends[stream_index] = start + af.samples
        return AudioFrame(stream_index, af)


class Decoder:
    """Turns one opened input's packets into video frames and passthrough items.

    Args:
        src: the input; its container belongs to the calling thread.
        spec: which streams to decode and what a decode error does.
        counters: where decode errors and decode time are counted (None: not kept).
        audio: times the decoded audio; one for the whole run, where a run reads several
            inputs (live reconnects). None: a new one on the input's own times.
    """

    def __init__(
        self,
        src: OpenedInput,
        spec: DecodeSpec,
        counters: SourceCounters | None = None,
        *,
        audio: AudioTimeline | None = None,
    ) -> None:
        self.src = src
        self.decode_audio = spec.decode_audio
        self.on_error = spec.on_error
        self.counters = counters if counters is not None else SourceCounters()
        self.audio = audio if audio is not None else AudioTimeline()

    def early(self) -> Iterator[Item]:
        """The passthrough packets demuxed before the first video frame, as `passthrough()`
        hands them on."""
        for packet in self.src.pending:
            yield from self.passthrough(packet)

    def video(self, packet: Any) -> Iterator[Any]:
        """The av.VideoFrames of one video packet (None: flush the decoder).

        A packet the decoder refuses is counted (with its time) and skipped, or, with
        `OnError.STOP`, raises DecodeError.
        """
        counters = self.counters
        t0 = time.perf_counter()
        try:
            frames = self.src.video.decode(packet)
        except av.error.EOFError:
            return  # the demuxer's own end-of-stream packet already flushed the decoder
        except av.error.FFmpegError as exc:
            counters.decode_errors += 1
            when = seconds_of(packet)
            if when is not None:
                counters.error_times.append(when)
            if self.on_error is OnError.STOP:
                at = f" at {when:.3f}s" if when is not None else ""
                raise DecodeError(
                    f"cannot decode frame {counters.frames}{at} in {self.src.info.url!r}: {reason(exc)}",
                    hint="use --on-error skip to keep going past damage",
                ) from exc
            return
        finally:
            counters.decode_seconds += time.perf_counter() - t0
        yield from frames

    def passthrough(self, packet: Any) -> Iterator[Item]:
        """An audio/subtitle packet as the output wants it: decoded (the output re-encodes
        that stream; timed by `self.audio`) or as it is (copied); a packet the decoder
        refuses is skipped."""
        idx = packet.stream.index
        if idx in self.decode_audio:
            try:
                for af in packet.decode():
                    yield from self._timed(idx, af)
            except av.error.FFmpegError as exc:
                log.debug("audio packet at %s: %s", packet.pts, reason(exc))
        elif packet.size:
            yield AudioPacket(idx, packet)

    def flush_audio(self) -> Iterator[Item]:
        """The last frames held in the decoders of the re-encoded audio streams."""
        for idx in self.decode_audio:
            stream = next(s for s in self.src.info.passthrough if s.index == idx)
            try:
                for af in stream.decode(None):
                    yield from self._timed(idx, af)
            except av.error.FFmpegError:
                pass

    def _timed(self, idx: int, af: Any) -> Iterator[AudioFrame]:
        item = self.audio.place(idx, af)
        if item is not None:
            yield item
