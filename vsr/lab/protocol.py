"""The shared quality protocol, in one place, for training and evaluation scripts.

Every PSNR figure this project publishes goes through these functions, so that numbers from
`train.py`, `eval.py` and the README compare with each other and with ../shared/data/README.md:
HR cropped to a multiple of the scale; LR = Pillow bicubic downscale; PSNR on the full-range
Y channel (Pillow `YCbCr`) with `scale` pixels shaved at each border.

Pillow is imported inside the functions that need it (the test and train extras), so that the
tests use the same functions (`temporal_psnr`: the same for video). Caller's thread.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from PIL import Image

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def list_images(folder: Path) -> list[Path]:
    """Images under `folder` (recursively), sorted so that every run sees the same order."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def hr_lr_pair(path: Path, scale: int) -> tuple[Image.Image, Image.Image]:
    """The protocol's (HR, LR) RGB pair for one image file."""
    from PIL import Image

    hr = Image.open(path).convert("RGB")
    w, h = hr.size
    hr = hr.crop((0, 0, w - w % scale, h - h % scale))
    lr = hr.resize((hr.width // scale, hr.height // scale), Image.Resampling.BICUBIC)
    return hr, lr


def y_channel(img: Image.Image) -> npt.NDArray[np.uint8]:
    """Full-range Y (Pillow's BT.601 YCbCr), shape (H, W)."""
    return np.asarray(img.convert("YCbCr"))[:, :, 0].copy()


def bicubic_y(lr: Image.Image, scale: int) -> npt.NDArray[np.uint8]:
    """The bicubic baseline: the LR image upscaled by Pillow, then its Y."""
    from PIL import Image

    return y_channel(lr.resize((lr.width * scale, lr.height * scale), Image.Resampling.BICUBIC))


def psnr_y(sr_y: npt.NDArray[np.uint8], hr_y: npt.NDArray[np.uint8], scale: int) -> float:
    """PSNR in dB between two Y planes, `scale` pixels shaved at each border."""
    a = sr_y[scale:-scale, scale:-scale].astype(np.float64)
    b = hr_y[scale:-scale, scale:-scale].astype(np.float64)
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def luma_runner(
    upscaler: Callable[[npt.NDArray[np.uint8]], npt.NDArray[np.uint8]],
) -> Callable[[Image.Image], npt.NDArray[np.uint8]]:
    """LR image -> SR Y plane through a vsr upscaler ([N,H,W] uint8 luma in and out), the way
    vsr runs a model on a frame's luma."""

    def run(lr: Image.Image) -> npt.NDArray[np.uint8]:
        sr: npt.NDArray[np.uint8] = upscaler(y_channel(lr)[None])[0]
        return sr

    return run


def mean_psnr(run: Callable[[Image.Image], npt.NDArray[np.uint8]], scale: int, folder: Path) -> float:
    """Mean Y-PSNR over a folder of images of `run` (LR image -> SR Y plane; `luma_runner`, or
    `lambda lr: bicubic_y(lr, scale)` for the baseline)."""
    scores = []
    for path in list_images(folder):
        hr, lr = hr_lr_pair(path, scale)
        scores.append(psnr_y(run(lr), y_channel(hr), scale))
    return float(np.mean(scores))


def ssim_y(sr_y: npt.NDArray[np.uint8], hr_y: npt.NDArray[np.uint8], scale: int) -> float:
    """SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5) on the shaved Y planes."""
    a = sr_y[scale:-scale, scale:-scale].astype(np.float64)
    b = hr_y[scale:-scale, scale:-scale].astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    g = _gaussian_kernel(11, 1.5)

    def blur(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        # 'valid' filtering, as in the reference implementation: filter, then drop the
        # 5-pixel rim where the window would leave the image.
        out = cv2.sepFilter2D(x, cv2.CV_64F, g, g, borderType=cv2.BORDER_REFLECT)
        return np.asarray(out[5:-5, 5:-5], dtype=np.float64)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return float(np.mean(num / den))


def _gaussian_kernel(size: int, sigma: float) -> npt.NDArray[np.float64]:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    k = np.exp(-(x**2) / (2 * sigma**2))
    return np.asarray(k / k.sum(), dtype=np.float64)


def to_uint8(y: npt.NDArray[np.floating]) -> npt.NDArray[np.uint8]:
    """Model output in 0..1 → uint8 the way a video pipeline stores it (clip, round)."""
    return np.asarray(np.clip(np.rint(y * 255.0), 0, 255), dtype=np.uint8)


#: HR offsets of a still image's "camera" frame by frame (`panned_frames`): steps of 1-2
#: pixels, diagonal too; at x2..x4 that moves the LR sampling grid by fractions of a pixel,
#: the motion that makes a super-resolution network flicker.
PAN = ((0, 0), (1, 0), (2, 1), (4, 1), (5, 3), (7, 4))


def panned_frames(img: Image.Image, pan: Sequence[tuple[int, int]] = PAN) -> list[Image.Image]:
    """A still image as a clip whose motion is known: one crop per offset of `pan`, all of
    the same size (the image less the largest offset). A temporal measure for data that has
    no video (the training script's held-out images): `temporal_psnr` of these frames."""
    mx, my = max(dx for dx, _ in pan), max(dy for _, dy in pan)
    w, h = img.width - mx, img.height - my
    return [img.crop((dx, dy, dx + w, dy + h)) for dx, dy in pan]


def temporal_psnr(
    run: Callable[[Image.Image], npt.NDArray[np.uint8]], scale: int, frames: Sequence[Image.Image]
) -> tuple[float, float]:
    """Frame and temporal quality of an upscaler on one clip's consecutive frames.

    Each frame is degraded by the protocol (crop, Pillow bicubic downscale) and upscaled by
    `run`. The second figure compares frame-to-frame differences, (out_t - out_{t-1})
    against (orig_t - orig_{t-1}): a model that flickers scores lower on it than one whose
    error, however large, stays put.

    Args:
        run: LR RGB image -> upscaled Y plane, shape (sH, sW) uint8.
        scale: the upscaling factor; `scale` pixels are shaved at each border.
        frames: the clip's frames as RGB images, in order.

    Returns:
        (mean frame Y-PSNR, mean Y-PSNR of frame differences; NaN with fewer than 2 frames).
    """
    from PIL import Image

    psnrs, diffs = [], []
    prev: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None = None
    for img in frames:
        w, h = img.width - img.width % scale, img.height - img.height % scale
        hr = img.crop((0, 0, w, h))
        lr = hr.resize((w // scale, h // scale), Image.Resampling.BICUBIC)
        hy = y_channel(hr).astype(np.float64)
        sy = np.asarray(run(lr), np.float64)
        psnrs.append(psnr_y(sy.astype(np.uint8), hy.astype(np.uint8), scale))
        if prev is not None:
            d = (sy - prev[0]) - (hy - prev[1])
            d = d[scale:-scale, scale:-scale]
            mse = float(np.mean(d * d))
            diffs.append(float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse))
        prev = (sy, hy)
    return float(np.mean(psnrs)), float(np.mean(diffs)) if diffs else float("nan")
