#!/usr/bin/env python3
"""Model-stage throughput: frames per second of vsr's model stage alone, per input size.

`vsr` times `vsr.model.OnnxUpscaler` exactly as the pipeline calls it (uint8 luma batches in,
uint8 out: host<->device copies and the uint8 conversion included), with --batch auto unless
a batch is given. The other variants are candidates for the GPU path, timed the same way
(uint8 numpy in, uint8 numpy out) so the rows compare directly:

  uint8_io          conversions inside the graph (scripts/onnx_variants.py), plain run()
  uint8_io+binding  the same with onnxruntime I/O binding: output allocated on the device,
                    copied to the host once per batch
  fp16              float16 weights and activations, with uint8_io around them

Each variant's output is compared with `vsr`'s (max abs difference, share of pixels that
differ). Prints one markdown row per size and variant.

    python scripts/model_fps.py --device cuda --sizes 640x360 1280x720 --variants all
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vsr.model import OnnxUpscaler, auto_batch  # noqa: E402
from vsr.options import Device  # noqa: E402

VARIANTS = ("vsr", "uint8_io", "uint8_io+binding", "fp16")


def variant_runner(name: str, up: OnnxUpscaler, model: str) -> Callable[[np.ndarray], np.ndarray]:
    """A uint8 (N,H,W) -> uint8 (N,sH,sW) callable for variant `name`."""
    if name == "vsr":
        return up
    import onnxruntime as ort
    from onnx_variants import uint8_io

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(uint8_io(model, fp16=name == "fp16"), so,
                                   providers=up.session.get_providers())
    if name != "uint8_io+binding":
        return lambda y: session.run(None, {"luma_u8": y[:, None]})[0][:, 0]
    device = "cuda" if up.provider == "CUDAExecutionProvider" else "cpu"

    def run(y: np.ndarray) -> np.ndarray:
        binding = session.io_binding()
        binding.bind_cpu_input("luma_u8", np.ascontiguousarray(y[:, None]))
        binding.bind_output("luma_out_u8", device)
        session.run_with_iobinding(binding)
        out: np.ndarray = binding.copy_outputs_to_cpu()[0]
        return out[:, 0]

    return run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", nargs="*", default=["640x360", "1280x720"])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--model", default=str(ROOT / "models" / "espcn_x3.onnx"))
    ap.add_argument("--batch", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=5.0, help="time spent per size and variant")
    ap.add_argument("--variants", default="vsr",
                    help=f"comma-separated from {', '.join(VARIANTS)}, or all")
    args = ap.parse_args()
    names = VARIANTS if args.variants == "all" else tuple(args.variants.split(","))
    up = OnnxUpscaler(args.model, Device(args.device))
    print(f"model {Path(args.model).name} on {up.provider}\n")
    print("| input | output | variant | batch | ms/frame | fps | max diff vs vsr | pixels differing |")
    print("|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        w, h = map(int, size.split("x"))
        batch = args.batch or auto_batch(up, h, w)
        y = np.random.default_rng(0).integers(0, 256, (batch, h, w), dtype=np.uint8)
        reference = up(y)
        for name in names:
            try:
                run = variant_runner(name, up, args.model)
                out = run(y)  # warm-up, and the comparison
            except Exception as exc:  # noqa: BLE001 - a variant this provider cannot run
                print(f"| {w}x{h} | | {name} | {batch} | not supported: "
                      f"{str(exc).splitlines()[0][:80]} | | | |", flush=True)
                continue
            diff = np.abs(out.astype(np.int16) - reference.astype(np.int16))
            frames, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < args.seconds:
                run(y)
                frames += batch
            dt = time.perf_counter() - t0
            print(f"| {w}x{h} | {w * up.scale}x{h * up.scale} | {name} | {batch} | "
                  f"{dt / frames * 1000:.2f} | {frames / dt:.1f} | {int(diff.max())} | "
                  f"{(diff > 0).mean() * 100:.3f}% |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
