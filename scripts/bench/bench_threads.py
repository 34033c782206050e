#!/usr/bin/env python3
"""OpenCV's thread pool against the pipeline's own threads: the vsr pipeline (in this
process, its model loaded once) with OpenCV's default threads and with one, alternating,
beside the encoder alone on the same pictures.

vsr already runs its stages in parallel (decode, model, compose, encode); OpenCV's colour
calls (chroma resize, LUT) would also fan out over every core, where libx264 is working.
This measures whether that helps or hurts, per machine.

    python scripts/bench/bench_threads.py --device cuda --frames 300
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2

from vsr.lab.floors import floor_encode, load_clip, make_clip, output_frames, run_pipeline
from vsr.media.color import split_frame
from vsr.model import registry
from vsr.model.batch_size import auto_batch
from vsr.model.load import OnnxUpscaler
from vsr.options import Device


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--preset", default="veryfast")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    default_threads = cv2.getNumThreads()
    with tempfile.TemporaryDirectory(prefix="vsr-threads-") as tmpdir:
        tmp = Path(tmpdir)
        make_clip(tmp / "clip.mp4", w, h, args.frames)
        clip = load_clip(str(tmp / "clip.mp4"), args.frames)
        up = OnnxUpscaler(registry.resolve(None, None), Device(args.device))
        batch = auto_batch(up, h, w)
        ys = [split_frame(f, native=True)[0] for f in clip.frames]
        luma = [up(ys[i][None]) for i in range(len(ys))]
        pictures = output_frames(clip, luma, up.scale)
        del luma

        def pipeline() -> float:
            t0 = time.perf_counter()
            run_pipeline(clip, up, batch, args.preset, tmp / "out.mp4")
            return time.perf_counter() - t0

        pipeline()  # warm-up: cuDNN's algorithm search for this batch shape
        print(
            f"{w}x{h} x{up.scale}, {len(clip.frames)} frames, batch {batch}, {up.provider} "
            f"{up.precision}, libx264 {args.preset}; OpenCV default threads {default_threads}\n"
        )
        print(
            "| round | encode only s | pipeline, OpenCV default threads s | ratio | "
            "pipeline, OpenCV 1 thread s | ratio |"
        )
        print("|---|---:|---:|---:|---:|---:|")
        for r in range(args.rounds):
            t0 = time.perf_counter()
            floor_encode(pictures, clip, up.scale, args.preset, tmp)
            enc = time.perf_counter() - t0
            cv2.setNumThreads(default_threads)
            many = pipeline()
            cv2.setNumThreads(1)
            one = pipeline()
            print(
                f"| {r + 1} | {enc:.2f} | {many:.2f} | {many / enc:.2f} | {one:.2f} | {one / enc:.2f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
