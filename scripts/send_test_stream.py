#!/usr/bin/env python3
"""A real-time test stream: `python scripts/send_test_stream.py URL SECONDS [--size WxH --fps N --audio]`.

Renders moving test frames (plus a 440 Hz tone with --audio) and sends them as MPEG-TS at
their native rate, as a camera or an encoder on the network would, so `vsr live` sees a
genuinely real-time input. Used by tests/test_live.py and scripts/bench_live.py on loopback
(udp://127.0.0.1:PORT); also handy to try `vsr live` by hand.
"""

from __future__ import annotations

import argparse
import time
from fractions import Fraction

import av
import numpy as np


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


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("seconds", type=float)
    ap.add_argument("--size", default="96x64")
    ap.add_argument("--fps", type=int, default=25)
    ap.add_argument("--audio", action="store_true")
    ap.add_argument("--format", default="mpegts")
    args = ap.parse_args()
    w, h = map(int, args.size.split("x"))
    out = av.open(args.url, "w", format=args.format)
    vs = out.add_stream("libx264", rate=args.fps,
                        options={"preset": "ultrafast", "tune": "zerolatency", "g": str(args.fps // 2)})
    vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
    aus = out.add_stream("aac", rate=48000, layout="mono") if args.audio else None
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
                t = (np.arange(samples_sent, samples_sent + 1024) / 48000).astype(np.float32)
                af = av.AudioFrame.from_ndarray((0.2 * np.sin(2 * np.pi * 440 * t))[None].astype(np.float32),
                                                format="fltp", layout="mono")
                af.sample_rate, af.pts, af.time_base = 48000, samples_sent, Fraction(1, 48000)
                out.mux(aus.encode(af))
                samples_sent += 1024
    out.mux(vs.encode(None))
    if aus is not None:
        out.mux(aus.encode(None))
    out.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
