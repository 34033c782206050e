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
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av

from ..channel import Channel
from ..errors import reason
from ..frames import AudioPacket, Frame, Item, seconds_of
from ..media.captions import a53_of
from ..media.color import split_frame
from ..media.decode import AudioTimeline, Decoder, DecodeSpec, SourceCounters
from ..media.input import OpenedInput, open_input
from ..options import LiveOptions

log = logging.getLogger(__name__)

NETWORK_SCHEMES = ("udp", "tcp", "rtp", "rtsp", "rtsps", "rtmp", "rtmps", "srt", "http", "https",
                   "hls", "mms", "mmsh", "rist", "zmq")
DEVICE_FORMATS = {"v4l2", "video4linux2", "avfoundation", "dshow", "gdigrab", "x11grab",
                  "kmsgrab", "lavfi", "decklink", "alsa", "pulse"}


def is_network(url: str) -> bool:
    return url.split(":", 1)[0].lower() in NETWORK_SCHEMES and "://" in url


@dataclass
class LiveCounters:
    """Written by the live source thread, read by the pipeline after it ends."""

    reconnects: int = 0
    lost: str = ""  # why the input ended early (empty when it ended normally)


class _Rebase:
    """Maps input times (seconds) to output times: start at 0, follow the source clock,
    re-anchor to the wall clock after a reconnect, never go backwards."""

    def __init__(self, t0: float) -> None:
        self.t0 = t0
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
        t = (t_in - self.anchor_in + self.anchor_out) if t_in is not None else now
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


def run_live_source(src: OpenedInput, out: Channel[Item], stop: threading.Event, spec: DecodeSpec,
                    live: LiveOptions, *, counters: SourceCounters,
                    live_counters: LiveCounters) -> None:
    """Decode in real time into `out` until the input ends, `stop` is set or the duration
    passes; reconnect network inputs that drop. Always closes `out` normally (the recording
    is finalised) unless an exception escapes, and always closes the input.

    Args:
        src: the opened input; this thread owns its container (and its reconnections).
        out: the DROP_OLDEST channel Frames and passthrough items go into.
        stop: set for a graceful stop: the recording ends here.
        spec: streams to decode, the damage policy, the colour path.
        live: duration and reconnection settings.
        counters: what was decoded and skipped.
        live_counters: reconnections, and why the input was lost.
    """
    t0 = time.monotonic()
    rebase = _Rebase(t0)
    tb = src.info.video.time_base
    out_tb = Fraction(1, 90000)
    width, height = src.info.video.width, src.info.video.height
    index = 0
    # Re-encoded audio is timed by the same re-basing, across reconnections (the input
    # channel's trim compares its times with the video's).
    audio = AudioTimeline(rebase.other)
    current = src
    try:
        while True:
            for item in _items(Decoder(current, spec, counters, audio=audio)):
                if stop.is_set() or (live.duration is not None and time.monotonic() - t0 >= live.duration):
                    out.close()
                    return
                if isinstance(item, av.VideoFrame):
                    frame = item
                    if frame.width != width or frame.height != height:
                        counters.resized += 1
                        frame = frame.reformat(width=width, height=height)
                    t_in = float(frame.pts * tb) if frame.pts is not None else None
                    t_out = rebase.video(t_in)
                    y, crcb = split_frame(frame, spec.native)
                    out.put(Frame(index, round(t_out / out_tb), out_tb, time.monotonic(), y, crcb,
                                  captions=a53_of(frame)))
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
            if not is_network(src.info.url) or live.reconnect <= 0 or stop.is_set():
                break
            # Close first: a UDP or listening input keeps its port until closed, and the new
            # connection needs it.
            current.container.close()
            reopened = _reconnect(src, live, stop, live_counters)
            if reopened is None:
                break
            current = reopened
            rebase.reanchor()
        out.close()
    finally:
        current.container.close()  # closing twice is harmless


def _items(decoder: Decoder) -> Iterator[Any]:
    """Video frames and passthrough items of one connection, until it ends or fails.

    The first video frame comes first: it anchors the output's clock, by which the audio
    before it is left out (`_Rebase.other`).
    """
    src = decoder.src
    yield src.first_frame
    yield from decoder.early()
    video = src.video
    try:
        for packet in src.container.demux([video, *src.info.passthrough]):
            if packet.stream.index == video.index:
                yield from decoder.video(packet)
            else:
                yield from decoder.passthrough(packet)
    except (av.error.FFmpegError, OSError) as exc:
        log.warning("input %r lost: %s", src.info.url, reason(exc))


def _reconnect(src: OpenedInput, live: LiveOptions, stop: threading.Event,
               live_counters: LiveCounters) -> OpenedInput | None:
    """Reopen a dropped network input with back-off; None when `live.reconnect` runs out."""
    deadline = time.monotonic() + live.reconnect
    delay = 0.25
    attempt = 0
    while time.monotonic() < deadline and not stop.is_set():
        attempt += 1
        log.warning("input %r stopped: reconnecting (attempt %d, up to %.0fs more)",
                    src.info.url, attempt, max(0.0, deadline - time.monotonic()))
        try:
            left = max(0.5, deadline - time.monotonic())
            reopened = open_input(dataclasses.replace(src.options, open_timeout=left))
        except Exception as exc:  # noqa: BLE001 - any failure to reopen is retried until the deadline
            log.debug("reconnect failed: %s", exc)
            stop.wait(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 4.0)
            continue
        live_counters.reconnects += 1
        log.warning("input %r is back", src.info.url)
        return reopened
    live_counters.lost = f"input {src.info.url!r} stopped and did not come back within {live.reconnect:.0f}s"
    return None
