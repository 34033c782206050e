"""The sink (thread "vsr-sink"): encode the composed pictures and mux them with the input's
passthrough streams.

`run_sink()` owns the container `output_container.open_output()` opened; it leaves it open
when the channel ends: the pipeline then calls `output_container.finish()` (success) or
`output_container.discard()`.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import av

from ..channel import Channel
from ..errors import EncodeError, reason
from ..frames import AudioFrame, AudioPacket, Item, Picture, VideoPacket, seconds_of
from ..media.network_output import OutputLost
from ..media.output_container import OpenedOutput, write_error

#: AVPictureType's I: a frame given it is encoded as a keyframe.
KEYFRAME = 1

log = logging.getLogger(__name__)


@dataclass
class SinkCounters:
    """Written by the sink thread, read by the pipeline after it ends."""

    frames: int = 0
    encode_seconds: float = 0.0
    color_seconds: float = 0.0
    audio_packets: int = 0
    dropped_packets: int = 0  # damaged passthrough packets the muxer refused
    # Output seconds where the video encoded so far ends: the latest frame's time plus one
    # frame's duration, the smallest step between frames seen so far (not the last step: live
    # mode drops frames, and a gap is not a frame's duration). Live mode cuts the chapters there.
    video_end: float | None = None
    _last_time: float | None = None
    _step: float | None = None
    # Seconds from decode to encode of the most recent frames (live latency statistics).
    latencies: collections.deque[float] = field(default_factory=lambda: collections.deque(maxlen=100_000))


def run_sink(out: OpenedOutput | None, items: Channel[Item] | Iterable[Item], counters: SinkCounters) -> None:
    """Encode and mux every item until the channel is closed, then flush the encoders.

    With `out` None (live preview only) there is nothing to write. Leaves the container
    open: `output_container.finish()` (success) or `output_container.discard()` (failure)
    closes it.
    """
    for item in items:
        if isinstance(item, Picture):
            if out is None:
                continue
            t1 = time.perf_counter()
            if out.link is not None and out.link.wants_keyframe():
                item.frame.pict_type = KEYFRAME  # a reconnected receiver starts on it
            _mux(out.container, out.video.encode(item.frame), out)
            counters.encode_seconds += time.perf_counter() - t1
            counters.frames += 1
            counters.latencies.append(time.monotonic() - item.captured)
            _note_end(counters, seconds_of(item.frame))
            if out.is_image:
                break
        elif out is None:
            continue
        elif isinstance(item, VideoPacket):
            t1 = time.perf_counter()
            item.packet.stream = out.video
            _mux(out.container, item.packet, out)
            counters.encode_seconds += time.perf_counter() - t1
            counters.frames += 1
        elif isinstance(item, AudioPacket):
            target = out.stream_map.get(item.stream_index)
            if target is None:
                continue
            pk = item.packet
            if _pre_roll(pk, out):
                continue
            item.packet.stream = target
            try:
                for kept in out.link.relay([pk]) if out.link is not None else [pk]:
                    out.container.mux_one(kept)
                counters.audio_packets += 1
            except OutputLost:
                raise
            except (av.error.InvalidDataError, av.error.ArgumentError) as exc:
                # A damaged copied packet (broken ADTS header, timestamps out of order) is
                # refused by the muxer; losing it beats losing the whole video.
                if not counters.dropped_packets:
                    log.warning(
                        "dropping damaged %s packet(s) the output cannot take (first at %s): %s",
                        target.type,
                        _time_of(pk),
                        reason(exc),
                    )
                counters.dropped_packets += 1
            except (av.error.FFmpegError, OSError) as exc:
                raise _write_error(out, exc) from exc
        elif isinstance(item, AudioFrame):
            target = out.stream_map.get(item.stream_index)
            if target is not None:
                _mux(out.container, _audible(target.encode(item.frame), out), out)
    if out is None:
        return
    container = out.container
    t0 = time.perf_counter()
    if not out.copy_video:
        _mux(container, out.video.encode(None), out)
    for idx, target in out.stream_map.items():
        if idx in out.decode_audio:
            _mux(container, _audible(target.encode(None), out), out)
    counters.encode_seconds += time.perf_counter() - t0


def _note_end(counters: SinkCounters, t: float | None) -> None:
    if t is None:
        return
    last = counters._last_time
    if last is not None and t > last:
        counters._step = t - last if counters._step is None else min(counters._step, t - last)
    counters.video_end = t + (counters._step or 0.0)
    counters._last_time = t


def _pre_roll(packet: Any, out: OpenedOutput) -> bool:
    """A packet that ends at or before time 0 (AAC priming, copied or from the encoder, which
    times its first packet before the first sample) in an output whose muxer cannot store
    negative times: it would shift every timestamp in the file, the video's too."""
    return not out.negative_ts and packet.pts is not None and packet.pts + (packet.duration or 0) <= 0


def _audible(packets: list[Any], out: OpenedOutput) -> list[Any]:
    """An audio encoder's packets without pre-roll (`_pre_roll`)."""
    return [p for p in packets if not _pre_roll(p, out)]


def _mux(container: Any, packets: Any, out: OpenedOutput) -> None:
    try:
        if out.link is not None:  # a network output: it may go away (and come back)
            packets = out.link.relay(packets if isinstance(packets, list) else [packets])
        container.mux(packets)
    except OutputLost:
        raise
    except (av.error.FFmpegError, OSError) as exc:
        raise _write_error(out, exc) from exc


def _write_error(out: OpenedOutput, exc: BaseException) -> EncodeError:
    return write_error(out.final_path or out.url, exc)


def _time_of(packet: Any) -> str:
    t = seconds_of(packet)
    return "an unknown time" if t is None else f"{t:.3f}s"
