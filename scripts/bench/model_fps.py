#!/usr/bin/env python3
"""Model-stage throughput: frames per second of vsr's model stage alone, per input size.

Every row times `vsr.model.load.OnnxUpscaler` exactly as the pipeline calls it: uint8 luma batches
in host memory in, uint8 luma batches in host memory out, so host<->device copies and the
uint8 conversions are included. Rows differ in the engine and its options:

  plain fp32            float32 planes through session.run(), conversions in numpy on the
                        host (the engine vsr used on CUDA before the bound one)
  bound fp32            uint8 in and out of the graph (vsr.model.graph), I/O binding into the
                        output array, conversions on the device
  bound fp16            the same, float16 inside (vsr's default on CUDA)
  ... nchw              without the CUDA provider's prefer_nhwc (vsr's default sets it)
  ... heuristic         cuDNN's heuristic algorithm choice instead of its exhaustive search
                        (a faster start; the "load" and "first call" columns show the cost)

Each row's output is compared with the CPU's float32 result (max abs difference, share of
pixels that differ). Prints one markdown row per size, variant and batch.

    python scripts/bench/model_fps.py --device cuda --sizes 640x360 1280x720 --variants all
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vsr.model import registry
from vsr.model.batch_size import auto_batch
from vsr.model.engines import CUDA_OPTIONS
from vsr.model.load import OnnxUpscaler
from vsr.options import Device, Precision

#: name -> (engine, precision, CUDA provider options: None for vsr's own)
VARIANTS: dict[str, tuple[str, Precision, dict[str, str] | None]] = {
    "plain fp32": ("plain", Precision.FP32, None),
    "bound fp32": ("bound", Precision.FP32, None),
    "bound fp32 nchw": ("bound", Precision.FP32, {}),
    "bound fp16": ("bound", Precision.FP16, None),
    "bound fp16 nchw": ("bound", Precision.FP16, {}),
    "bound fp16 heuristic": (
        "bound",
        Precision.FP16,
        {**CUDA_OPTIONS, "cudnn_conv_algo_search": "HEURISTIC"},
    ),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", nargs="*", default=["640x360", "1280x720"])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--model", help="ONNX model or bundled name (default: the default model)")
    ap.add_argument("--batch", type=int, default=0, help="frames per call (0: --batch auto's choice)")
    ap.add_argument(
        "--also-batches",
        default="",
        help="comma-separated extra batch sizes for the default variant, e.g. 1,16",
    )
    ap.add_argument("--seconds", type=float, default=3.0, help="time spent per row")
    ap.add_argument(
        "--variants",
        default="default",
        help=f"comma-separated from: {', '.join(VARIANTS)}; 'default' (vsr's own "
        "choice for --device) or 'all'",
    )
    args = ap.parse_args()
    args.model = str(registry.resolve(args.model, None))
    t0 = time.perf_counter()
    default = OnnxUpscaler(args.model, Device(args.device))
    default_load = time.perf_counter() - t0
    names = (
        list(VARIANTS)
        if args.variants == "all"
        else [n.strip() for n in args.variants.split(",") if n.strip() != "default"]
    )
    reference = OnnxUpscaler(args.model, Device.CPU, engine="plain")
    print(
        f"model {Path(args.model).name}; vsr's default here: {default.engine} engine, "
        f"{default.precision}, on {default.provider}\n"
    )
    print(
        "| input | output | variant | batch | ms/frame | fps | max diff vs CPU fp32 | pixels differing "
        "| load s | first call s |"
    )
    print("|---|---|---|---|---:|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        w, h = map(int, size.split("x"))
        batch = args.batch or auto_batch(default, h, w)
        extra = [int(b) for b in args.also_batches.split(",") if b]
        y = np.random.default_rng(0).integers(0, 256, (max([batch, *extra]), h, w), dtype=np.uint8)
        # Smooth the noise a little: natural frames, not worst-case float16 input.
        y = ((y.astype(np.uint16) + np.roll(y, 1, 2) + np.roll(y, 1, 1)) // 3).astype(np.uint8)
        expected = reference(y[:1])
        rows: list[tuple[str, int, Callable[[np.ndarray], np.ndarray], float]] = [
            (f"default ({default.engine} {default.precision})", b, default, default_load)
            for b in dict.fromkeys([batch, *extra])
        ]
        for name in names:
            engine, precision, options = VARIANTS[name]
            try:
                t0 = time.perf_counter()
                up = OnnxUpscaler(
                    args.model,
                    Device(args.device),
                    engine=engine,
                    precision=precision,
                    provider_options=options,
                )
                rows.append((name, batch, up, time.perf_counter() - t0))
            except Exception as exc:  # noqa: BLE001 - a variant this build cannot run
                print(
                    f"| {w}x{h} | | {name} | {batch} | not supported: "
                    f"{str(exc).splitlines()[0][:90]} | | | | | |",
                    flush=True,
                )
        for name, b, run, loaded in rows:
            try:
                t0 = time.perf_counter()
                out = run(y[:b])  # warm-up (cuDNN picks its algorithms per shape), and the check
                first = time.perf_counter() - t0
            except Exception as exc:  # noqa: BLE001
                print(
                    f"| {w}x{h} | | {name} | {b} | failed: {str(exc).splitlines()[0][:90]} | | | | | |",
                    flush=True,
                )
                continue
            diff = np.abs(out[:1].astype(np.int16) - expected.astype(np.int16))
            frames, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < args.seconds:
                run(y[:b])
                frames += b
            dt = time.perf_counter() - t0
            s = reference.scale
            print(
                f"| {w}x{h} | {w * s}x{h * s} | {name} | {b} | {dt / frames * 1000:.3f} | "
                f"{frames / dt:.1f} | {int(diff.max())} | {(diff > 0).mean() * 100:.3f}% | "
                f"{loaded:.2f} | {first:.3f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
