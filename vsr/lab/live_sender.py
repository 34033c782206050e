"""A real-time MPEG-TS sender with faults, for the live fault corpus (`vsr.lab.live_fuzz`)
and the live tests: what a camera, an encoder or a network does to `vsr live` on loopback.

Why: `vsr live` must survive what live sources do: an encoder restarted behind the same UDP
port (its clock from the start again), a clock that jumps or wraps, a resolution switch, lost
or damaged UDP datagrams, a TCP connection cut in the middle of a packet, a source that goes
away. FFmpeg's own network output cannot lose packets on purpose, so this sender muxes
MPEG-TS into memory itself and puts the bytes on the wire: 1316-byte datagrams (7 TS
packets) over UDP, a byte stream over TCP.

A stream is a list of `Part`s, each a stretch of a prepared MPEG-TS clip (`prepare_clip`:
H.264 + AAC, small, a keyframe every half second) copied packet by packet, paced by its
timestamps. Runs in the caller's thread (the corpus runs one per case in a thread pool).
"""

from __future__ import annotations

import random
import socket
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

#: UDP payload: 7 TS packets, what FFmpeg's udp output sends with pkt_size=1316.
DATAGRAM = 1316
TS_PACKET = 188
#: The MPEG-TS clock (90 kHz) and its 33-bit wrap.
TICKS = 90000
WRAP = 1 << 33


@dataclass(frozen=True)
class Part:
    """One stretch of the stream.

    Attributes:
        clip: a prepared MPEG-TS (`prepare_clip`) whose packets are sent.
        seconds: how much of it (from its start; at most its length).
        clock: how this part's timestamps follow the previous part's: "continue" (the same
            muxer, times going on), "restart" (a new muxer whose clock starts where the clip
            starts: a restarted encoder), "jump" (the same muxer, `jump` seconds added; a
            negative jump is sent as a forward one of 2^33 ticks less, so that on the wire it
            goes back while the muxer sees times that increase), "wrap" (the same muxer,
            times placed `jump` seconds before the 33-bit wrap).
        jump: seconds, for "jump" and "wrap".
        pause: seconds of silence before the part (nothing sent).
        reconnect: TCP: a new connection for this part (the previous one is closed first).
    """

    clip: Path
    seconds: float
    clock: str = "continue"
    jump: float = 0.0
    pause: float = 0.0
    reconnect: bool = False


@dataclass(frozen=True)
class Wire:
    """Where the bytes go and what happens to them on the way.

    Attributes:
        url: udp://127.0.0.1:PORT or tcp://127.0.0.1:PORT.
        loss: UDP: the share of datagrams not sent.
        corrupt: UDP: the share of datagrams sent with 1 to 8 bytes flipped.
        cut_after: TCP: seconds into the stream after which the connection is closed in the
            middle of a TS packet (the rest of that part is not sent).
        seed: for the random losses and flips.
        connect_wait: TCP: seconds to keep retrying a refused connection.
    """

    url: str
    loss: float = 0.0
    corrupt: float = 0.0
    cut_after: float | None = None
    seed: int = 0
    connect_wait: float = 20.0


@dataclass
class Sent:
    """What the sender did."""

    frames: int = 0  # video packets muxed (before any loss on the wire)
    seconds: float = 0.0  # wall time from the first byte to the last
    datagrams: int = 0
    lost: int = 0
    corrupted: int = 0
    cuts: int = 0
    connections: int = 0
    first_frame_at: float | None = None  # monotonic time of the first frame sent


class _Link:
    """A file-like object PyAV's muxer writes into; it puts the bytes on the wire."""

    def __init__(self, wire: Wire, sent: Sent, rng: random.Random) -> None:
        self.wire = wire
        self.sent = sent
        self.rng = rng
        self.proto, rest = wire.url.split("://", 1)
        host, port = rest.split("?")[0].rsplit(":", 1)
        self.address = (host, int(port))
        self.sock: socket.socket | None = None
        self.buffer = b""
        self.cut = False  # TCP: cut; nothing more is sent on this connection

    def open(self) -> None:
        if self.proto == "udp":
            if self.sock is None:
                self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            return
        self.close()
        deadline = time.monotonic() + self.wire.connect_wait
        while True:
            sock = socket.socket()
            try:
                sock.connect(self.address)
                break
            except OSError:
                sock.close()
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)
        self.sock = sock
        self.cut = False
        self.sent.connections += 1

    def write(self, data: bytes) -> int:
        self.buffer += bytes(data)
        if self.proto == "udp":
            while len(self.buffer) >= DATAGRAM:
                self._datagram(self.buffer[:DATAGRAM])
                self.buffer = self.buffer[DATAGRAM:]
        else:
            self._stream(self.buffer)
            self.buffer = b""
        return len(data)

    def flush(self) -> None:
        if self.proto == "udp" and self.buffer:
            self._datagram(self.buffer)
            self.buffer = b""

    def cut_now(self) -> None:
        """TCP: send half of a TS packet and close: the receiver sees a packet cut short."""
        if self.sock is None or self.cut:
            return
        try:
            self.sock.sendall(self.buffer[: TS_PACKET // 2] or b"\x47" + bytes(90))
        except OSError:
            pass
        self.sock.close()
        self.sock = None
        self.cut = True
        self.sent.cuts += 1

    def close(self) -> None:
        if self.sock is not None:
            self.flush()
            self.sock.close()
            self.sock = None

    def _datagram(self, chunk: bytes) -> None:
        assert self.sock is not None
        self.sent.datagrams += 1
        if self.wire.loss and self.rng.random() < self.wire.loss:
            self.sent.lost += 1
            return
        if self.wire.corrupt and self.rng.random() < self.wire.corrupt:
            data = bytearray(chunk)
            for _ in range(self.rng.randint(1, 8)):
                data[self.rng.randrange(len(data))] ^= self.rng.randint(1, 255)
            chunk = bytes(data)
            self.sent.corrupted += 1
        try:
            self.sock.sendto(chunk, self.address)
        except OSError:
            pass  # nobody listening (yet): as on a real network, the datagram is gone

    def _stream(self, data: bytes) -> None:
        if self.sock is None or self.cut:
            return
        try:
            self.sock.sendall(data)
        except OSError:  # the receiver closed the connection: the rest of this part is lost
            self.sock.close()
            self.sock = None
            self.cut = True


class _Muxer:
    """One MPEG-TS muxer instance (continuity counters, PAT/PMT, clock) writing to the link."""

    def __init__(self, link: _Link, template: Any) -> None:
        self.container = av.open(link, "w", format="mpegts", buffer_size=DATAGRAM)
        self.video = self.container.add_stream_from_template(template.streams.video[0])
        audio = template.streams.audio
        self.audio = self.container.add_stream_from_template(audio[0]) if audio else None
        self.container.start_encoding()

    def close(self) -> None:
        try:
            self.container.close()
        except (av.error.FFmpegError, OSError):
            pass


def send(parts: list[Part], wire: Wire) -> Sent:
    """Send `parts` to `wire` in real time and return what was sent."""
    rng = random.Random(wire.seed)
    sent = Sent()
    link = _Link(wire, sent, rng)
    muxer: _Muxer | None = None
    offset = 0  # ticks added to the clip's times (continue, jump, wrap)
    end_of_previous = 0  # the previous part's last time + one frame, output ticks
    t0 = time.monotonic()
    try:
        for i, part in enumerate(parts):
            if part.pause:
                time.sleep(part.pause)
            first = _first_time(part.clip)
            with av.open(str(part.clip)) as clip:
                fresh = muxer is None or part.clock == "restart" or (part.reconnect and link.proto == "tcp")
                if fresh:
                    if muxer is not None:
                        muxer.close()
                        link.flush()
                    if link.proto == "udp" or muxer is None or part.reconnect or link.cut:
                        link.open()
                    muxer = _Muxer(link, clip)
                    offset = 0 if part.clock == "restart" or i == 0 else end_of_previous - first
                else:
                    offset = end_of_previous - first
                if part.clock == "jump":
                    ticks = round(part.jump * TICKS)
                    offset += ticks if ticks > 0 else WRAP + ticks
                elif part.clock == "wrap":
                    offset = WRAP - round(part.jump * TICKS) - first
                assert muxer is not None
                end_of_previous = _send_part(clip, part, muxer, offset, first, link, wire, sent, t0)
        if muxer is not None:
            muxer.close()
    finally:
        link.close()
        sent.seconds = time.monotonic() - t0
    return sent


def _first_time(path: Path) -> int:
    """The clip's first dts (90 kHz ticks)."""
    with av.open(str(path)) as clip:
        for p in clip.demux():
            if p.dts is not None:
                return int(p.dts)
    return 0


def _send_part(
    clip: Any,
    part: Part,
    muxer: _Muxer,
    offset: int,
    first: int,
    link: _Link,
    wire: Wire,
    sent: Sent,
    t0: float,
) -> int:
    """Copy the clip's packets for `part.seconds`, paced by their times; returns where the
    next part's clock goes on (this part's last time + a frame, with the offset)."""
    start = time.monotonic()
    limit = round(part.seconds * TICKS)
    last = first
    step = 3600
    for packet in clip.demux():
        if packet.dts is None or packet.pts is None:
            continue
        if packet.dts - first >= limit:
            break
        due = start + (packet.dts - first) / TICKS
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if (
            wire.cut_after is not None
            and not sent.cuts
            and not link.cut
            and time.monotonic() - t0 >= wire.cut_after
        ):
            link.cut_now()
        if link.cut:
            continue
        video = packet.stream.type == "video"
        target = muxer.video if video else muxer.audio
        if target is None:
            continue
        if video:
            sent.frames += 1
            if sent.first_frame_at is None:
                sent.first_frame_at = time.monotonic()
            step = packet.duration or step
        last = max(last, packet.dts)
        packet.pts += offset
        packet.dts += offset
        packet.stream = target
        try:
            muxer.container.mux(packet)
        except (av.error.FFmpegError, OSError):
            break  # the receiver is gone (TCP): the part ends here
    return last + step + offset


def prepare_clip(
    source: Path | None, path: Path, size: tuple[int, int], seconds: float, fps: int = 25
) -> Path:
    """Write a small MPEG-TS for the sender: H.264 (ultrafast, zero latency, no B-frames, a
    keyframe every half second so a loss heals soon) at `size` (rounded down to even),
    `seconds` long, with AAC
    stereo at 48 kHz, from a real clip (`source`, looped if short; its audio when it has
    some, else a tone) or from the test pattern (`source` None).

    Returns:
        `path`.
    """
    import numpy as np

    from .media import pattern, tone

    w, h = max(2, size[0] // 2 * 2), max(2, size[1] // 2 * 2)  # 4:2:0 needs even sizes
    n = round(seconds * fps)
    frames: list[Any] = []
    samples: list[Any] = []
    if source is not None:
        with av.open(str(source)) as c:
            for f in c.decode(video=0):
                frames.append(f.to_ndarray(format="bgr24", width=w, height=h))
                if len(frames) >= n:
                    break
        if source.exists():
            with av.open(str(source)) as c:
                if c.streams.audio:
                    resampler = av.AudioResampler("fltp", "stereo", 48000)
                    for af in c.decode(audio=0):
                        for r in resampler.resample(af):
                            samples.append(r.to_ndarray())
                        if sum(s.shape[1] for s in samples) >= seconds * 48000:
                            break
    with av.open(str(path), "w", format="mpegts") as out:
        vs = out.add_stream(
            "libx264",
            rate=fps,
            options={"preset": "ultrafast", "tune": "zerolatency", "g": str(max(1, fps // 2)), "bf": "0"},
        )
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        aus = out.add_stream("aac", rate=48000, layout="stereo")
        for i in range(n):
            img = frames[i % len(frames)] if frames else pattern(i, w, h)
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="bgr24")
            vf.pts, vf.time_base = i, Fraction(1, fps)
            out.mux(vs.encode(vf))
        out.mux(vs.encode(None))
        pcm = np.concatenate(samples, axis=1) if samples else None
        total = int(n / fps * 48000)
        for at in range(0, total, 1024):
            count = min(1024, total - at)
            if pcm is not None and pcm.shape[1] >= at + count:
                af = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(pcm[:, at : at + count]), format="fltp", layout="stereo"
                )
                af.sample_rate, af.pts, af.time_base = 48000, at, Fraction(1, 48000)
            else:
                af = tone(at, count)
            out.mux(aus.encode(af))
        out.mux(aus.encode(None))
    return path
