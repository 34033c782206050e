#!/usr/bin/env python3
"""Make the int8 CPU variant of a model: static QDQ quantization calibrated on training images.

    python scripts/models/quantize.py               # models/espcn_x3.onnx -> models/espcn_x3_int8.onnx
    python scripts/models/quantize.py --model models/espcn_x2.onnx --out models/espcn_x2_int8.onnx

Weights are int8 per output channel *within 7 bits* (`reduce_range`), activations uint8 with
ranges calibrated (MinMax) on 96x96 LR luma crops of every 6th image of ../shared/data/train,
degraded by the shared protocol, so the ranges are those the model sees on real images. QDQ
format, which onnxruntime fuses into integer convolutions.

Why 7-bit weights: on x86 CPUs without VNNI (AVX2, plain AVX-512) onnxruntime's kernels add
pairs of uint8 x int8 products into a saturating int16; full-range weights overflowed it and
the first int8 model lost 0.6 dB on Set5 there while losing 0.07 on a VNNI machine. With
|q| <= 64 no pair can overflow (vsr/model/quant.py), so the model computes the same on every CPU.
Measured on this project's Set5/Set14 with the AVX2 kernels (qemu-x86_64 -cpu Haswell):
U8U8 is as exact but 2.5x slower than float on VNNI; S8S8 saturates like U8S8.

The first and last convolutions stay float: they are 7% of the arithmetic (1 input channel
in, r*r out) and the most sensitive to rounding; quantizing them cost 0.02 dB on Set5.

The result is checked against the float model under the shared protocol on Set5/Set14 and on
generated hard content (vsr/lab/hard_images.py), timed against it on this CPU, and the
figures are written into its metadata next to the source model's own.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from vsr.lab import hard_images, protocol
from vsr.lab.ship_rule import cpu_features, misses, psnr_of, speedup
from vsr.paths import MODELS, SHARED_DATA


def calibration_batches(
    scale: int, folder: Path, every: int = 6, crop: int = 96
) -> list[dict[str, np.ndarray]]:
    batches = []
    for path in protocol.list_images(folder)[::every]:
        _, lr = protocol.hr_lr_pair(path, scale)
        y = protocol.y_channel(lr)[:crop, :crop].astype(np.float32) / 255.0
        batches.append({"input": y[None, None]})
    return batches


def split_identity(model: Any) -> tuple[Any, list[str]]:
    """The same network with the identity taken out of each square 3x3 convolution whose
    weights hold one: W = W' + I becomes Conv(x, W') + x (an Add), equal in float.

    Why: the family's ECB models are trained with an identity branch merged into each body
    convolution, so every output channel's largest weight is its own centre tap (~0.4..1.0
    against ~0.2 for the rest). Per-channel int8 weights spend their range on that one tap,
    leaving the kernel that carries the detail ~10-20 levels of 7 bits; without it the rest
    gets the whole range. Returns the rewritten model and the convolutions changed."""
    from onnx import helper, numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    nodes, changed = [], []
    for node in model.graph.node:
        w_init = inits.get(node.input[1]) if node.op_type == "Conv" and len(node.input) > 1 else None
        w = numpy_helper.to_array(w_init) if w_init is not None else None
        if w_init is None or w is None or w.ndim != 4 or w.shape[0] != w.shape[1] or w.shape[2:] != (3, 3):
            nodes.append(node)
            continue
        c = np.arange(w.shape[0])
        without = w.copy()
        without[c, c, 1, 1] -= 1.0
        others = w.copy()
        others[c, c, 1, 1] = 0.0
        if not (w[c, c, 1, 1] > np.abs(others).reshape(len(c), -1).max(1)).mean() > 0.5:
            nodes.append(node)
            continue
        w = without
        w_init.CopyFrom(numpy_helper.from_array(w.astype(np.float32), w_init.name))
        out = node.output[0]
        node.output[0] = out + "_without_identity"
        nodes += [
            node,
            helper.make_node("Add", [node.output[0], node.input[0]], [out], name=node.name + "_identity"),
        ]
        changed.append(node.name)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model, changed


def float_nodes(model: Any, n: int = 1) -> list[str]:
    """The nodes to leave float: the first and last `n` convolutions, and every node from
    which no convolution follows (each path's last convolution, the global residual Add,
    DepthToSpace, a refinement branch's Add).

    Why the ends of every path: quantizing the residual Add quantized the model's input for
    it, and onnxruntime then fused the float first convolution, between that input's
    DequantizeLinear and its own QuantizeLinear, into a QLinearConv with weights it quantized
    itself to full 8 bits, which AVX2 kernels saturate on (vsr.model.quant.saturating_weights now
    finds that); it also rounded the output to 8 bits before vsr does. In a chain these are
    the nodes after the last convolution; with a branch (`train.py --refine`) the main path's
    tail and residual Add come before the branch's convolutions in the file, so file order
    alone would quantize them."""
    nodes = list(model.graph.node)
    convs = [node.name for node in nodes if node.op_type == "Conv"]
    keep = convs[:n] + convs[-n:] if len(convs) > 2 * n else []
    feeds_conv: set[str] = set()  # tensors from which a convolution follows
    for node in reversed(nodes):  # topological order, read backwards
        if node.op_type == "Conv" or any(t in feeds_conv for t in node.output):
            feeds_conv.update(node.input)
    ends = [node.name for node in nodes if node.name and not any(t in feeds_conv for t in node.output)]
    return [*keep, *(name for name in ends if name not in keep)]


def main() -> int:
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=MODELS / "espcn_x3.onnx")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--data", type=Path, default=SHARED_DATA / "train")
    ap.add_argument("--eval", type=Path, default=SHARED_DATA / "eval")
    ap.add_argument(
        "--split-identity",
        action="store_true",
        help="take the identity out of convolutions that hold one (ECB models) "
        "before quantizing: see split_identity()",
    )
    ap.add_argument(
        "--keep-float",
        type=int,
        default=1,
        metavar="N",
        help="convolutions kept float at each end (default 1: the first and the last)",
    )
    args = ap.parse_args()
    out = args.out or args.model.with_name(args.model.stem + "_int8.onnx")
    src = onnx.load(str(args.model))
    meta = {p.key: p.value for p in src.metadata_props}
    keep_float = float_nodes(src, args.keep_float)
    scale = int(meta.get("vsr.scale", "3"))
    batches = calibration_batches(scale, args.data)

    class Reader(CalibrationDataReader):  # type: ignore[misc]  # onnxruntime has no types: Any
        def __init__(self) -> None:
            self.it = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.it, None)

    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "q.onnx"
        source = str(args.model)
        split: list[str] = []
        if args.split_identity:
            rewritten, split = split_identity(onnx.load(source))
            source = str(Path(tmp) / "split.onnx")
            onnx.save(rewritten, source)
        quantize_static(
            source,
            str(raw),
            Reader(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=True,
            nodes_to_exclude=keep_float,
        )
        q = onnx.load(str(raw))
    psnr = {
        name: psnr_of(args.model, scale, args.eval / name)
        for name in ("Set5", "Set14")
        if (args.eval / name).is_dir()
    }
    meta.update(
        {
            "vsr.precision": "int8 (static QDQ: per-channel 7-bit weights, MinMax-calibrated uint8 "
            f"activations; {', '.join(keep_float) or 'no layer'} kept float"
            + (f"; identity split out of {len(split)} convolutions as an Add" if split else "")
            + ")",
            "vsr.float_model": args.model.stem,
            "vsr.float_psnr": meta.get("vsr.psnr", "{}"),
            "vsr.quantize_command": "python scripts/models/quantize.py " + " ".join(sys.argv[1:]),
            "vsr.calibration": f"{len(batches)} LR crops of {args.data.name}",
        }
    )
    del q.metadata_props[:]
    onnx.helper.set_model_props(q, meta)
    onnx.save(q, str(out))
    from vsr.model import quant

    risky = quant.saturating_weights(out)
    if risky:
        raise SystemExit(f"{out}: weights {risky} exceed 7 bits and would saturate on AVX2 CPUs")
    qpsnr = {name: psnr_of(out, scale, args.eval / name) for name in psnr}
    with tempfile.TemporaryDirectory() as tmp:
        hard = hard_images.write_all(Path(tmp) / "hard")[0].parent
        qpsnr["hard"], psnr["hard"] = psnr_of(out, scale, hard), psnr_of(args.model, scale, hard)
    ratio = speedup(args.model, out)
    meta["vsr.psnr"] = json.dumps({k: v for k, v in qpsnr.items() if k != "hard"})
    meta["vsr.int8_speedup"] = f"{ratio:.2f}x the float model at 640x360 on {cpu_features()}"
    onnx.helper.set_model_props(q, meta)
    onnx.save(q, str(out))
    print(f"wrote {out}: PSNR {qpsnr} (float model {psnr}); {meta['vsr.int8_speedup']}")
    worst = max(psnr[k] - qpsnr[k] for k in ("Set5", "Set14") if k in psnr) if len(psnr) > 1 else 0.0
    missed = misses(worst, ratio)
    if missed:
        print(f"warning: misses the ship rule on this CPU: {'; '.join(missed)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
