#!/usr/bin/env python3
"""A real-time test stream:
`python scripts/media/send_test_stream.py URL SECONDS [--size WxH --fps N --audio]`.

Renders moving test frames (plus a 440 Hz tone with --audio) and sends them as MPEG-TS at
their native rate, as a camera or an encoder on the network would, so `vsr live` sees a
genuinely real-time input. Used by tests/test_live.py and scripts/bench/bench_live.py on loopback
(udp://127.0.0.1:PORT, or tcp://127.0.0.1:PORT to a `vsr live tcp://...?listen=1`, which
it keeps trying to reach for --connect-wait seconds); also handy to try `vsr live` by hand.
With --audio, the MPEG-TS muxer interleaves AAC as a real encoder does: video frames then
arrive in pairs around audio packets, and the first ~0.8 s in one burst after probing.
--audio-codec mp2 sends MPEG audio instead of AAC: what an FLV recording must re-encode;
--start 1.4 makes the timestamps start where FFmpeg's MPEG-TS muxer starts them.

Its picture (`pattern`) and sound (`tone`) come from `vsr.lab.media`, which the tests'
generated clips and the fuzz corpus are made of too: one source of test media.
"""

from __future__ import annotations

import argparse
import time
from fractions import Fraction
from typing import Any

import av

from vsr.lab.media import pattern, tone


def _connect(args: argparse.Namespace, w: int, h: int) -> tuple[Any, Any, Any]:
    """The output container and its video and audio (or None) streams, connected."""
    deadline = time.monotonic() + args.connect_wait
    while True:
        out = av.open(args.url, "w", format=args.format)
        vs = out.add_stream(
            "libx264",
            rate=args.fps,
            options={"preset": "ultrafast", "tune": "zerolatency", "g": str(args.fps // 2)},
        )
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        aus = out.add_stream(args.audio_codec, rate=48000, layout="mono") if args.audio else None
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
    ap.add_argument(
        "--audio-codec",
        default="aac",
        help="the tone's encoder (mp2: audio that some outputs, FLV for one, must re-encode)",
    )
    ap.add_argument(
        "--start",
        type=float,
        default=0.0,
        help="the stream's first timestamp in seconds (FFmpeg's own MPEG-TS starts at 1.4)",
    )
    ap.add_argument("--format", default="mpegts")
    ap.add_argument(
        "--connect-wait",
        type=float,
        default=10.0,
        help="seconds to keep retrying a refused connection (a TCP receiver not yet listening)",
    )
    args = ap.parse_args()
    w, h = map(int, args.size.split("x"))
    out, vs, aus = _connect(args, w, h)
    t0 = time.monotonic()
    n = int(args.seconds * args.fps)
    samples_sent = 0
    first_frame = round(args.start * args.fps)
    for i in range(n):
        target = t0 + i / args.fps
        delay = target - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        vf = av.VideoFrame.from_ndarray(pattern(i, w, h), format="bgr24")
        vf.pts, vf.time_base = first_frame + i, Fraction(1, args.fps)
        out.mux(vs.encode(vf))
        if aus is not None:
            upto = int((i + 1) / args.fps * 48000)
            while samples_sent + 1024 <= upto:
                af = tone(samples_sent, 1024, channels=1)
                af.pts += first_frame * 48000 // args.fps
                out.mux(aus.encode(af))
                samples_sent += 1024
    out.mux(vs.encode(None))
    if aus is not None:
        out.mux(aus.encode(None))
    out.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
