"""Tiling: how a batch of luma planes is cut into model calls, and stitched back.

Pure functions, run in the model stage's thread (and by the image API). Whole frames are run
in chunks of at most a pixel budget per call; a model with a fixed input size (the zoo's
224x224), an explicit tile size, or a frame over the budget is run tile by tile, the tiles of
every frame in the batch going through the model's dynamic N axis together. Every kept pixel
of a tile has as many pixels of real context as the model's receptive field reaches
(`receptive_radius`, at least `TILE_OVERLAP`), or lies on the frame's own border, so the
result is the whole-frame result (tests/test_model.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

#: LR pixels of context each tile keeps on every side it shares with another tile, at least.
#: ESPCN's receptive field reaches 5 pixels (5x5 + three 3x3 convolutions); 8 leaves margin
#: while costing little. A deeper model gets its own reach (`receptive_radius`): the quality
#: tier's fourteen 3x3 convolutions see 14 pixels, and with 8 its strips differed from the
#: whole frame by one level at a few pixels near each seam.
TILE_OVERLAP = 8

#: One model call: uint8 (or uint16) [n, 1, h, w] -> the same dtype [n, 1, s*h, s*w].
Infer = Callable[[npt.NDArray[Any]], npt.NDArray[Any]]


@dataclass(frozen=True)
class Tile:
    """One tile: where its input window starts and which part of its output is kept."""

    y0: int  # input window origin, in LR pixels
    x0: int
    keep_y0: int  # kept region, in LR pixels of the frame
    keep_y1: int
    keep_x0: int
    keep_x1: int


def receptive_radius(path: str | Path) -> int | None:
    """How many LR pixels away a model's output still depends on its input, read from the
    graph: each convolution adds dilation * (k - 1) / 2 (rounded up) to the reach of its
    input, one run at HR resolution (after DepthToSpace) a 1/scale of that; where paths join
    (Add), the longer reach counts. None when the graph cannot be read (no `onnx` package) or
    holds an operation this does not know to be local.

    Why from the graph: the overlap must cover the receptive field for tiles to stitch into
    exactly the whole-frame result, and it differs by 3x between the family's tiers. Why per
    tensor, not per node in file order: a branch (the quality tier's refinement branch leaves
    the LR features for HR) has its own resolution and reach, whatever order its nodes are
    written in."""
    try:
        import onnx
    except ImportError:
        return None
    g = onnx.load(str(path), load_external_data=False).graph
    shapes = {i.name: list(i.dims) for i in g.initializer}
    # An int8 model's weights come through a DequantizeLinear: its input has the shape.
    shapes.update(
        {
            n.output[0]: shapes[n.input[0]]
            for n in g.node
            if n.op_type == "DequantizeLinear" and n.input[0] in shapes
        }
    )
    local = {
        "Relu",
        "PRelu",
        "LeakyRelu",
        "Add",
        "Sub",
        "Mul",
        "Div",
        "Clip",
        "Sigmoid",
        "Tanh",
        "Cast",
        "Identity",
        "QuantizeLinear",
        "DequantizeLinear",
        "Constant",
        "Round",
        "Max",
        "Min",
    }
    # tensor -> (reach in LR pixels, how many times the input's resolution it is at)
    at: dict[str, tuple[float, int]] = {i.name: (0.0, 1) for i in g.input}
    for node in g.node:  # ONNX graphs are stored in topological order
        known = [at[t] for t in node.input if t in at]  # weights and constants carry no reach
        reach = max((r for r, _ in known), default=0.0)
        upscaled = max((u for _, u in known), default=1)
        if node.op_type in ("Conv", "ConvTranspose"):
            attrs = {a.name: list(a.ints) for a in node.attribute}
            if any(v != 1 for v in attrs.get("strides", [])):
                return None
            kernel = attrs.get("kernel_shape") or shapes.get(node.input[1], [])[2:]
            if not kernel:
                return None  # a reach not known is not taken as none
            dil = attrs.get("dilations") or [1] * len(kernel)
            reach += max(math.ceil(d * (k - 1) / 2) for k, d in zip(kernel, dil, strict=True)) / upscaled
        elif node.op_type == "DepthToSpace":
            upscaled *= next((a.i for a in node.attribute if a.name == "blocksize"), 1)
        elif node.op_type not in local:
            return None
        if known:
            at.update({t: (reach, upscaled) for t in node.output})
    outputs = [at[o.name] for o in g.output if o.name in at]
    return math.ceil(max(r for r, _ in outputs)) if outputs else None


def tile_grid(h: int, w: int, tile_h: int, tile_w: int, overlap: int = TILE_OVERLAP) -> list[Tile]:
    """Cover an (h, w) frame (at least tile-sized) with tile windows.

    Windows overlap by `2 * overlap` and are clamped inside the frame, so every kept pixel
    has `overlap` pixels of real context, or lies on the frame's own border where the model
    sees exactly what it sees on a whole frame. Kept regions partition the frame.
    """
    ys = _starts(h, tile_h, overlap)
    xs = _starts(w, tile_w, overlap)
    tiles = []
    for i, y0 in enumerate(ys):
        ky0 = 0 if i == 0 else (ys[i - 1] + tile_h + y0) // 2
        ky1 = h if i == len(ys) - 1 else (y0 + tile_h + ys[i + 1]) // 2
        for j, x0 in enumerate(xs):
            kx0 = 0 if j == 0 else (xs[j - 1] + tile_w + x0) // 2
            kx1 = w if j == len(xs) - 1 else (x0 + tile_w + xs[j + 1]) // 2
            tiles.append(Tile(y0, x0, ky0, ky1, kx0, kx1))
    return tiles


def _starts(n: int, t: int, overlap: int) -> list[int]:
    if n <= t:
        return [0]
    step = t - 2 * overlap
    if step <= 0:
        raise ValueError(f"tile size {t} too small for overlap {overlap}")
    count = 1 + math.ceil((n - t) / step)
    # Spread the windows evenly between 0 and n - t.
    return [round(k * (n - t) / (count - 1)) for k in range(count)]


def upscale_planes(
    y: npt.NDArray[Any],
    infer: Infer,
    scale: int,
    *,
    fixed: tuple[int, int] | None,
    tile: int,
    max_run_pixels: int,
    overlap: int | Callable[[], int] = TILE_OVERLAP,
) -> npt.NDArray[Any]:
    """Upscale (N, H, W) luma to (N, sH, sW) through `infer`, one model call at a time.

    Args:
        y: (N, H, W) uint8 luma, or uint16 (0..65535) for high bit depth.
        infer: one model call.
        scale: the model's scale s.
        fixed: the model's fixed input (height, width), None when it takes any size.
        tile: tile edge for a model of any size (0: whole frames, in strips when large).
        max_run_pixels: input pixels per call at most: bigger frames run in whole-width
            strips, bigger batches in chunks of frames.
        overlap: LR pixels of context a tile keeps on each shared side (the model's reach),
            or what gives it, asked only when the frame is tiled (reading it can be dear).
    """
    n, h, w = y.shape
    tile_hw = fixed or ((tile, tile) if tile else None)
    if tile_hw is None and h * w <= max_run_pixels:
        per_run = max(1, max_run_pixels // (h * w))
        outs = [infer(y[i : i + per_run, None])[:, 0] for i in range(0, n, per_run)]
        return outs[0] if len(outs) == 1 else np.concatenate(outs)
    reach = overlap() if callable(overlap) else overlap
    if tile_hw is None:
        # Whole-width strips: one run's activations (64 float32 channels per pixel, a
        # few layers deep) are what makes the memory peak, so bound the pixels per run.
        tile_hw = (min(h, max(4 * reach, max_run_pixels // w)), w)
    return _tiled(y, infer, scale, tile_hw, fixed is not None, max_run_pixels, reach)


def _tiled(
    y: npt.NDArray[Any],
    infer: Infer,
    scale: int,
    tile_hw: tuple[int, int],
    fixed: bool,
    max_run_pixels: int,
    overlap: int,
) -> npt.NDArray[Any]:
    th, tw = tile_hw
    n, h, w = y.shape
    s = scale
    # Frames smaller than a fixed tile are padded by edge reflection (the model cannot
    # see the true border then, which only matters for the outermost pixels).
    ph, pw = max(0, th - h), max(0, tw - w)
    src = (
        y
        if not (ph or pw)
        else np.pad(y, ((0, 0), (0, ph), (0, pw)), mode="reflect" if min(h, w) > 1 else "edge")
    )
    H, W = src.shape[1:]
    if not fixed:
        th, tw = min(th, H), min(tw, W)
    jobs = [(i, t) for i in range(n) for t in tile_grid(H, W, th, tw, overlap)]
    per_run = max(1, max_run_pixels // (th * tw))  # all tiles of all frames, in chunks
    # uint8 per pixel is the same whether converted before or after stitching.
    hr = np.empty((n, H * s, W * s), y.dtype)
    for c in range(0, len(jobs), per_run):
        chunk = jobs[c : c + per_run]
        x = np.empty((len(chunk), 1, th, tw), y.dtype)
        for k, (i, t) in enumerate(chunk):
            x[k, 0] = src[i, t.y0 : t.y0 + th, t.x0 : t.x0 + tw]
        out = infer(x)
        for k, (i, t) in enumerate(chunk):
            hr[i, t.keep_y0 * s : t.keep_y1 * s, t.keep_x0 * s : t.keep_x1 * s] = out[
                k,
                0,
                (t.keep_y0 - t.y0) * s : (t.keep_y1 - t.y0) * s,
                (t.keep_x0 - t.x0) * s : (t.keep_x1 - t.x0) * s,
            ]
    return hr if (ph, pw) == (0, 0) else np.ascontiguousarray(hr[:, : h * s, : w * s])
