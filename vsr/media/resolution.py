"""Frames whose size changes mid-stream: noticed by the source threads (`SizeWatch`), fitted
into the output picture by the compose stage (`fit_region`, `letterbox`).

Why: adaptive streams ramp from 360p to 1080p, cameras switch modes, and joined recordings
differ. The output's size is fixed when it is opened (from the first frame), but shrinking a
1080p frame to 360p before the model throws its detail away, and stretching a 4:3 frame
into 16:9 distorts it. So every frame goes through the model at its own size, and only then
is fitted into the output picture the way the first frame fills it: its display aspect kept
(pixel aspect ratio included), the rest padded black. A frame of the first size takes the
same path as ever.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

#: Size changes logged one by one; past this many, they are only counted (a damaged stream can
#: change size at every frame).
LOGGED_CHANGES = 20


def _positive(value: Any) -> Fraction | None:
    return Fraction(value) if value and value > 0 else None


class SizeWatch:
    """Notices when decoded frames change size or pixel aspect (one log line per change) and
    shrinks frames beyond the pixel budget (a damaged or hostile stream can declare any
    size) to fit it.

    PyAV's frames do not carry their pixel aspect ratio; the decoder's context does, and
    follows the bitstream (a new H.264 SPS). Until it changes, the input's own (which the
    container may say instead: Matroska) holds.

    Args:
        width, height, sar: the first frame's geometry (`VideoInfo`), which the output was
            made for.
        max_pixels: the input pixel budget (0: none).
        stream: the decoded video stream (its codec context's aspect ratio is watched).
    """

    def __init__(self, width: int, height: int, sar: Fraction, max_pixels: int, stream: Any) -> None:
        self.first = (width, height, sar)
        self.current = (width, height, sar)
        self.max_pixels = max_pixels
        self.changes = 0
        self._watch(stream)

    def _watch(self, stream: Any) -> None:
        self.stream = stream
        self.initial = _positive(stream.codec_context.sample_aspect_ratio)

    def sar(self) -> Fraction:
        """The pixel aspect ratio of the frame just decoded."""
        now = _positive(self.stream.codec_context.sample_aspect_ratio)
        return self.first[2] if now == self.initial else (now or Fraction(1))

    def check(self, frame: Any, when: float | None, stream: Any = None) -> tuple[Any, Fraction | None]:
        """The frame to upscale (`frame`, or shrunk into the budget) and its pixel aspect
        ratio when its geometry is not the first frame's (None when it is). `stream`: the
        stream it came from, when not the first one's (a live reconnection)."""
        if stream is not None and stream is not self.stream:
            self._watch(stream)
        geometry = (frame.width, frame.height, self.sar())
        if geometry != self.current:
            self.changes += 1
            old = self.current
            self.current = geometry
            at = f" at {when:.3f}s" if when is not None else ""
            if self.changes <= LOGGED_CHANGES:
                log.warning(
                    "the input's picture changes from %s to %s%s: upscaled at its own "
                    "size, then fitted into the output picture with its aspect kept",
                    _describe(*old),
                    _describe(*geometry),
                    at,
                )
                if self.changes == LOGGED_CHANGES:
                    log.warning("the input keeps changing size: further changes are counted, not logged")
        w, h, sar = geometry
        if self.max_pixels and w * h > self.max_pixels:
            k = math.sqrt(self.max_pixels / (w * h))
            nw, nh = max(2, int(w * k) // 2 * 2), max(2, int(h * k) // 2 * 2)
            if self.changes <= LOGGED_CHANGES:
                log.warning(
                    "a %dx%d frame is beyond the pixel budget of %d: shrunk to %dx%d before the model",
                    w,
                    h,
                    self.max_pixels,
                    nw,
                    nh,
                )
            sar = sar * Fraction(w * nh, h * nw)  # the same display aspect
            frame = frame.reformat(width=nw, height=nh)
            w, h = nw, nh
        if (w, h, sar) == self.first:
            return frame, None
        return frame, sar


def _describe(w: int, h: int, sar: Fraction) -> str:
    return f"{w}x{h}" + (f" (pixel aspect {sar})" if sar != 1 else "")


@dataclass(frozen=True)
class Reference:
    """The input geometry the output picture was made for: the first frame's size and pixel
    aspect ratio, and the picture (before padding) the compose stage makes of it."""

    width: int
    height: int
    sar: Fraction
    picture: tuple[int, int]


def fit_region(
    ref: Reference, width: int, height: int, sar: Fraction, even: tuple[bool, bool] = (False, False)
) -> tuple[int, int, int, int]:
    """Where a `width` x `height` frame with pixel aspect `sar` goes in the output picture:
    (x, y, w, h) in picture pixels.

    The picture shows the first frame's display rectangle (`ref`: its width x SAR by its
    height), however --width/--height/--square-pixels mapped it; the frame's own display
    rectangle is scaled to fit inside that one, centred, and mapped the same way.
    `even`: (horizontal, vertical) sizes and offsets must be even (subsampled chroma).
    """
    pw, ph = ref.picture
    ref_dw, ref_dh = ref.width * ref.sar, Fraction(ref.height)
    dw, dh = width * sar, Fraction(height)
    k = min(ref_dw / dw, ref_dh / dh)
    rw = pw * (dw * k) / ref_dw
    rh = ph * (dh * k) / ref_dh

    def side(exact: Fraction, full: int, needs_even: bool) -> int:
        step = 2 if needs_even else 1
        return min(full, max(step, round(exact / step) * step))

    w, h = side(rw, pw, even[0]), side(rh, ph, even[1])
    x = (pw - w) // 2 // (2 if even[0] else 1) * (2 if even[0] else 1)
    y = (ph - h) // 2 // (2 if even[1] else 1) * (2 if even[1] else 1)
    return x, y, w, h


def resample(plane: npt.NDArray[Any], size: tuple[int, int]) -> npt.NDArray[Any]:
    """A plane resampled to (width, height): averaged over area where it shrinks both ways
    (bicubic would alias the detail the model made), bicubic otherwise."""
    w, h = size
    if (w, h) == (plane.shape[1], plane.shape[0]):
        return plane
    shrink = w <= plane.shape[1] and h <= plane.shape[0]
    out: npt.NDArray[Any] = cv2.resize(
        plane, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
    )
    return out


def letterbox(
    plane: npt.NDArray[Any], size: tuple[int, int], region: tuple[int, int, int, int], fill: int
) -> npt.NDArray[Any]:
    """`plane` resampled into `region` (x, y, w, h) of a new (height, width[, channels])
    plane of `size` (width, height), the rest `fill` (black luma, neutral chroma)."""
    x, y, w, h = region
    out = np.full((size[1], size[0], *plane.shape[2:]), fill, plane.dtype)
    out[y : y + h, x : x + w] = resample(plane, (w, h)).reshape(h, w, *plane.shape[2:])
    return out
