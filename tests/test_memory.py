"""Streaming: vsr's memory does not grow with the length of the video."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from helpers import peak_rss_kib

from vsr.lab.media import synth_video


def upscale_peak_kib(video: Path, out: Path) -> int:
    """Peak RSS (KiB) of `vsr upscale VIDEO OUT` in a fresh interpreter."""
    return peak_rss_kib("upscale", video, out, "--preset", "ultrafast", "--progress", "none")


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux only")
def test_peak_memory_does_not_grow_with_the_number_of_frames(tmp_path: Path) -> None:
    """Upscaling 400 frames peaks within 1.15x + 20 MB of the memory that 100 frames of the same video
    take."""
    short = synth_video(tmp_path / "short.mp4", n=100, size=(96, 64), bframes=False)
    long = synth_video(tmp_path / "long.mp4", n=400, size=(96, 64), bframes=False)
    short_kib = upscale_peak_kib(short, tmp_path / "short_x3.mp4")
    long_kib = upscale_peak_kib(long, tmp_path / "long_x3.mp4")
    limit = 1.15 * short_kib + 20 * 1024
    assert long_kib <= limit, (
        f"400 frames peaked at {long_kib / 1024:.0f} MiB, 100 frames at "
        f"{short_kib / 1024:.0f} MiB (limit {limit / 1024:.0f} MiB)"
    )
