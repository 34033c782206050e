"""The sample clip's scene: what `scripts/media/make_sample.py` renders into samples/sample.mp4
and what the offline benchmark (`vsr.lab.floors.make_clip`) renders at any size.

A scene with real structure for a super-resolution model to show its worth: a zone plate and
fine text (high frequencies), hard edges, smooth gradients, a moving checkerboard and scrolling
text (motion). Deterministic: a function of the time alone. Runs in the caller's thread.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

#: The sample clip's width, height, frame rate and audio sample rate.
W, H, FPS, RATE = 320, 180, 25, 48000


def render(t: float) -> npt.NDArray[np.uint8]:
    """One BGR frame of shape (H, W, 3) at time `t` (seconds)."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    img = np.zeros((H, W, 3), np.float32)
    # Smooth colour gradient background that drifts slowly.
    img[..., 0] = 80 + 60 * np.sin(xx / W * 2 * np.pi + t * 0.7)
    img[..., 1] = 90 + 50 * (yy / H)
    img[..., 2] = 120 + 70 * np.cos(yy / H * np.pi + t * 0.5)
    # Zone plate (all frequencies up to Nyquist) in the top-left quarter.
    cx, cy = 60.0, 50.0
    r2 = (xx - cx) ** 2 + (yy - cy) ** 2
    zone = 127 + 120 * np.cos(r2 / 80.0 + t * 2)
    mask = r2 < 45**2
    img[mask] = zone[mask, None]
    # Moving checkerboard: hard edges with motion.
    off = int(t * 20) % 16
    check = (((xx.astype(int) + off) // 8 + (yy.astype(int) // 8)) % 2) * 200 + 30
    box = (xx >= 200) & (xx < 300) & (yy >= 15) & (yy < 85)
    img[box] = check[box, None]
    frame = np.clip(img, 0, 255).astype(np.uint8)
    # Text: small (aliasing-prone) and large, one line scrolling.
    cv2.putText(
        frame,
        "vsr sample 0123456789",
        (8, 120),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.45,
        (255, 255, 255),
        1,
        cv2.LINE_AA,
    )
    x = int(320 - (t * 60) % 640)
    cv2.putText(
        frame,
        "ESPCN super-resolution: sharp edges, fine text",
        (x, 160),
        cv2.FONT_HERSHEY_PLAIN,
        1.0,
        (20, 240, 240),
        1,
        cv2.LINE_AA,
    )
    cv2.circle(frame, (int(160 + 60 * np.sin(t * 1.5)), 100), 12, (0, 0, 255), 2, cv2.LINE_AA)
    return frame
