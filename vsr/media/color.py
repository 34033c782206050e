"""Colour conversions as pure functions (called from the decoder and encoder threads).

The model card's recipe: the network sees full-range BT.601 luma (OpenCV's YCrCb, the same
matrix as Pillow's YCbCr that the training protocol uses); chroma is upscaled bicubically
and merged back. OpenCV releases the GIL in `cvtColor` and `resize`, so these run in
parallel with the model.
"""

from __future__ import annotations

import functools
from typing import Any, TypeAlias

import av
import cv2
import numpy as np
import numpy.typing as npt
from av.video.reformatter import ColorRange, Colorspace, Interpolation

from ..frames import MatrixTag
from . import pixfmt

# swscale's defaults round YUV<->RGB towards zero and interpolate 4:2:0 chroma crudely:
# a decode/encode round trip came out 1-2.5 levels darker. ACCURATE_RND fixes the encode
# side; FULL_CHR_H_INT the decode side (measured: mean error 0.0 instead of -0.5 to -2.6).
_DECODE_FLAGS = Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
_ENCODE_FLAGS = Interpolation.BILINEAR | Interpolation.ACCURATE_RND

#: An 8-bit picture as OpenCV holds it: (H, W, 3) BGR, or (H, W) grey. One name for the
#: colour code, `vsr compare`'s panels and the lab's made-up images.
Image: TypeAlias = npt.NDArray[np.uint8]


def split_ycrcb(bgr: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """Split a (H, W, 3) BGR image into Y (H, W) and CrCb (H, W, 2), both contiguous."""
    ycrcb = cv2.cvtColor(bgr, cv2.COLOR_BGR2YCrCb)
    return np.ascontiguousarray(ycrcb[:, :, 0]), np.ascontiguousarray(ycrcb[:, :, 1:])


def merge_upscaled(y_hr: npt.NDArray[np.uint8], crcb: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Bicubically upscale CrCb to Y's size and convert back to a (sH, sW, 3) BGR image."""
    h, w = y_hr.shape
    # cv2.resize takes dsize as (width, height).
    crcb_hr = cv2.resize(crcb, (w, h), interpolation=cv2.INTER_CUBIC)
    ycrcb = np.empty((h, w, 3), np.uint8)
    ycrcb[:, :, 0] = y_hr
    ycrcb[:, :, 1:] = crcb_hr
    bgr: npt.NDArray[np.uint8] = cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2BGR)  # type: ignore[assignment]  # cv2: MatLike
    return bgr


def pad_to_even(bgr: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Replicate the last row/column where a dimension is odd (4:2:0 encoders need even sizes)."""
    h, w = bgr.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return bgr
    padded: npt.NDArray[np.uint8] = cv2.copyMakeBorder(  # type: ignore[assignment]  # cv2: MatLike, uint8 kept
        bgr, 0, h % 2, 0, w % 2, cv2.BORDER_REPLICATE
    )
    return padded


# The swscale matrix for each matrix tag it has one for; anything else (unspecified, RGB,
# ...) converts with swscale's default (BT.601), which is also what decoding assumed.
# (PyAV reads a plain number here as SWS_CS_*: SMPTE 170M's tag 6 and BT.2020 CL's 10
# were no matrix to it, so BT.2020 CL converted as BT.601 and 170M output went untagged.)
_SWS_MATRICES: dict[int, Colorspace] = {
    MatrixTag.BT709: Colorspace.ITU709,
    MatrixTag.FCC: Colorspace.FCC,
    MatrixTag.BT470BG: Colorspace.ITU601,
    MatrixTag.SMPTE170M: Colorspace.SMPTE170M,
    MatrixTag.SMPTE240M: Colorspace.SMPTE240M,
    MatrixTag.BT2020_NCL: Colorspace.BT2020,
    MatrixTag.BT2020_CL: Colorspace.BT2020,
}


def sws_colorspace(tag: int) -> Colorspace | None:
    """The swscale matrix for an AVColorSpace tag (`MatrixTag`), or None for swscale's default."""
    return _SWS_MATRICES.get(tag)


def frame_to_bgr(frame: Any) -> npt.NDArray[np.uint8]:
    """A decoded av.VideoFrame as (H, W, 3) BGR, honouring its colour matrix and range."""
    bgr: npt.NDArray[np.uint8] = frame.to_ndarray(format="bgr24", interpolation=_DECODE_FLAGS)
    return bgr


def bgr_to_frame(
    bgr: npt.NDArray[np.uint8], pix_fmt: str, colorspace: Colorspace | None, color_range: ColorRange | None
) -> Any:
    """A (H, W, 3) BGR image as an av.VideoFrame in the encoder's pixel format and matrix."""
    vf = av.VideoFrame.from_ndarray(bgr, format="bgr24")
    if pix_fmt != "bgr24":
        vf = vf.reformat(
            format=pix_fmt,
            dst_colorspace=colorspace,
            dst_color_range=color_range,
            interpolation=_ENCODE_FLAGS,
        )
    if color_range is not None:
        vf.color_range = color_range
    return vf


# --- The native YUV path -------------------------------------------------------------------
# For planar YUV video in and out (any depth 8..16 bits, any chroma subsampling), the
# decoder's own planes are used: luma goes to the model range-normalised to the full range it
# was trained on (uint8 for 8-bit input, uint16 0..65535 above: never rounded to 8 bits
# first), and the chroma planes are upscaled bicubically at their own resolution and depth
# (16-bit arithmetic for 10/12-bit). No YUV->RGB->YUV round trip and no colour matrix to
# guess: the output keeps the input's colour tags because its samples are in the input's space.

_TO_FULL = np.clip(np.rint((np.arange(256) - 16) * 255.0 / 219.0), 0, 255).astype(np.uint8)
_TO_LIMITED = np.rint(np.arange(256) * 219.0 / 255.0 + 16).astype(np.uint8)


def _plane(frame: Any, i: int, dtype: Any = np.uint8) -> npt.NDArray[Any]:
    """A view of plane `i` (writable: `merge_planes` fills new frames through it)."""
    p = frame.planes[i]
    item = np.dtype(dtype).itemsize
    # Rows can be padded (line_size > width): view, then cut to the visible width.
    return np.frombuffer(p, dtype).reshape(p.height, p.line_size // item)[:, : p.width]


def is_full_range(frame: Any) -> bool:
    return bool(frame.format.name.startswith("yuvj") or frame.color_range == ColorRange.JPEG)


@functools.cache
def _luma_to_16(depth: int, full: bool) -> npt.NDArray[np.uint16]:
    """Lookup table: `depth`-bit luma codes -> full-range 0..65535."""
    codes = np.arange(1 << depth, dtype=np.float64)
    if full:
        v = codes * 65535.0 / ((1 << depth) - 1)
    else:
        k = 1 << (depth - 8)
        v = (codes - 16 * k) * 65535.0 / (219 * k)
    return np.clip(np.rint(v), 0, 65535).astype(np.uint16)


@functools.cache
def _luma_from_16(depth: int, full: bool) -> npt.NDArray[np.uint16]:
    """Lookup table: full-range 0..65535 -> `depth`-bit luma codes (limited or full range)."""
    v = np.arange(65536, dtype=np.float64) / 65535.0
    k = 1 << (depth - 8)
    codes = v * ((1 << depth) - 1) if full else v * 219 * k + 16 * k
    return np.rint(codes).astype(np.uint16)


def split_planes(frame: Any) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """A planar YUV frame as full-range luma and interleaved chroma.

    Returns:
        y: (H, W) uint8 for 8-bit input, uint16 scaled to 0..65535 for deeper input.
        chroma: (cH, cW, 2) Cb/Cr at the frame's own depth (uint8, or uint16 codes).
    """
    layout = pixfmt.layout_of(frame.format.name)
    assert layout is not None, frame.format.name
    full = is_full_range(frame)
    if layout.depth == 8:
        y8 = _plane(frame, 0)
        y: npt.NDArray[Any] = y8.copy() if full else cv2.LUT(y8, _TO_FULL)
        chroma = np.stack([_plane(frame, 1), _plane(frame, 2)], axis=-1)
        return y, chroma
    y = _luma_to_16(layout.depth, full)[_plane(frame, 0, np.uint16)]
    chroma = np.stack([_plane(frame, 1, np.uint16), _plane(frame, 2, np.uint16)], axis=-1)
    return y, chroma


def merge_planes(
    y_hr: npt.NDArray[Any],
    chroma: npt.NDArray[Any],
    src_depth: int,
    pix_fmt: str,
    full_range: bool,
    pad: bool,
) -> Any:
    """Upscaled full-range luma and source-size chroma as an av.VideoFrame in `pix_fmt`.

    Args:
        y_hr: (sH, sW) uint8 (0..255) or uint16 (0..65535) full-range luma.
        chroma: (cH, cW, 2) source chroma codes of `src_depth` bits (uint8 or uint16).
        src_depth: the source's bits per sample.
        pix_fmt: a planar YUV output format (any depth and subsampling).
        full_range: write full-range codes (else limited range).
        pad: grow an odd width/height by one replicated row/column where the output's chroma
            is subsampled in that direction (such encoders need even sizes).

    Chroma is upscaled bicubically straight to the output's chroma size (which also converts
    between subsamplings) and its codes are rescaled between depths. The results are written
    straight into the frame's planes (1.5 ms per 1080p 8-bit frame instead of 6.9 ms through
    an intermediate buffer).
    """
    out = pixfmt.layout_of(pix_fmt)
    assert out is not None, pix_fmt
    h, w = y_hr.shape
    if pad and ((h % 2 and out.sub_h) or (w % 2 and out.sub_w)):
        y_hr = cv2.copyMakeBorder(
            y_hr, 0, h % 2 if out.sub_h else 0, 0, w % 2 if out.sub_w else 0, cv2.BORDER_REPLICATE
        )
        h, w = y_hr.shape
    cw, ch = out.chroma_size(w, h)
    c_hr = cv2.resize(chroma, (cw, ch), interpolation=cv2.INTER_CUBIC)
    if out.depth != src_depth:
        c_hr = _rescale_codes(c_hr, src_depth, out.depth)
    elif src_depth > 8:
        np.minimum(c_hr, (1 << src_depth) - 1, out=c_hr)  # bicubic overshoot past the top code
    vf = av.VideoFrame(w, h, pix_fmt)
    full = full_range or out.full_range
    if out.depth == 8:
        y_plane = _plane(vf, 0)
        y8 = y_hr if y_hr.dtype == np.uint8 else (y_hr.astype(np.uint32) * 255 + 32767) // 65535
        y8 = y8.astype(np.uint8, copy=False)
        if full:
            y_plane[:] = y8
        elif y_plane.flags.c_contiguous:
            cv2.LUT(y8, _TO_LIMITED, dst=y_plane)
        else:
            y_plane[:] = cv2.LUT(y8, _TO_LIMITED)
        _plane(vf, 1)[:] = c_hr[:, :, 0]
        _plane(vf, 2)[:] = c_hr[:, :, 1]
    else:
        y16 = y_hr if y_hr.dtype == np.uint16 else y_hr.astype(np.uint16) * 257
        _plane(vf, 0, np.uint16)[:] = _luma_from_16(out.depth, full)[y16]
        _plane(vf, 1, np.uint16)[:] = c_hr[:, :, 0]
        _plane(vf, 2, np.uint16)[:] = c_hr[:, :, 1]
    vf.color_range = ColorRange.JPEG if full else ColorRange.MPEG
    return vf


def _rescale_codes(c: npt.NDArray[Any], src: int, dst: int) -> npt.NDArray[Any]:
    """Chroma codes from `src` to `dst` bits (x 2**(dst-src), rounded), in the dst's dtype."""
    top = (1 << dst) - 1
    v = np.rint(c.astype(np.float32) * float(1 << dst) / float(1 << src))
    out: npt.NDArray[Any] = np.clip(v, 0, top).astype(np.uint8 if dst == 8 else np.uint16)
    return out


def native_frame(frame: Any) -> Any:
    """`frame` in the planar layout the native path reads (semi-planar and mid-stream format
    changes converted exactly; anything else to 8-bit 4:2:0)."""
    name = frame.format.name
    if pixfmt.layout_of(name) is not None:
        return frame
    target = pixfmt.SEMI_PLANAR.get(name, "yuv420p")
    return frame.reformat(format=target, interpolation=_ENCODE_FLAGS)


def split_frame(frame: Any, native: bool) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """Luma for the model and chroma for the sink, by either path (see `merge_planes`)."""
    if native:
        return split_planes(native_frame(frame))
    return split_ycrcb(frame_to_bgr(frame))
