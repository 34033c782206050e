#!/usr/bin/env python3
"""Render vsr's bundled sample clip: `samples/sample.mp4` (320x180, 4 s, 25 fps, H.264 + AAC).

Deterministic: a scene with real structure for a super-resolution model to show its worth —
a zone plate and fine text (high frequencies), hard edges, smooth gradients, a moving
checkerboard and scrolling text (motion) — and a stereo chirp with a tone so that audio
copy is audible and checkable. Only numpy, OpenCV and PyAV, which vsr already needs.

    python scripts/make_sample.py [--out samples/sample.mp4] [--seconds 4]
"""

from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

W, H, FPS, RATE = 320, 180, 25, 48000


def render(t: float) -> np.ndarray:
    """One BGR frame at time t (seconds)."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    img = np.zeros((H, W, 3), np.float32)
    # Smooth colour gradient background that drifts slowly.
    img[..., 0] = 80 + 60 * np.sin(xx / W * 2 * np.pi + t * 0.7)
    img[..., 1] = 90 + 50 * (yy / H)
    img[..., 2] = 120 + 70 * np.cos(yy / H * np.pi + t * 0.5)
    # Zone plate (all frequencies up to Nyquist) in the top-left quarter.
    cx, cy = 60.0, 50.0
    r2 = (xx - cx) ** 2 + (yy - cy) ** 2
    zone = 127 + 120 * np.cos(r2 / 80.0 + t * 2)
    mask = r2 < 45**2
    img[mask] = zone[mask, None]
    # Moving checkerboard: hard edges with motion.
    off = int(t * 20) % 16
    check = (((xx.astype(int) + off) // 8 + (yy.astype(int) // 8)) % 2) * 200 + 30
    box = (xx >= 200) & (xx < 300) & (yy >= 15) & (yy < 85)
    img[box] = check[box, None]
    frame = np.clip(img, 0, 255).astype(np.uint8)
    # Text: small (aliasing-prone) and large, one line scrolling.
    cv2.putText(frame, "vsr sample 0123456789", (8, 120), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                (255, 255, 255), 1, cv2.LINE_AA)
    x = int(320 - (t * 60) % 640)
    cv2.putText(frame, "ESPCN super-resolution: sharp edges, fine text", (x, 160),
                cv2.FONT_HERSHEY_PLAIN, 1.0, (20, 240, 240), 1, cv2.LINE_AA)
    cv2.circle(frame, (int(160 + 60 * np.sin(t * 1.5)), 100), 12, (0, 0, 255), 2, cv2.LINE_AA)
    return frame


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "samples" / "sample.mp4")
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
