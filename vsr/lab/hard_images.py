"""Generated images that are hard on a quantized network: what Set5/Set14 lack.

Natural photographs rarely drive a convolution's accumulators to their extremes, so an int8
model can look exact on Set5 and still fail on a screen recording or a cartoon. These images
are the opposite kind: black text on white and white on black, anti-aliased line art, flat
colour fields with hard edges, full-contrast stripes and checkerboards, and a dark scene
(values in the bottom 15% of the range, where a banding error of one level is 10% of the
signal). They are made deterministically from a seed, at sizes divisible by 2, 3 and 4, so
the shared protocol applies unchanged (`vsr.lab.protocol.hr_lr_pair` on the written PNGs).

    python scripts/media/hard_images.py OUT_DIR        # writes text.png, lineart.png, ...
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from ..media.color import Image

SIZE = (192, 240)  # (height, width): multiples of 12, so x2, x3 and x4 crop nothing


def text(rng: np.random.Generator) -> Image:
    """Lines of black text on white, and white on black below them (subtitles, slides)."""
    h, w = SIZE
    img = np.full((h, w, 3), 255, np.uint8)
    img[h // 2 :] = 0
    words = ["vsr upscales", "Sub-pixel CNN", "1080p 4:2:0", "ESPCN x3 int8", "The quick fox"]
    for i in range(6):
        colour = (0, 0, 0) if i < 3 else (255, 255, 255)
        y = 22 + i * 31
        cv2.putText(
            img,
            words[int(rng.integers(len(words)))],
            (6, y),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.45 + 0.1 * (i % 3),
            colour,
            1,
            cv2.LINE_AA,
        )
    return img


def lineart(rng: np.random.Generator) -> Image:
    """Anti-aliased dark strokes on paper white: a drawing or a cartoon's outlines."""
    h, w = SIZE
    img = np.full((h, w, 3), 245, np.uint8)
    for _ in range(40):
        p1 = (int(rng.integers(w)), int(rng.integers(h)))
        p2 = (int(rng.integers(w)), int(rng.integers(h)))
        cv2.line(img, p1, p2, (20, 20, 20), int(rng.integers(1, 3)), cv2.LINE_AA)
    for _ in range(8):
        centre = (int(rng.integers(w)), int(rng.integers(h)))
        cv2.circle(img, centre, int(rng.integers(5, 40)), (10, 10, 10), 1, cv2.LINE_AA)
    return img


def flat(rng: np.random.Generator) -> Image:
    """Flat saturated colour fields with hard edges: graphics, logos, cel animation."""
    h, w = SIZE
    img = np.zeros((h, w, 3), np.uint8)
    for _ in range(14):
        pts = rng.integers(0, (w, h), (int(rng.integers(3, 6)), 2)).astype(np.int32)
        colour = tuple(int(c) for c in rng.choice([0, 255], 3))
        cv2.fillPoly(img, [pts], colour)
    return img


def contrast(rng: np.random.Generator) -> Image:
    """Black/white stripes and a checkerboard, coarse enough to survive the downscale: the
    worst case for sums of large products."""
    h, w = SIZE
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w), np.uint8)
    third = w // 3
    img[:, :third] = np.where((xx[:, :third] // 6) % 2 == 0, 255, 0)
    img[:, third : 2 * third] = np.where(((xx + yy)[:, third : 2 * third] // 9) % 2 == 0, 255, 0)
    img[:, 2 * third :] = np.where(((xx // 12) + (yy // 12))[:, 2 * third :] % 2 == 0, 255, 0)
    del rng
    return np.repeat(img[:, :, None], 3, axis=2)


def dark(rng: np.random.Generator) -> Image:
    """A dark scene: a smooth dim gradient with faint shapes and sensor noise, all below 40."""
    h, w = SIZE
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 6 + 14 * (xx / w) + 6 * np.sin(yy / 17.0)
    for _ in range(6):
        cx, cy, r = rng.integers(0, w), rng.integers(0, h), rng.integers(10, 40)
        base += 12 * (((xx - cx) ** 2 + (yy - cy) ** 2) < r * r)
    base += rng.normal(0, 1.2, base.shape).astype(np.float32)
    img = np.clip(np.rint(base), 0, 40).astype(np.uint8)
    return np.repeat(img[:, :, None], 3, axis=2)


KINDS: dict[str, Callable[[np.random.Generator], Image]] = {
    "text": text,
    "lineart": lineart,
    "flat": flat,
    "contrast": contrast,
    "dark": dark,
}


def write_all(folder: Path, seed: int = 0) -> list[Path]:
    """Write one PNG of every kind into `folder` (created if missing).

    Args:
        folder: where the PNGs go.
        seed: the seed of every kind's generator.

    Returns:
        The written paths, sorted by name.
    """
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, make in KINDS.items():
        path = folder / f"{name}.png"
        cv2.imwrite(str(path), make(np.random.default_rng(seed)))
        paths.append(path)
    return sorted(paths)
