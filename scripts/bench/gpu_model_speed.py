#!/usr/bin/env python3
"""Model-stage throughput of vsr's ONNX models on a GPU through PyTorch (fp16, channels-last).

Why a PyTorch proxy: the device machine this project borrows has CUDA PyTorch but no
onnxruntime-gpu (its wheel travels in six pieces, which a short lease cannot spare next to a
training run). The models are plain Conv/Relu/Add/DepthToSpace graphs, so running their
weights with cuDNN measures what the network costs on that GPU; the *ratio* between two models
measured side by side here is what carries over to onnxruntime's CUDA engine, whose absolute
figure for espcn_x3 was measured in an earlier session. It says nothing about decode/encode.

    python scripts/bench/gpu_model_speed.py models/espcn_x3.onnx models/fast_x3.onnx q.onnx --size 640x360
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

Tensor = Any  # torch.Tensor: PyTorch is read as Any (pyproject.toml)
Graph = Callable[[Tensor, dict[str, Tensor]], Tensor]  # (input, weights) -> output


def load_graph(path: Path) -> tuple[Graph, dict[str, Tensor]]:
    """The model as a torch function: its nodes run in order on the initializers."""
    import onnx
    import torch
    from onnx import numpy_helper
    from torch.nn import functional as F

    m = onnx.load(str(path))
    weights = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in m.graph.initializer}
    nodes = list(m.graph.node)

    def run(x: Tensor, w: dict[str, Tensor]) -> Tensor:
        env = {m.graph.input[0].name: x, **w}
        for n in nodes:
            a = [env[i] for i in n.input if i]
            attrs = {at.name: onnx.helper.get_attribute_value(at) for at in n.attribute}
            if n.op_type == "Conv":
                pad = attrs.get("pads", [0])[0]
                y = F.conv2d(a[0], a[1], a[2] if len(a) > 2 else None, padding=pad)
            elif n.op_type == "Relu":
                y = torch.relu(a[0])
            elif n.op_type == "Add":
                y = a[0] + a[1]
            elif n.op_type == "DepthToSpace":
                y = F.pixel_shuffle(a[0], attrs["blocksize"])
            else:
                raise SystemExit(f"{path}: op {n.op_type} not supported by this proxy")
            env[n.output[0]] = y
        return env[m.graph.output[0].name]

    return run, weights


def main() -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="+", type=Path)
    ap.add_argument("--size", default="640x360", help="input frame WxH (default 640x360)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=3.0, help="timed seconds per model")
    ap.add_argument("--dtype", choices=("float16", "float32"), default="float16")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = getattr(torch, args.dtype) if dev == "cuda" else torch.float32
    torch.backends.cudnn.benchmark = True
    print(
        f"device: {torch.cuda.get_device_name() if dev == 'cuda' else 'cpu'}, torch {torch.__version__}, "
        f"{args.dtype if dev == 'cuda' else 'float32'}, channels-last, batch {args.batch}, {w}x{h} input"
    )
    results = []
    for path in args.models:
        run, weights = load_graph(path)
        wd = {k: v.to(dev, dtype) for k, v in weights.items()}
        wd = {
            k: (v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v) for k, v in wd.items()
        }
        x = torch.rand(args.batch, 1, h, w, device=dev, dtype=dtype).contiguous(
            memory_format=torch.channels_last
        )
        with torch.inference_mode():
            for _ in range(5):
                y = run(x, wd)
            if dev == "cuda":
                torch.cuda.synchronize()
            import time

            calls, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < args.seconds or calls < 3:
                y = run(x, wd)
                calls += 1
                if dev == "cuda" and calls % 10 == 0:
                    torch.cuda.synchronize()
            if dev == "cuda":
                torch.cuda.synchronize()
            dt = time.perf_counter() - t0
        fps = calls * args.batch / dt
        out_mp = y.shape[-1] * y.shape[-2] / 1e6
        r = {
            "model": str(path),
            "fps": round(fps, 1),
            "ms_per_frame": round(1000 / fps, 3),
            "output": f"{y.shape[-1]}x{y.shape[-2]}",
            "ms_per_output_mp": round(1000 / fps / out_mp, 4),
        }
        results.append(r)
        print(json.dumps(r), flush=True)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "device": dev,
                    "size": args.size,
                    "batch": args.batch,
                    "dtype": args.dtype,
                    "results": results,
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
