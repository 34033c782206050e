"""What a model costs: convolution multiply-accumulates per input pixel, read from its graph,
and milliseconds per output megapixel, measured on this machine.

Why both: MACs are the cost that travels (the same on every machine, what the model family's
tiers are defined by); milliseconds are what a user waits for here, where the engine, the
CPU's instruction set and int8 kernels decide how MACs turn into time.
"""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

PROBE = 48  # stand-in for dynamic height/width: divisible by 2, 3, 4 (and 6, 8, 12, ...)


def _dims(vi: Any) -> list[int]:
    return [d.dim_value if d.HasField("dim_value") else -1 for d in vi.type.tensor_type.shape.dim]


def conv_macs_per_pixel(path: str | Path) -> float:
    """Conv multiply-accumulates per pixel of the model's (LR) input, from the ONNX graph.

    Only `Conv` and `ConvTranspose` count: everything else in these models (Relu, Add,
    DepthToSpace, the runtime's casts) is a few operations per pixel against thousands. A
    convolution costs Cout * Cin/groups * kh * kw per pixel of its output, scaled by that
    output's area relative to the model input (a layer after DepthToSpace counts r*r times).
    Spatial sizes come from ONNX shape inference with dynamic sizes fixed to a probe size.
    For espcn_x3: 1*64*5*5 + 64*64*3*3 + 64*32*3*3 + 32*9*3*3 = 59,488.

    Raises:
        ImportError: the `onnx` package is missing.
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
    for k, d in enumerate(inputs[0].type.tensor_type.shape.dim):
        if not d.HasField("dim_value") or d.dim_value <= 0:
            d.Clear()
            d.dim_value = 1 if k == 0 else PROBE
    in_h, in_w = _dims(inputs[0])[-2:]
    inferred = shape_inference.infer_shapes(m)
    shapes = {
        vi.name: _dims(vi)
        for vi in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]
    }
    shapes.update({i.name: list(i.dims) for i in g.initializer})
    total = 0.0
    for node in g.node:
        if node.op_type not in ("Conv", "ConvTranspose"):
            continue
        w, y = shapes.get(node.input[1]), shapes.get(node.output[0])
        if not w or not y or min(w) <= 0 or len(y) < 3 or min(y[2:]) <= 0:
            raise ValueError(f"{path}: cannot infer the shapes of {node.op_type} {node.name!r}")
        per_px = w[0] * w[1] * math.prod(w[2:])  # the weight shape already holds Cin/groups
        if node.op_type == "Conv":
            area = math.prod(y[2:])  # cost per output pixel
        else:
            x = shapes.get(node.input[0])
            if not x or min(x[2:]) <= 0:
                raise ValueError(f"{path}: cannot infer the input shape of {node.name!r}")
            area = math.prod(x[2:])  # ConvTranspose: cost per input pixel
        total += per_px * area / (in_h * in_w)
    return total


#: Frame sizes `vsr models` times on, largest first, and the most work (MACs) a call may take.
TIMING_SIZES = ((160, 120), (96, 72), (64, 48))
TIMING_WORK = 2e9


def timing_size(macs_per_pixel: float) -> tuple[int, int]:
    """The frame to time a model on: the largest of `TIMING_SIZES` whose call costs at most
    `TIMING_WORK` (the smallest for dearer models).

    Why: at 160x120 the quality tier takes a second a model (8 of `vsr models`' 9 s on two
    cores), while its figure per megapixel moves by under 5% down to 64x48 (1190 / 1201 / 1178
    ms for quality_x3 here); cheap models keep 160x120, where a call's fixed cost stays small
    (fast_x3: 43 ms at 160x120, 49 at 64x48)."""
    for w, h in TIMING_SIZES:
        if w * h * macs_per_pixel <= TIMING_WORK:
            return w, h
    return TIMING_SIZES[-1]


def ms_per_output_megapixel(upscaler: Any, size: tuple[int, int] = (160, 120), runs: int = 3) -> float:
    """Median milliseconds per output megapixel of `upscaler` on a (width, height) frame of
    blurred noise, after one warm-up call."""
    import cv2

    w, h = size
    y = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 256, (h, w), dtype=np.uint8), (5, 5), 2)[None]
    upscaler(y)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        out = upscaler(y)
        times.append(time.perf_counter() - t0)
    return float(statistics.median(times) * 1000 / (out.size / 1e6))
