"""Colour conversions as pure functions (called from the decoder and encoder threads).

The model card's recipe: the network sees full-range BT.601 luma (OpenCV's YCrCb, the same
matrix as Pillow's YCbCr that the training protocol uses); chroma is upscaled bicubically
and merged back. OpenCV releases the GIL in `cvtColor` and `resize`, so these run in
parallel with the model.
"""

from __future__ import annotations

from typing import Any

import av
import cv2
import numpy as np
import numpy.typing as npt
from av.video.reformatter import Interpolation

# swscale's defaults round YUV<->RGB towards zero and interpolate 4:2:0 chroma crudely:
# a decode/encode round trip came out 1-2.5 levels darker. ACCURATE_RND fixes the encode
# side; FULL_CHR_H_INT the decode side (measured: mean error 0.0 instead of -0.5 to -2.6).
_DECODE_FLAGS = Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
_ENCODE_FLAGS = Interpolation.BILINEAR | Interpolation.ACCURATE_RND


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
    bgr: npt.NDArray[np.uint8] = cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2BGR)  # type: ignore[assignment]
    return bgr


def pad_to_even(bgr: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Replicate the last row/column where a dimension is odd (4:2:0 encoders need even sizes)."""
    h, w = bgr.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return bgr
    padded: npt.NDArray[np.uint8] = cv2.copyMakeBorder(  # type: ignore[assignment]
        bgr, 0, h % 2, 0, w % 2, cv2.BORDER_REPLICATE)
    return padded


# AVColorSpace values that swscale's matrices cover; anything else (unspecified, RGB, ...)
# converts with swscale's default (BT.601), which is also what decoding assumed.
_SWS_MATRICES = {1, 4, 5, 6, 7, 9, 10}


def sws_colorspace(av_colorspace: int) -> int | None:
    """The swscale matrix for an AVColorSpace, or None for swscale's default."""
    return av_colorspace if av_colorspace in _SWS_MATRICES else None


def frame_to_bgr(frame: Any) -> npt.NDArray[np.uint8]:
    """A decoded av.VideoFrame as (H, W, 3) BGR, honouring its colour matrix and range."""
    bgr: npt.NDArray[np.uint8] = frame.to_ndarray(format="bgr24", interpolation=_DECODE_FLAGS)
    return bgr


def bgr_to_frame(bgr: npt.NDArray[np.uint8], pix_fmt: str, colorspace: int | None,
                 color_range: int | None) -> Any:
    """A (H, W, 3) BGR image as an av.VideoFrame in the encoder's pixel format and matrix."""
    vf = av.VideoFrame.from_ndarray(bgr, format="bgr24")
    if pix_fmt != "bgr24":
        vf = vf.reformat(format=pix_fmt, dst_colorspace=colorspace, dst_color_range=color_range,
                         interpolation=_ENCODE_FLAGS)
    if color_range is not None:
        vf.color_range = color_range
    return vf
