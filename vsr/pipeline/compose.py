"""The compose stage (thread "vsr-compose"): upscaled luma + source chroma -> encoder frames.

It sits between the model and the encoder so that the colour work (chroma upscaling, range
and pixel-format conversion) overlaps with encoding instead of adding to it: on a GPU, where
the model is fast, one thread doing both was the limit. It reads what the encoder takes (pixel
format, range, padding) from the output's frozen `EncodeFormat`, never the output's container,
which the sink thread owns.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2

from ..channel import Channel
from ..frames import Frame, Item, Picture
from ..media.captions import attach_a53
from ..media.color import bgr_to_frame, frame_to_bgr, merge_planes, merge_upscaled, pad_to_even
from ..media.video_stream import EncodeFormat
from .preview import PreviewServer


@dataclass(frozen=True)
class ComposeSpec:
    """How the compose stage turns frames into pictures, decided once by the pipeline.

    Attributes:
        native: frames carry planar YUV (luma + chroma planes), else YCrCb from BGR.
        src_depth: bits per chroma sample of the input (native path).
        picture_size: (width, height) of the picture before padding; differs from the
            model's output for --square-pixels (luma resampled horizontally) and for
            --width/--height.
        encode: what the encoder takes; None for a live preview without an output (then
            frames only go to the preview, and the sink gets nothing but the end of stream).
    """

    native: bool
    src_depth: int
    picture_size: tuple[int, int]
    encode: EncodeFormat | None


@dataclass
class ComposeCounters:
    """Written by the compose thread, read by the pipeline after it ends."""

    frames: int = 0
    color_seconds: float = 0.0
    # Preview-only runs end here: seconds from decode to preview of the recent frames.
    latencies: collections.deque[float] = field(default_factory=lambda: collections.deque(maxlen=100_000))


def _picture_luma(y: Any, spec: ComposeSpec) -> Any:
    """The upscaled luma at the picture's size (resampled for --square-pixels and
    --width/--height): averaged over its area where it shrinks both ways (bicubic would
    alias the detail the model made), bicubic otherwise."""
    w, h = spec.picture_size
    if (w, h) == (y.shape[1], y.shape[0]):
        return y
    shrink = w <= y.shape[1] and h <= y.shape[0]
    return cv2.resize(y, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def _before(preview: PreviewServer, item: Frame, spec: ComposeSpec,
            to_bgr: Callable[[Any, Any], Any]) -> Any:
    """The bicubic picture of the same frame, for the preview's split view: made only while
    someone watches it, by the same colour path as the upscaled one, so that the two halves
    differ by the model's luma alone."""
    if not preview.split_viewers or item.source_y is None:
        return None
    h, w = item.y.shape
    bicubic = cv2.resize(item.source_y, (w, h), interpolation=cv2.INTER_CUBIC)
    return to_bgr(_picture_luma(bicubic, spec), item.crcb)


def run_compose(inp: Channel[Item], outp: Channel[Item], spec: ComposeSpec, *,
                counters: ComposeCounters, preview: PreviewServer | None = None) -> None:
    """Turn every Frame into a Picture ready to encode; other items pass straight through.

    Args:
        inp: upscaled Frames and passthrough items.
        outp: Pictures and passthrough items, for the sink.
        spec: the colour path and what the encoder takes (`spec.encode` None: preview only).
        counters: frames composed, colour time, and (preview only) latencies.
        preview: the live preview to publish every picture to, if any.
    """
    enc = spec.encode
    for item in inp:
        if not isinstance(item, Frame):
            if enc is not None:
                outp.put(item)
            continue
        t0 = time.perf_counter()
        y = _picture_luma(item.y, spec)
        if enc is not None and spec.native:
            vf = merge_planes(y, item.crcb, spec.src_depth, enc.pix_fmt, enc.color_range == 2, enc.padded)
            if preview is not None:
                preview.publish(frame_to_bgr(vf), _before(preview, item, spec, lambda yb, c: frame_to_bgr(
                    merge_planes(yb, c, spec.src_depth, enc.pix_fmt, enc.color_range == 2, enc.padded))))
        else:
            bgr = merge_upscaled(y, item.crcb)
            if preview is not None:
                preview.publish(bgr, _before(preview, item, spec, merge_upscaled))
            if enc is None:
                counters.color_seconds += time.perf_counter() - t0
                counters.frames += 1
                counters.latencies.append(time.monotonic() - item.captured)
                continue
            if enc.padded:
                bgr = pad_to_even(bgr)
            vf = bgr_to_frame(bgr, enc.pix_fmt, enc.colorspace, enc.color_range)
        if not enc.is_image:
            vf.pts = item.pts
            vf.time_base = item.time_base
            if item.captions is not None and enc.captions:
                attach_a53(vf, item.captions)
        counters.color_seconds += time.perf_counter() - t0
        counters.frames += 1
        outp.put(Picture(item.index, item.captured, vf))
    outp.close()
