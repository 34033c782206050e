"""Behaviour of input whose picture changes size mid-stream: every part goes through the
model at its own size and is fitted into the output picture with its aspect kept."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import cv2
import numpy as np
import numpy.typing as npt
import pytest
from helpers import run_cli

from vsr.lab.media import joined_ts
from vsr.media.resolution import Reference, fit_region

PARTS = [((64, 36), 10), ((128, 72), 10), ((96, 96), 10), ((96, 72), 10)]


def _planes(path: Path) -> list[tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]]:
    """Each frame's Y and U planes (uint8, limited range as encoded)."""
    out = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            assert f.format.name == "yuv420p"
            arr = cast(npt.NDArray[np.uint8], f.to_ndarray())  # (H * 3/2, W): Y, then U and V in quarter rows
            h = f.height
            out.append((arr[:h].copy(), arr[h : h + h // 4].reshape(h // 2, -1).copy()))
    return out


def _upscale(src: Path, out: Path, *extra: str) -> dict[str, object]:
    status, err = run_cli(
        "upscale", src, out, "--quality", "fast", "--codec", "ffv1", "--progress", "json", *extra
    )
    assert status == 0, err
    return dict(json.loads(next(x for x in err.splitlines() if x.startswith('{"event": "done"'))), log=err)


def _psnr(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255**2 / mse)


def test_each_part_of_a_switching_stream_keeps_its_detail_and_aspect(tmp_path: Path) -> None:
    """64x36 -> 128x72 -> 96x96 -> 96x72 with 4:3 pixels, into a 192x108 output (x3 of the
    first part): the 128x72 part is upscaled at 128x72 (it matches that part upscaled alone
    and brought to the output size, not a 64x36 copy of it), the square part is pillarboxed
    at 108x108 with black bars, the anamorphic part fills the 16:9 picture; one log line and
    one count per change."""
    joined = joined_ts(tmp_path / "switch.ts", PARTS, audio=None, sar=[None, None, None, Fraction(4, 3)])
    rec = _upscale(joined, tmp_path / "switch.mkv")
    assert rec["output_size"] == [192, 108] and rec["size_changes"] == 3 and rec["frames"] == 40
    log = str(rec["log"])
    assert log.count("the input's picture changes from") == 3
    assert "from 64x36 to 128x72 at" in log and "to 96x72 (pixel aspect 4/3)" in log
    frames = _planes(tmp_path / "switch.mkv")
    assert {y.shape for y, _ in frames} == {(108, 192)}

    # Each part alone, upscaled the same way, is the reference for its part of the stream.
    alone = []
    for i, (size, n) in enumerate(PARTS):
        part = joined_ts(
            tmp_path / f"part{i}.ts", [(size, n)], audio=None, sar=[Fraction(4, 3) if i == 3 else None]
        )
        _upscale(part, tmp_path / f"part{i}.mkv")
        alone.append(_planes(tmp_path / f"part{i}.mkv"))

    for k in range(10):
        y, _ = frames[k]
        assert _psnr(y, alone[0][k][0]) > 60  # the first part: exactly as before
        # 128x72 upscaled at its own size (384x216), then averaged down to the picture
        y2 = cv2.resize(alone[1][k][0], (192, 108), interpolation=cv2.INTER_AREA)
        assert _psnr(frames[10 + k][0], y2) > 38
        # 96x96: 288x288 fitted into 108x108, centred; black bars (limited-range 16, neutral
        # chroma) left and right
        y3, u3 = frames[20 + k]
        x, top, w, h = fit_region(
            Reference(64, 36, Fraction(1), (192, 108)), 96, 96, Fraction(1), (True, True)
        )
        assert (x, top, w, h) == (42, 0, 108, 108)
        centre = cv2.resize(alone[2][k][0], (108, 108), interpolation=cv2.INTER_AREA)
        assert _psnr(y3[:, 42:150], centre) > 38
        assert np.all(np.abs(y3[:, :40].astype(int) - 16) <= 1) and np.all(
            np.abs(y3[:, 152:].astype(int) - 16) <= 1
        )
        assert np.all(np.abs(u3[:, :20].astype(int) - 128) <= 1)
        # 96x72 with 4:3 pixels is 128x72 on screen: 16:9, the whole picture
        y4 = cv2.resize(alone[3][k][0], (192, 108), interpolation=cv2.INTER_AREA)
        assert _psnr(frames[30 + k][0], y4) > 38


def test_ycrcb_path_fits_a_new_size_the_same_way(tmp_path: Path) -> None:
    """The YCrCb colour path pillarboxes a square part in black too."""
    joined = joined_ts(tmp_path / "switch.ts", [((64, 36), 4), ((96, 96), 4)], audio=None)
    rec = _upscale(joined, tmp_path / "switch.mkv", "--color", "ycrcb")
    assert rec["size_changes"] == 1
    y, u = _planes(tmp_path / "switch.mkv")[6]
    assert np.all(np.abs(y[:, :40].astype(int) - 16) <= 2) and y[:, 50:140].mean() > 40
    assert np.all(np.abs(u[:, :20].astype(int) - 128) <= 2)


@pytest.mark.parametrize(
    "size,sar,expected",
    [
        ((128, 72), Fraction(1), (0, 0, 192, 108)),  # same aspect: the whole picture
        ((96, 96), Fraction(1), (42, 0, 108, 108)),  # square: pillarbox
        ((128, 36), Fraction(1), (0, 26, 192, 54)),  # wider: letterbox (even offsets)
        ((96, 72), Fraction(4, 3), (0, 0, 192, 108)),  # 4:3 pixels make it 16:9
    ],
)
def test_fit_region_keeps_the_display_aspect(
    size: tuple[int, int], sar: Fraction, expected: tuple[int, int, int, int]
) -> None:
    """A frame's place in a 192x108 picture made for 64x36 square-pixel frames keeps the
    frame's display aspect (its size times its pixel aspect ratio), centred on even offsets."""
    ref = Reference(64, 36, Fraction(1), (192, 108))
    assert fit_region(ref, *size, sar, (True, True)) == expected


def test_fit_region_follows_how_the_first_frame_was_mapped() -> None:
    """With --width/--height stretching the first frame (64x36 into 300x100), a square frame
    is mapped the same way: as wide as 36 of the first frame's 64 columns."""
    ref = Reference(64, 36, Fraction(1), (300, 100))
    x, y, w, h = fit_region(ref, 50, 50, Fraction(1))
    assert (w, h) == (round(300 * 36 / 64), 100) and x == (300 - w) // 2 and y == 0
