#!/usr/bin/env python3
"""Model-stage throughput: frames per second of vsr's model stage alone, per input size.

Times `vsr.model.OnnxUpscaler` exactly as the pipeline calls it (uint8 luma batches in,
uint8 out: host<->device copies and the uint8 conversion included), with --batch auto
unless a batch is given. Prints one markdown row per size.

    python scripts/model_fps.py --device cuda --sizes 640x360 1280x720
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vsr.model import OnnxUpscaler, auto_batch  # noqa: E402
from vsr.options import Device  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", nargs="*", default=["640x360", "1280x720"])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--model", default=str(ROOT / "models" / "espcn_x3.onnx"))
    ap.add_argument("--batch", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=5.0, help="time spent per size")
    args = ap.parse_args()
    up = OnnxUpscaler(args.model, Device(args.device))
    print(f"model {Path(args.model).name} on {up.provider}\n")
    print("| input | output | batch | ms/frame | fps |")
    print("|---|---|---|---|---|")
    for size in args.sizes:
        w, h = map(int, size.split("x"))
        batch = args.batch or auto_batch(up, h, w)
        y = np.random.default_rng(0).integers(0, 256, (batch, h, w), dtype=np.uint8)
        up(y)  # warm-up
        frames, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < args.seconds:
            up(y)
            frames += batch
        dt = time.perf_counter() - t0
        print(f"| {w}x{h} | {w * up.scale}x{h * up.scale} | {batch} | {dt / frames * 1000:.2f} | "
              f"{frames / dt:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
