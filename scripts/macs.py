#!/usr/bin/env python3
"""Count a super-resolution model's convolution cost: multiply-accumulates per INPUT pixel.

    python scripts/macs.py models/espcn_x3.onnx [more.onnx ...]

The cost is read from the exported graph, not from the training code, so it is the cost of
what vsr actually runs. Only `Conv` (and `ConvTranspose`) nodes are counted: in these models
everything else (Relu, Add, DepthToSpace, the runtime's Cast/Mul/Clip/Round) is a few
operations per pixel against thousands for the convolutions. A convolution contributes
Cout * Cin/groups * kh * kw per pixel of ITS OUTPUT, scaled by that output's area relative to
the model input, so a layer after `DepthToSpace` (output at r*r times the input area) counts
r*r times as much as one at LR resolution. The spatial sizes come from ONNX shape inference
with the dynamic height/width fixed to a probe size (divisible by 2, 3 and 4); a fixed-size
model keeps its own size. Weights may be initializers or computed (e.g. the int8 model's
`DequantizeLinear` outputs): their shapes come from shape inference as well.

For `models/espcn_x3.onnx`: 1*64*5*5 + 64*64*3*3 + 64*32*3*3 + 32*9*3*3 = 59,488.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

PROBE = 48  # stand-in for dynamic height/width: divisible by 2, 3, 4 (and 6, 8, 12, ...)


def _dims(vi) -> list[int]:  # type: ignore[no-untyped-def]
    return [d.dim_value if d.HasField("dim_value") else -1 for d in vi.type.tensor_type.shape.dim]


def conv_macs_per_pixel(path: str | Path) -> float:
    """Conv multiply-accumulates per pixel of the model's (LR) input, from the ONNX graph.

    Raises:
        ValueError: the model has not exactly one input, or a Conv's shapes cannot be inferred.
    """
    import onnx
    from onnx import shape_inference

    m = onnx.load(str(path))
    g = m.graph
    init_names = {i.name for i in g.initializer}
    inputs = [i for i in g.input if i.name not in init_names]
    if len(inputs) != 1:
        raise ValueError(f"{path}: expected one input, found {len(inputs)}")
    dims = inputs[0].type.tensor_type.shape.dim
    for k, d in enumerate(dims):
        if not d.HasField("dim_value") or d.dim_value <= 0:
            d.Clear()
            d.dim_value = 1 if k == 0 else PROBE
    in_h, in_w = _dims(inputs[0])[-2:]
    inferred = shape_inference.infer_shapes(m)
    shapes = {vi.name: _dims(vi) for vi in [*inferred.graph.value_info, *inferred.graph.input,
                                           *inferred.graph.output]}
    shapes.update({i.name: list(i.dims) for i in g.initializer})
    total = 0.0
    for node in g.node:
        if node.op_type not in ("Conv", "ConvTranspose"):
            continue
        w = shapes.get(node.input[1])
        y = shapes.get(node.output[0])
        if not w or not y or min(w) <= 0 or len(y) < 3 or min(y[2:]) <= 0:
            raise ValueError(f"{path}: cannot infer the shapes of {node.op_type} {node.name!r}")
        # `group` needs no factor: the weight shape already holds Cin/groups (or Cout/groups).
        if node.op_type == "Conv":  # W: [Cout, Cin/groups, k...]; cost per output pixel
            per_px = w[0] * w[1] * math.prod(w[2:])
            area = math.prod(y[2:])
        else:  # ConvTranspose W: [Cin, Cout/groups, k...]; cost per input pixel
            per_px = w[0] * w[1] * math.prod(w[2:])
            x = shapes.get(node.input[0])
            if not x or min(x[2:]) <= 0:
                raise ValueError(f"{path}: cannot infer the input shape of {node.name!r}")
            area = math.prod(x[2:])
        total += per_px * area / (in_h * in_w)
    return total


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="+", type=Path)
    args = ap.parse_args(argv)
    for path in args.models:
        print(f"{conv_macs_per_pixel(path):12,.0f}  {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
