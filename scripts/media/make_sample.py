#!/usr/bin/env python3
"""Render vsr's bundled sample clip: `samples/sample.mp4` (320x180, 4 s, 25 fps, H.264 + AAC).

Deterministic: the scene of `vsr.lab.scene` (a zone plate and fine text, hard edges, smooth
gradients, a moving checkerboard and scrolling text) and a stereo chirp with a tone so that
audio copy is audible and checkable. Only numpy, OpenCV and PyAV, which vsr already needs.

    python scripts/media/make_sample.py [--out samples/sample.mp4] [--seconds 4]
"""

from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vsr.lab.scene import FPS, RATE, H, W, render
from vsr.paths import SAMPLE


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=SAMPLE)
    ap.add_argument("--seconds", type=float, default=4.0)
    args = ap.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    n = int(args.seconds * FPS)
    with av.open(str(args.out), "w", options={"fflags": "+bitexact"}) as out:
        out.metadata["title"] = "vsr sample"
        vs = out.add_stream("libx264", rate=FPS, options={"crf": "20", "preset": "slow"})
        vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
        aus = out.add_stream("aac", rate=RATE, layout="stereo")
        aus.metadata["language"] = "eng"
        for i in range(n):
            vf = av.VideoFrame.from_ndarray(render(i / FPS), format="bgr24")
            vf.pts = i
            vf.time_base = Fraction(1, FPS)
            out.mux(vs.encode(vf))
        t = np.arange(int(args.seconds * RATE)) / RATE
        chirp = 0.2 * np.sin(2 * np.pi * (200 * t + 400 * t**2 / args.seconds))
        tone = 0.1 * np.sin(2 * np.pi * 440 * t)
        samples = np.stack([chirp, tone]).astype(np.float32)
        for start in range(0, samples.shape[1], 1024):
            chunk = np.ascontiguousarray(samples[:, start : start + 1024])
            af = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
            af.sample_rate = RATE
            af.pts = start
            af.time_base = Fraction(1, RATE)
            out.mux(aus.encode(af))
        out.mux(vs.encode(None))
        out.mux(aus.encode(None))
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes, {n} frames)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
