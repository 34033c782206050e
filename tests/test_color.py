"""Behaviour of the pure colour functions used by the decoder and encoder threads."""

from __future__ import annotations

from typing import cast

import cv2
import numpy as np
import numpy.typing as npt
from av.video.reformatter import ColorRange

from vsr.frames import MatrixTag
from vsr.media.color import bgr_to_frame, merge_upscaled, pad_to_even, split_ycrcb, sws_colorspace


def test_split_gives_bt601_full_range_luma() -> None:
    """Y equals 0.299 R + 0.587 G + 0.114 B (the model card's and Pillow's luma)."""
    rng = np.random.default_rng(1)
    bgr = rng.integers(0, 256, (17, 23, 3), dtype=np.uint8)
    y, crcb = split_ycrcb(bgr)
    ref = 0.299 * bgr[..., 2] + 0.587 * bgr[..., 1] + 0.114 * bgr[..., 0]
    assert y.shape == (17, 23) and crcb.shape == (17, 23, 2)
    assert np.abs(y.astype(float) - ref).max() <= 1.0


def test_split_then_merge_at_the_same_size_round_trips() -> None:
    """Splitting and merging without upscaling returns the image (within rounding)."""
    rng = np.random.default_rng(2)
    bgr = cast(
        npt.NDArray[np.uint8], cv2.GaussianBlur(rng.integers(0, 256, (32, 48, 3), dtype=np.uint8), (5, 5), 2)
    )
    y, crcb = split_ycrcb(bgr)
    back = merge_upscaled(y, crcb)
    assert np.abs(back.astype(int) - bgr).max() <= 3


def test_merge_resizes_chroma_to_luma_size_width_first() -> None:
    """A non-square upscaled Y gets chroma of exactly its (height, width)."""
    y_hr = np.full((30, 45), 128, np.uint8)
    crcb = np.full((10, 15, 2), 128, np.uint8)
    assert merge_upscaled(y_hr, crcb).shape == (30, 45, 3)


def test_pad_to_even_repeats_the_last_row_and_column() -> None:
    """Odd sizes grow by one replicated pixel; even sizes are untouched."""
    img = np.arange(3 * 5 * 3, dtype=np.uint8).reshape(3, 5, 3)
    out = pad_to_even(img)
    assert out.shape == (4, 6, 3)
    assert (out[3, :5] == img[2]).all() and (out[:3, 5] == img[:, 4]).all()
    even = np.zeros((4, 6, 3), np.uint8)
    assert pad_to_even(even) is even


def test_yuv420p_round_trip_through_bgr_has_no_brightness_bias() -> None:
    """Decoding to BGR and encoding back to yuv420p keeps the mean level (swscale's default
    rounding made every frame 1-2.5 levels darker)."""
    from vsr.media.color import bgr_to_frame, frame_to_bgr

    rng = np.random.default_rng(4)
    bgr = cast(
        npt.NDArray[np.uint8], cv2.GaussianBlur(rng.integers(0, 256, (64, 96, 3), dtype=np.uint8), (7, 7), 3)
    )
    frame = bgr_to_frame(bgr, "yuv420p", None, ColorRange.MPEG)
    back = frame_to_bgr(frame).astype(np.float64)
    assert np.abs((back - bgr).mean(axis=(0, 1))).max() < 0.3
    again = frame_to_bgr(bgr_to_frame(back.astype(np.uint8), "yuv420p", None, ColorRange.MPEG)).astype(
        np.float64
    )
    assert np.abs((again - back).mean(axis=(0, 1))).max() < 0.3


def test_native_planes_round_trip_exactly_for_limited_and_full_range() -> None:
    """Splitting a yuv420p frame into model luma + chroma and merging back (no upscale) is
    lossless for both ranges, odd sizes included."""
    import av

    from vsr.media.color import merge_planes, split_planes

    rng = np.random.default_rng(5)
    for full in (False, True):
        h, w = 37, 53
        y = rng.integers(0 if full else 16, 256 if full else 236, (h + 1, w + 1), dtype=np.uint8)
        c = rng.integers(16, 241, ((h + 1) // 2 * 2, (w + 1) // 2), dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(
            np.concatenate([y.ravel(), c.ravel()]).reshape(-1, w + 1), format="yuv420p"
        )
        frame.color_range = 2 if full else 1
        y_full, chroma = split_planes(frame)
        back = merge_planes(y_full, chroma, 8, "yuv420p", full, pad=True)
        got = np.frombuffer(back.planes[0], np.uint8).reshape(back.planes[0].height, -1)[:, : w + 1]
        assert np.array_equal(got, y)


def test_each_matrix_tag_converts_with_its_own_swscale_matrix() -> None:
    """A stream's matrix tag picks swscale's matrix for it: BT.2020 constant luminance
    converts as BT.2020 (a raw tag number was no matrix to PyAV, so it came out BT.601),
    SMPTE 170M as BT.601 and tagged so; unspecified and RGB use swscale's default (BT.601)."""
    bgr = np.random.default_rng(3).integers(0, 256, (16, 16, 3), dtype=np.uint8)

    def planes(tag: int) -> tuple[bytes, int]:
        vf = bgr_to_frame(bgr, "yuv420p", sws_colorspace(tag), ColorRange.MPEG)
        return vf.to_ndarray().tobytes(), int(vf.colorspace)

    bt601, bt2020 = planes(MatrixTag.BT470BG)[0], planes(MatrixTag.BT2020_NCL)[0]
    assert bt601 != bt2020 and planes(MatrixTag.BT709)[0] not in (bt601, bt2020)
    assert planes(MatrixTag.BT2020_CL)[0] == bt2020
    assert planes(MatrixTag.SMPTE170M) == (bt601, MatrixTag.SMPTE170M)
    assert sws_colorspace(MatrixTag.UNSPECIFIED) is None and sws_colorspace(MatrixTag.RGB) is None
    assert planes(MatrixTag.UNSPECIFIED)[0] == bt601
