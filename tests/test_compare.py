"""`vsr compare`: one real frame (PyAV decode, onnxruntime model) as a PNG sheet or a
self-contained HTML page with a working before/after slider (checked in headless Chromium)."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from helpers import assert_user_error, read_image, run_cli

from vsr.app.compare import bicubic, detail_region
from vsr.lab.media import pattern, synth_video
from vsr.media.color import frame_to_bgr
from vsr.media.grab import grab_frame

W, H = 96, 64  # the clip; the bundled default model makes it 288x192
OUT_W, OUT_H = W * 3, H * 3


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    """12 frames at 25 fps (0.48 s), a keyframe every 3 frames so --at really seeks."""
    return synth_video(
        tmp_path / "clip.mp4",
        n=12,
        size=(W, H),
        audio=None,
        bframes=False,
        options={"g": "3", "keyint_min": "3", "sc_threshold": "0"},
    )


def data_images(page: str) -> list[np.ndarray]:
    """Every data: URI image of the page, decoded."""
    out = []
    for uri in re.findall(r'src="(data:[^"]*)"', page):
        assert uri.startswith("data:image/png;base64,"), uri[:40]
        img = cv2.imdecode(np.frombuffer(base64.b64decode(uri.split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)
        assert img is not None
        out.append(img)
    return out


def panels(page: str) -> list[np.ndarray]:
    """The page's full-size panels (the slider's layers), in order."""
    return [img for img in data_images(page) if img.shape[:2] == (OUT_H, OUT_W)]


def test_png_puts_bicubic_and_vsr_side_by_side_at_output_size_with_crops_below(
    clip: Path, tmp_path: Path
) -> None:
    """The PNG is at least twice the output width (both panels at full size) and taller than one
    panel (the crops row); the two panels differ, and stderr says what was compared."""
    out = tmp_path / "c.png"
    status, err = run_cli("compare", clip, "-o", out)
    assert status == 0, err
    assert "bicubic | vsr balanced_x3" in err and str(out) in err
    sheet = read_image(out)
    assert sheet.shape[1] >= 2 * OUT_W
    assert sheet.shape[0] > OUT_H + OUT_H // 4 * 3  # panels plus crops (a quarter side, 3x)
    bar = max(16, OUT_W // 24)
    left = sheet[bar : bar + OUT_H, :OUT_W].astype(int)
    right = sheet[bar : bar + OUT_H, -OUT_W:].astype(int)
    assert np.abs(left - right).mean() > 1
    assert not list(tmp_path.glob(".*partial"))


@pytest.mark.parametrize("kind", ["mp4", "ts"])
def test_the_default_frame_is_the_middle_and_at_picks_the_frame_on_screen(
    clip: Path, tmp_path: Path, kind: str
) -> None:
    """--at t gives the last frame starting at or before t, decoded after a real seek (MP4:
    keyframes every 3 frames), also where seeking lands on no usable frame (MPEG-TS with one
    keyframe: it seeks by byte position); without --at the middle of the clip (0.24 s: frame 6)."""
    if kind == "ts":
        clip = synth_video(tmp_path / "clip.ts", n=12, size=(W, H), audio=None, bframes=False)
    with av.open(str(clip)) as c:
        frames = [frame_to_bgr(f) for f in c.decode(video=0)]
    middle = grab_frame(str(clip), None)
    assert middle.seconds == pytest.approx(0.24)
    assert np.array_equal(middle.bgr, frames[6])
    for at, index in ((0.0, 0), (0.1, 2), (0.3, 7), (0.47, 11), (0.48, 11)):
        got = grab_frame(str(clip), at)
        assert got.seconds == pytest.approx(index * 0.04), at
        assert np.array_equal(got.bgr, frames[index]), at


def test_detail_crop_is_where_the_picture_has_edges() -> None:
    """A flat picture with one textured square: the crop is that square (give or take the
    square's own border, which is an edge too)."""
    img = np.full((120, 160, 3), 128, np.uint8)
    img[70:110, 20:60] = pattern(0, 40, 40)
    r = detail_region(img)
    assert r.size == 30
    assert 18 <= r.x and r.x + r.size <= 62 and 68 <= r.y and r.y + r.size <= 112


def test_html_is_one_self_contained_page(clip: Path, tmp_path: Path) -> None:
    """No URL but data: ones (no http(s), no protocol-relative //, no url()); the embedded
    images decode: bicubic and vsr at output size, plus their detail crops."""
    out = tmp_path / "c.html"
    status, err = run_cli("compare", clip, "-o", out, "--at", "0.2")
    assert status == 0, err
    page = out.read_text()
    assert "http://" not in page and "https://" not in page
    for attr in re.findall(r'\b(?:src|href|action|poster)\s*=\s*"([^"]*)"', page):
        assert attr.startswith("data:"), attr[:60]
    without_data = re.sub(r'"data:[^"]*"', '""', page)
    assert "//" not in without_data and "url(" not in without_data and "@import" not in without_data
    full = panels(page)
    assert len(full) == 2
    assert np.abs(full[0].astype(int) - full[1].astype(int)).mean() > 1
    assert np.array_equal(full[0], bicubic(grab_frame(str(clip), 0.2).bgr, 3))
    assert len(data_images(page)) == 4  # and two crops
    assert 'type="range"' in page and 'id="zoom"' in page


def test_against_adds_a_third_panel(clip: Path, tmp_path: Path) -> None:
    """--against NAME: three panels in the PNG (three output widths) and in the page."""
    png, page = tmp_path / "c.png", tmp_path / "c.html"
    status, err = run_cli("compare", clip, "-o", png, "--against", "espcn_x3_video")
    assert status == 0, err
    assert "bicubic | vsr balanced_x3 | vsr espcn_x3_video" in err
    assert read_image(png).shape[1] >= 3 * OUT_W
    status, err = run_cli("compare", clip, "-o", page, "--against", "espcn_x3_video", "-q")
    assert status == 0 and err == ""
    assert len(panels(page.read_text())) == 3


def test_an_image_is_compared_too(tmp_path: Path) -> None:
    """An image input is its one frame; --scale picks the model."""
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), pattern(3, 50, 40))
    status, err = run_cli("compare", img, "--scale", "2")
    assert status == 0, err
    sheet = read_image(tmp_path / "a_compare.png")
    assert sheet.shape[1] >= 2 * 100


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (["missing.mp4"], "cannot open input"),
        (["{clip}", "--at", "5"], "beyond the end"),
        (["{clip}", "--at", "-1"], "--at -1"),
        (["{clip}", "-o", "{tmp}/c.jpg"], "writes .png or .html"),
        (["{clip}", "-o", "{tmp}/exists.png"], "already exists"),
        (["{clip}", "--against", "espcn_x2"], "upscales x2"),
        (["{clip}", "--model", "{tmp}/nope.onnx"], "nope.onnx"),
    ],
)
def test_errors_are_one_line_with_exit_2(clip: Path, tmp_path: Path, args: list[str], mentions: str) -> None:
    """Missing input, --at outside the video, an unknown output type, an existing output, a
    model of another scale: one 'vsr:' line (plus a hint), exit 2, nothing written."""
    (tmp_path / "exists.png").write_bytes(b"keep")
    before = sorted(p.name for p in tmp_path.iterdir())
    status, err = run_cli("compare", *[a.format(clip=clip, tmp=tmp_path) for a in args])
    assert_user_error(status, err, 2, mentions=mentions)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert (tmp_path / "exists.png").read_bytes() == b"keep"


# --------------------------------------------------------------------------- in a browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def screenshot(page: Path, query: str, tmp_path: Path, name: str) -> np.ndarray:
    """Headless Chromium's picture of `page?query` (800x700 CSS pixels at 1 device pixel each)."""
    shot = tmp_path / f"{name}.png"
    assert CHROMIUM is not None
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            "--no-first-run",
            "--disable-extensions",
            f"--user-data-dir={tmp_path / ('profile-' + name)}",
            "--window-size=800,700",
            "--virtual-time-budget=2000",
            f"--screenshot={shot}",
            f"{page.as_uri()}?{query}",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    img = cv2.imread(str(shot))
    assert img is not None
    return img


def locate(shot: np.ndarray, part: np.ndarray) -> tuple[int, int]:
    """Where `part` is in the screenshot (top-left), insisting on a near-exact match."""
    scores = cv2.matchTemplate(shot, part, cv2.TM_SQDIFF_NORMED)
    lo, _, (x, y), _ = cv2.minMaxLoc(scores)
    assert lo < 0.01, lo
    return x, y


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium or chromium-browser on PATH")
def test_slider_shows_bicubic_left_and_vsr_right_in_chromium(clip: Path, tmp_path: Path) -> None:
    """In headless Chromium the page shows bicubic left of the split and vsr right of it, and
    ?split=0.2 vs ?split=0.8 move the boundary: between 20% and 80% of the width the picture
    changes from vsr to bicubic, and nowhere else."""
    page = tmp_path / "c.html"
    status, err = run_cli("compare", clip, "-o", page)
    assert status == 0, err
    bic, sr = panels(page.read_text())
    a = screenshot(page, "split=0.2&zoom=1", tmp_path, "a")
    b = screenshot(page, "split=0.8&zoom=1", tmp_path, "b")
    # Find the picture by its right-most 15% (vsr in both screenshots).
    x0, y0 = locate(a, sr[:, int(OUT_W * 0.85) :])
    x0 -= int(OUT_W * 0.85)
    assert locate(b, sr[:, int(OUT_W * 0.85) :])[0] - int(OUT_W * 0.85) == x0
    area_a = a[y0 : y0 + OUT_H, x0 : x0 + OUT_W].astype(int)
    area_b = b[y0 : y0 + OUT_H, x0 : x0 + OUT_W].astype(int)

    def diff(img: np.ndarray, ref: np.ndarray, lo: float, hi: float) -> float:
        cols = slice(int(OUT_W * lo), int(OUT_W * hi))
        return float(np.abs(img[:, cols] - ref[:, cols].astype(int)).mean())

    margin = 0.03  # the split line (2 px) and rounding
    # The two halves really differ, so "looks like bicubic" and "looks like vsr" can be told apart.
    assert diff(bic, sr, 0, 1) > 2
    for area, split in ((area_a, 0.2), (area_b, 0.8)):
        assert diff(area, bic, 0, split - margin) < 1, split
        assert diff(area, sr, split + margin, 1) < 1, split
        assert diff(area, bic, 0, split - margin) < diff(area, sr, 0, split - margin)
        assert diff(area, sr, split + margin, 1) < diff(area, bic, split + margin, 1)
    moved = np.abs(area_a - area_b).mean(axis=(0, 2))
    assert moved[int(OUT_W * (0.2 + margin)) : int(OUT_W * (0.8 - margin))].mean() > 2
    assert moved[: int(OUT_W * (0.2 - margin))].max() == 0
    assert moved[int(OUT_W * (0.8 + margin)) :].max() == 0
