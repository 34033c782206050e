"""Decoding an opened input's packets, in whichever thread owns it: the file source
(`source.run_source`), the live source (`live.run_live_source`) or the scale-out join.

`Decoder` is the one place that decodes a video packet under the `OnError` policy, hands a
passthrough (audio, subtitle) packet on, copied or decoded for an output that re-encodes its
stream, hands on the packets demuxed before the first video frame, and flushes the audio
decoders at the end. The demux loops stay with their callers: each ends and reports a lost
input its own way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import av

from .errors import DecodeError, reason
from .frames import AudioFrame, AudioPacket, Item, seconds_of
from .input import OpenedInput
from .options import OnError

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
    resized: int = 0
    decode_seconds: float = 0.0
    color_seconds: float = 0.0


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


class Decoder:
    """Turns one opened input's packets into video frames and passthrough items.

    Args:
        src: the input; its container belongs to the calling thread.
        spec: which streams to decode and what a decode error does.
        counters: where decode errors and decode time are counted (None: not kept).
    """

    def __init__(self, src: OpenedInput, spec: DecodeSpec,
                 counters: SourceCounters | None = None) -> None:
        self.src = src
        self.decode_audio = spec.decode_audio
        self.on_error = spec.on_error
        self.counters = counters if counters is not None else SourceCounters()

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
                raise DecodeError(f"cannot decode frame {counters.frames}{at} of "
                                  f"{self.src.info.url!r}: {reason(exc)}") from exc
            return
        finally:
            counters.decode_seconds += time.perf_counter() - t0
        yield from frames

    def passthrough(self, packet: Any) -> Iterator[Item]:
        """An audio/subtitle packet as the output wants it: decoded (the output re-encodes
        that stream) or as it is (copied); a packet the decoder refuses is skipped."""
        idx = packet.stream.index
        if idx in self.decode_audio:
            try:
                for af in packet.decode():
                    yield AudioFrame(idx, af)
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
                    yield AudioFrame(idx, af)
            except av.error.FFmpegError:
                pass
