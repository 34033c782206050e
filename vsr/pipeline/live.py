"""Live input (thread "vsr-source" in live mode): real-time decoding that never falls behind.

Differences from the file source (`source.run_source`), all driven by `options.tuning_for`:
frames go into a DROP_OLDEST channel (the newest frame wins when the model cannot keep up);
timestamps are re-based so the output starts at 0 and follows the source clock, with a
wall-clock re-anchor after a reconnect (an outage shows as a gap, not as a jump back); a
network input that stalls or drops is reopened with back-off for `LiveOptions.reconnect`
seconds; `LiveOptions.duration` and `Pipeline.stop()` end the stream gracefully.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av

from ..channel import Channel
from ..errors import DecodeError, reason
from ..frames import AudioPacket, Chapter, Frame, Item, seconds_of
from ..media import read_deadline
from ..media.captions import a53_of
from ..media.color import split_frame
from ..media.decode import AudioTimeline, Decoder, DecodeSpec, SourceCounters
from ..media.discontinuity import Timeline
from ..media.input import OpenedInput, open_input
from ..media.resolution import SizeWatch
from ..options import LiveOptions, OnError

log = logging.getLogger(__name__)

NETWORK_SCHEMES = (
    "udp",
    "tcp",
    "rtp",
    "rtsp",
    "rtsps",
    "rtmp",
    "rtmps",
    "srt",
    "http",
    "https",
    "hls",
    "mms",
    "mmsh",
    "rist",
    "zmq",
)
DEVICE_FORMATS = {
    "v4l2",
    "video4linux2",
    "avfoundation",
    "dshow",
    "gdigrab",
    "x11grab",
    "kmsgrab",
    "lavfi",
    "decklink",
    "alsa",
    "pulse",
}


def is_network(url: str) -> bool:
    return url.split(":", 1)[0].lower() in NETWORK_SCHEMES and "://" in url


@dataclass(frozen=True)
class ConnectionChapters:
    """One connection's chapters and where its part of the recording begins: its first
    frame, at `origin` on its own clock (input seconds), lands at `start` (output seconds).
    A reconnected source (a new stream behind the same address) brings its own."""

    chapters: tuple[Chapter, ...]
    origin: float
    start: float


@dataclass
class LiveCounters:
    """Written by the live source thread, read by the pipeline after it ends."""

    reconnects: int = 0
    lost: str = ""  # why the input ended early (empty when it ended normally)
    chapters: list[ConnectionChapters] = field(default_factory=list)  # by connection, in order


@dataclass
class _Ending:
    """How one connection's input ended, in words (never FFmpeg's own error text alone)."""

    why: str = "the input ended"
    last: float = 0.0  # monotonic time the latest packet arrived

    def track(self, packets: Iterator[Any]) -> Iterator[Any]:
        """`packets`, noting when each arrived (before anything holds it back)."""
        for packet in packets:
            self.last = time.monotonic()
            yield packet


class _Rebase:
    """Maps input times (seconds) to output times: start at 0, follow the source clock,
    re-anchor to the wall clock after a reconnect, never go backwards. (Jumps of the source
    clock itself are mended before, on the packets: `discontinuity.Timeline`.)"""

    def __init__(self, t0: float, step: float = 0.04) -> None:
        self.t0 = t0
        self.step = step  # one frame: where a frame without a time goes
        self.anchor_in: float | None = None
        self.anchor_out = 0.0
        self.last_out = -1.0

    def reanchor(self) -> None:
        self.anchor_in = None
        self.anchor_out = max(self.last_out, time.monotonic() - self.t0)

    def video(self, t_in: float | None) -> float:
        now = time.monotonic() - self.t0
        if self.anchor_in is None:
            self.anchor_in = t_in if t_in is not None else now
        if t_in is None:  # one frame after the last: the wall clock may be behind the stream's
            t = self.last_out + self.step if self.last_out >= 0 else now
        else:
            t = t_in - self.anchor_in + self.anchor_out
        if t <= self.last_out:
            t = self.last_out + 0.001
        self.last_out = t
        return t

    def other(self, t_in: float) -> float | None:
        """Audio/subtitle time, or None before the first video frame (dropped)."""
        if self.anchor_in is None:
            return None
        t = t_in - self.anchor_in + self.anchor_out
        return t if t >= 0 else None


def run_live_source(
    src: OpenedInput,
    out: Channel[Item],
    stop: threading.Event,
    spec: DecodeSpec,
    live: LiveOptions,
    *,
    counters: SourceCounters,
    live_counters: LiveCounters,
) -> None:
    """Decode in real time into `out` until the input ends, `stop` is set or the duration
    passes; reconnect network inputs that drop. Always closes `out` normally (the recording
    is finalised) unless an exception escapes, and always closes the input.

    `live.duration` is wall-clock time from the start, waits for a silent or reconnecting
    input included: reconnecting stops at it, and a read still waiting for a silent input
    then is cut (`media.read_deadline`), so the input side ends within about 0.1 s of it.

    Args:
        src: the opened input; this thread owns its container (and its reconnections).
        out: the DROP_OLDEST channel Frames and passthrough items go into.
        stop: set for a graceful stop: the recording ends here.
        spec: streams to decode, the damage policy, the colour path.
        live: duration and reconnection settings.
        counters: what was decoded, skipped, mended (timestamp jumps, size changes).
        live_counters: reconnections, and why the input was lost.
    """
    t0 = time.monotonic()
    end = t0 + live.duration if live.duration is not None else None
    video = src.info.video
    rate = video.rate
    rebase = _Rebase(t0, float(1 / rate) if rate else 0.04)
    out_tb = Fraction(1, 90000)
    sizes = SizeWatch(video.width, video.height, video.sar, src.options.max_pixels, src.video)
    index = 0
    # Re-encoded audio is timed by the same re-basing, across reconnections (the input
    # channel's trim compares its times with the video's).
    audio = AudioTimeline(rebase.other)
    current = src
    # No read outlasts the run: one waiting on a silent input is cut at `end`.
    with read_deadline.until(end):
        try:
            while True:
                tb = current.info.video.time_base
                ending = _Ending()
                first_of_connection = True
                for item in _items(Decoder(current, spec, counters, audio=audio), counters, ending):
                    if stop.is_set() or (end is not None and time.monotonic() >= end):
                        out.close()
                        return
                    if isinstance(item, av.VideoFrame):
                        t_in = float(item.pts * tb) if item.pts is not None else None
                        _check_damage(item, t_in, index, spec, counters, current)
                        frame, sar = sizes.check(item, t_in, current.video)
                        counters.size_changes = sizes.changes
                        t_out = rebase.video(t_in)
                        if first_of_connection:
                            first_of_connection = False
                            if current.info.chapters and t_in is not None:
                                live_counters.chapters.append(
                                    ConnectionChapters(current.info.chapters, t_in, t_out)
                                )
                        y, crcb = split_frame(frame, spec.native)
                        out.put(
                            Frame(
                                index,
                                round(t_out / out_tb),
                                out_tb,
                                time.monotonic(),
                                y,
                                crcb,
                                captions=a53_of(frame),
                                sar=sar,
                            )
                        )
                        index += 1
                        counters.frames = index
                    elif isinstance(item, AudioPacket):
                        pk = item.packet
                        t_pk = seconds_of(pk)
                        t = rebase.other(t_pk) if t_pk is not None else None
                        if t is None:
                            continue
                        shift = round(t / pk.time_base) - pk.pts
                        pk.pts += shift
                        if pk.dts is not None:
                            pk.dts += shift
                        out.put(item)
                    else:
                        out.put(item)
                # The input ended (or failed): files end here, network inputs get reconnected.
                if stop.is_set() or (end is not None and time.monotonic() >= end):
                    break
                if not is_network(src.info.url) or live.reconnect <= 0:
                    log.info("%s: the run ends", ending.why)
                    break
                # Close first: a UDP or listening input keeps its port until closed, and the new
                # connection needs it.
                current.container.close()
                reopened = _reconnect(src, live, stop, live_counters, ending.why, end)
                if reopened is None:
                    break
                current = reopened
                rebase.reanchor()
            out.close()
        finally:
            current.container.close()  # closing twice is harmless


def _check_damage(
    frame: Any, when: float | None, index: int, spec: DecodeSpec, counters: SourceCounters, src: OpenedInput
) -> None:
    """Count a frame the decoder concealed damage in (kept, as in file mode), or refuse it
    with `--on-error stop`."""
    if not frame.is_corrupt:
        return
    if spec.on_error is OnError.STOP:
        at = f" at {when:.3f}s" if when is not None else ""
        raise DecodeError(
            f"damaged frame {index}{at} in {src.info.url!r}: the decoder had to conceal errors",
            hint="use --on-error skip to keep going past damage",
        )
    counters.corrupt_frames += 1
    if when is not None:
        counters.corrupt_times.append(when)


def _items(decoder: Decoder, counters: SourceCounters, ending: _Ending) -> Iterator[Any]:
    """Video frames and passthrough items of one connection, until it ends or fails; how it
    ended goes into `ending`, in words.

    The first video frame comes first: it anchors the output's clock, by which the audio
    before it is left out (`_Rebase.other`). Packets go through a `discontinuity.Timeline`
    first: a source restarted behind the same address (a UDP sender, an encoder) starts its
    clock again, and its new part must follow the old one in time, after the real gap.
    """
    src = decoder.src
    yield src.first_frame
    yield from decoder.early()
    video = src.video
    ending.last = time.monotonic()
    timeline = Timeline(video.index, rate=src.info.video.rate, live=True, found=counters.discontinuities)
    try:
        for packet in timeline.packets(ending.track(src.container.demux([video, *src.info.passthrough]))):
            if packet.stream.index == video.index:
                yield from decoder.video(packet)
            else:
                yield from decoder.passthrough(packet)
    except av.error.ExitError:
        # PyAV's read timeout (`SourceOptions.timeout`) interrupted a read: nothing came.
        # (The demuxer hands out what it held when the read fails: the last packet's arrival
        # says nothing; the read waited its whole timeout.)
        silent = max(src.options.timeout, time.monotonic() - ending.last)
        ending.why = f"input {src.info.url!r} stopped sending for {silent:.1f} s"
    except (av.error.FFmpegError, OSError) as exc:
        ending.why = f"input {src.info.url!r} failed ({reason(exc)})"
    else:
        ending.why = f"input {src.info.url!r} ended"


def _reconnect(
    src: OpenedInput,
    live: LiveOptions,
    stop: threading.Event,
    live_counters: LiveCounters,
    why: str,
    end: float | None,
) -> OpenedInput | None:
    """Reopen a dropped network input with back-off; None when `live.reconnect` runs out
    (then `live_counters.lost` says so) or the run's duration is reached first."""
    started = time.monotonic()
    deadline = started + live.reconnect
    if end is not None:
        deadline = min(deadline, end)
    log.warning("%s; reconnecting (for up to %.0f s)", why, max(0.0, deadline - started))
    delay = 0.25
    attempt = 0
    while time.monotonic() < deadline and not stop.is_set():
        attempt += 1
        left = max(0.5, deadline - time.monotonic())
        # A read of the new connection may wait no longer than the run has left either.
        timeout = (
            src.options.timeout if end is None else max(0.5, min(src.options.timeout, end - time.monotonic()))
        )
        try:
            reopened = open_input(dataclasses.replace(src.options, open_timeout=left, timeout=timeout))
        except Exception as exc:  # noqa: BLE001 - any failure to reopen is retried until the deadline
            log.debug("reconnect attempt %d failed: %s", attempt, exc)
            stop.wait(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 4.0)
            continue
        live_counters.reconnects += 1
        log.warning(
            "input %r is back after %.1f s (a new connection: its clock starts again)",
            src.info.url,
            time.monotonic() - started,
        )
        return reopened
    if stop.is_set() or (end is not None and time.monotonic() >= end - 0.05):
        log.warning("the run's --duration ended while reconnecting")
        return None
    live_counters.lost = f"{why} and did not come back within {live.reconnect:g} s"
    return None
