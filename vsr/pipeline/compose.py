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
from fractions import Fraction
from typing import Any

import cv2

from ..channel import Channel
from ..frames import Frame, Item, Picture
from ..media import pixfmt
from ..media.captions import attach_a53
from ..media.color import bgr_to_frame, frame_to_bgr, merge_planes, merge_upscaled, pad_to_even
from ..media.resolution import Reference, fit_region, letterbox, resample
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
        reference: the first frame's geometry, which `picture_size` was made for; a frame
            of another size or pixel aspect (`Frame.sar` set) is fitted into the picture by
            it, its aspect kept (`media.resolution`). None: such frames are stretched.
    """

    native: bool
    src_depth: int
    picture_size: tuple[int, int]
    encode: EncodeFormat | None
    reference: Reference | None = None


@dataclass
class ComposeCounters:
    """Written by the compose thread, read by the pipeline after it ends."""

    frames: int = 0
    color_seconds: float = 0.0
    # Preview-only runs end here: seconds from decode to preview of the recent frames.
    latencies: collections.deque[float] = field(default_factory=lambda: collections.deque(maxlen=100_000))


def _fit(y: Any, chroma: Any, sar: Fraction | None, spec: ComposeSpec) -> tuple[Any, Any]:
    """The upscaled luma at the picture's size, and the chroma to merge with it.

    A frame of the first frame's geometry (`sar` None) fills the picture: its luma is
    resampled to it (for --square-pixels and --width/--height) and its chroma is merged as
    it is. A frame of another size or pixel aspect is fitted into the picture with its
    display aspect kept (`resolution.fit_region`), luma and chroma alike, and the rest is
    black: luma 0 (full range), chroma at its neutral code.
    """
    size = spec.picture_size
    ref = spec.reference
    if sar is None or ref is None:
        return resample(y, size), chroma
    out_layout = pixfmt.layout_of(spec.encode.pix_fmt) if spec.encode is not None else None
    even = (bool(out_layout.sub_w), bool(out_layout.sub_h)) if out_layout is not None else (False, False)
    region = fit_region(ref, y.shape[1], y.shape[0], sar, even)
    y_pic = letterbox(y, size, region, 0)
    if spec.native and out_layout is not None:
        # Planar chroma: placed at the output's chroma resolution, where merge_planes leaves it.
        x, top, w, h = region
        sw, sh = out_layout.sub_w, out_layout.sub_h
        cw, ch = out_layout.chroma_size(w, h)
        c_region = (x >> sw, top >> sh, cw, ch)
        c_size = out_layout.chroma_size(*size)
        return y_pic, letterbox(chroma, c_size, c_region, 1 << (spec.src_depth - 1))
    return y_pic, letterbox(chroma, size, region, 128)  # YCrCb at the picture's size


def _before(preview: PreviewServer, item: Frame, spec: ComposeSpec, to_bgr: Callable[[Any, Any], Any]) -> Any:
    """The bicubic picture of the same frame, for the preview's split view: made only while
    someone watches it, by the same colour path as the upscaled one, so that the two halves
    differ by the model's luma alone."""
    if not preview.split_viewers or item.source_y is None:
        return None
    h, w = item.y.shape
    bicubic = cv2.resize(item.source_y, (w, h), interpolation=cv2.INTER_CUBIC)
    return to_bgr(*_fit(bicubic, item.crcb, item.sar, spec))


def run_compose(
    inp: Channel[Item],
    outp: Channel[Item],
    spec: ComposeSpec,
    *,
    counters: ComposeCounters,
    preview: PreviewServer | None = None,
) -> None:
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
        y, chroma = _fit(item.y, item.crcb, item.sar, spec)
        if enc is not None and spec.native:
            vf = merge_planes(y, chroma, spec.src_depth, enc.pix_fmt, enc.color_range == 2, enc.padded)
            if preview is not None:
                preview.publish(
                    frame_to_bgr(vf),
                    _before(
                        preview,
                        item,
                        spec,
                        lambda yb, c: frame_to_bgr(
                            merge_planes(yb, c, spec.src_depth, enc.pix_fmt, enc.color_range == 2, enc.padded)
                        ),
                    ),
                )
        else:
            bgr = merge_upscaled(y, chroma)
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
