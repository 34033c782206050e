"""`--width`/`--height`: the model's output resampled to the size asked for, the aspect kept
when one side is given (pixel aspect ratio included), and a size the model cannot reach said.
Real clips, the real fast model, real encoders.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from helpers import assert_user_error, leftovers, run_cli

import vsr
from vsr.lab.media import gradient_clip, synth_video

MODEL = ["--quality", "fast", "--preset", "ultrafast", "--device", "cpu"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth_video(tmp_path_factory.mktemp("size") / "in.mp4", n=6, size=(64, 48))


def lumas(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray()[: f.height] for f in c.decode(video=0)]  # yuv420p: Y rows first


def shape(path: Path) -> tuple[int, int, Fraction | None]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        f = next(c.decode(video=0))
        return f.width, f.height, s.sample_aspect_ratio


def test_height_alone_shrinks_the_x3_output_by_its_area(clip: Path, tmp_path: Path) -> None:
    """--height 120 on 64x48 with the x3 model: 160x120, the aspect kept, and its luma is the
    x3 output's averaged over area (lossless FFV1; to one code, as the limited-range mapping
    comes after the resampling), not bicubic-aliased."""
    plain, sized = tmp_path / "x3.mkv", tmp_path / "h120.mkv"
    assert run_cli("upscale", clip, plain, *MODEL, "--codec", "ffv1")[0] == 0
    status, err = run_cli("upscale", clip, sized, *MODEL, "--codec", "ffv1", "--height", "120")
    assert status == 0, err
    assert "64x48 -> 160x120" in err
    bigs, smalls = lumas(plain), lumas(sized)
    assert len(bigs) == len(smalls) == 6  # every frame compared, none skipped
    for big, small in zip(bigs, smalls, strict=True):
        assert big.shape == (144, 192) and small.shape == (120, 160)
        area = cv2.resize(big, (160, 120), interpolation=cv2.INTER_AREA).astype(int)
        cubic = cv2.resize(big, (160, 120), interpolation=cv2.INTER_CUBIC).astype(int)
        assert np.abs(small - area).max() <= 1
        assert np.abs(small - area).mean() < np.abs(small - cubic).mean() / 2


def test_width_alone_rounds_the_other_side_to_even_for_420(clip: Path, tmp_path: Path) -> None:
    """--width 100: 100 x 75 by the aspect, 76 for libx264's 4:2:0; both sides are taken as
    given; the Python API takes them too."""
    out = tmp_path / "w.mp4"
    assert run_cli("upscale", clip, out, *MODEL, "--width", "100")[0] == 0
    assert shape(out)[:2] == (100, 76)
    stats = vsr.upscale_video(
        clip,
        vsr.SinkOptions(str(tmp_path / "api.mp4"), preset="ultrafast", width=150, height=100),
        model=vsr.ModelOptions(quality="fast", device=vsr.Device.CPU),
    )
    assert stats.output_size == (150, 100) and shape(tmp_path / "api.mp4")[:2] == (150, 100)


def test_beyond_the_model_the_rest_is_bicubic_and_said(clip: Path, tmp_path: Path) -> None:
    """--height 216 with the x3 model is x4.5: written, with one note naming --scale 4."""
    out = tmp_path / "big.mp4"
    status, err = run_cli("upscale", clip, out, *MODEL, "--height", "216")
    assert status == 0, err
    assert shape(out)[:2] == (288, 216)
    assert "x4.50 the input and the model x3: the rest is bicubic (--scale 4 gives more)" in err


def test_non_square_pixels_keep_their_ratio_or_are_resampled(tmp_path: Path) -> None:
    """A 64/51 SAR clip: --height keeps the stored aspect and carries the SAR (the display
    aspect stays the input's); with --square-pixels the width follows the display aspect."""
    src = gradient_clip(tmp_path / "sar.mp4", "libx264", "yuv420p", size=(34, 26), sar=Fraction(64, 51))
    kept, square = tmp_path / "kept.mp4", tmp_path / "square.mp4"
    assert run_cli("upscale", src, kept, *MODEL, "--height", "52")[0] == 0
    w, h, sar = shape(kept)
    assert (w, h, sar) == (68, 52, Fraction(64, 51))  # 34 x 26 doubled: DAR 34*64 : 26*51
    assert run_cli("upscale", src, square, *MODEL, "--height", "52", "--square-pixels")[0] == 0
    w, h, sar = shape(square)
    assert (w, h) == (86, 52) and (not sar or sar == 1)  # 52 x 34/26 x 64/51 = 85.3 -> even 86


def test_a_size_below_the_input_is_one_clear_line(clip: Path, tmp_path: Path) -> None:
    """vsr upscales: an output smaller than the input is refused before any work, exit 2."""
    status, err = run_cli("upscale", clip, tmp_path / "out.mp4", *MODEL, "--height", "40")
    assert_user_error(status, err, mentions="smaller than the input's 64x48")
    assert not (tmp_path / "out.mp4").exists() and leftovers(tmp_path) == []


def test_info_predicts_the_size_upscale_makes(
    clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`vsr info` with --height / --square-pixels gives the size `vsr upscale` writes."""
    import json

    assert run_cli("info", clip, "--quality", "fast", "--height", "216", "--json")[0] == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["upscaled_size"] == rec["output_size"] == [288, 216]
    assert any("the rest is bicubic" in note for note in rec["output"]["notes"])
    src = gradient_clip(tmp_path / "sar.mp4", "libx264", "yuv420p", size=(34, 26), sar=Fraction(64, 51))
    assert run_cli("info", src, "--quality", "fast", "--square-pixels", "--height", "52")[0] == 0
    assert "output: 86x52 (libx264, yuv420p)" in capsys.readouterr().out
