#!/usr/bin/env python3
"""Count a super-resolution model's convolution cost: multiply-accumulates per INPUT pixel
(the counting itself is `vsr.model.cost.conv_macs_per_pixel`, which `vsr models` uses too).

    python scripts/models/macs.py models/espcn_x3.onnx [more.onnx ...]

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
from pathlib import Path

from vsr.model.cost import conv_macs_per_pixel


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="+", type=Path)
    args = ap.parse_args(argv)
    for path in args.models:
        print(f"{conv_macs_per_pixel(path):12,.0f}  {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
