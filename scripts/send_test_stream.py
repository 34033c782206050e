#!/usr/bin/env python3
"""A real-time test stream: `python scripts/send_test_stream.py URL SECONDS [--size WxH --fps N --audio]`.

Renders moving test frames (plus a 440 Hz tone with --audio) and sends them as MPEG-TS at
their native rate, as a camera or an encoder on the network would, so `vsr live` sees a
genuinely real-time input. Used by tests/test_live.py and scripts/bench_live.py on loopback
(udp://127.0.0.1:PORT, or tcp://127.0.0.1:PORT to a `vsr live tcp://...?listen=1`, which
it keeps trying to reach for --connect-wait seconds); also handy to try `vsr live` by hand.
With --audio, the MPEG-TS muxer interleaves AAC as a real encoder does: video frames then
arrive in pairs around audio packets, and the first ~0.8 s in one burst after probing.

Its picture (`pattern`) and sound (`tone`, `write_audio_only`) are also what the tests'
generated clips and the fuzz corpus are made of: one source of test media.
"""

from __future__ import annotations

import argparse
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np


def first_times(path: Path) -> dict[str, float]:
    """The earliest packet time (seconds) of each stream type in a recording: whether what
    `vsr live` recorded from this stream starts its video with its audio."""
    first: dict[str, float] = {}
    with av.open(str(path)) as c:
        for pk in c.demux():
            if pk.pts is not None:
                t = float(pk.pts * pk.time_base)
                first[pk.stream.type] = min(first.get(pk.stream.type, t), t)
    return first


def pattern(i: int, w: int, h: int) -> np.ndarray:
    """A BGR frame with gradients, a checkerboard that flips each frame and a moving square."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.empty((h, w, 3), np.uint8)
    img[..., 0] = (xx * 255 // max(1, w - 1)).astype(np.uint8)
    img[..., 1] = (yy * 255 // max(1, h - 1)).astype(np.uint8)
    img[..., 2] = ((xx // 4 + yy // 4 + i) % 2 * 200 + 20).astype(np.uint8)
    s = max(2, min(w, h) // 4)
    x0 = (i * 3) % max(1, w - s)
    img[2 : 2 + s, x0 : x0 + s] = (255, 255, 255)
    return img


def tone(start: int, samples: int, channels: int = 2, rate: int = 48000) -> av.AudioFrame:
    """`samples` of a 440 Hz sine from sample `start`, float planar, timed in samples."""
    t = np.arange(start, start + samples) / rate
    chunk = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    frame = av.AudioFrame.from_ndarray(np.tile(chunk, (channels, 1)), format="fltp",
                                       layout="stereo" if channels == 2 else "mono")
    frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
    return frame


def write_audio_only(path: Path, seconds: float = 1.0) -> Path:
    """A real media file without any video stream: `seconds` of stereo AAC tone."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=48000, layout="stereo")
        total = int(seconds * 48000)
        for start in range(0, total, 1024):
            out.mux(stream.encode(tone(start, min(1024, total - start))))
        out.mux(stream.encode(None))
    return path


def _connect(args: argparse.Namespace, w: int, h: int) -> tuple[Any, Any, Any]:
    """The output container and its video and audio (or None) streams, connected."""
    deadline = time.monotonic() + args.connect_wait
    while True:
        out = av.open(args.url, "w", format=args.format)
        vs = out.add_stream("libx264", rate=args.fps, options={
            "preset": "ultrafast", "tune": "zerolatency", "g": str(args.fps // 2)})
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        aus = out.add_stream("aac", rate=48000, layout="mono") if args.audio else None
        try:
            out.start_encoding()  # PyAV opens the URL here, not in av.open()
            return out, vs, aus
        except ConnectionRefusedError:  # the receiver is not listening yet
            out.close()
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.1)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("seconds", type=float)
    ap.add_argument("--size", default="96x64")
    ap.add_argument("--fps", type=int, default=25)
    ap.add_argument("--audio", action="store_true")
    ap.add_argument("--format", default="mpegts")
    ap.add_argument("--connect-wait", type=float, default=10.0,
                    help="seconds to keep retrying a refused connection (a TCP receiver not yet listening)")
    args = ap.parse_args()
    w, h = map(int, args.size.split("x"))
    out, vs, aus = _connect(args, w, h)
    t0 = time.monotonic()
    n = int(args.seconds * args.fps)
    samples_sent = 0
    for i in range(n):
        target = t0 + i / args.fps
        delay = target - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        vf = av.VideoFrame.from_ndarray(pattern(i, w, h), format="bgr24")
        vf.pts, vf.time_base = i, Fraction(1, args.fps)
        out.mux(vs.encode(vf))
        if aus is not None:
            upto = int((i + 1) / args.fps * 48000)
            while samples_sent + 1024 <= upto:
                out.mux(aus.encode(tone(samples_sent, 1024, channels=1)))
                samples_sent += 1024
    out.mux(vs.encode(None))
    if aus is not None:
        out.mux(aus.encode(None))
    out.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
