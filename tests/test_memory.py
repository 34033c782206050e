"""Streaming: vsr's memory does not grow with the length of the video."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, synth_video

#: Runs the CLI in a fresh interpreter and prints its own peak RSS (KiB on Linux) last.
PEAK_RSS = """\
import io, resource, sys
from vsr.cli import main
err = io.StringIO()
status = main(sys.argv[1:], stderr=err)
sys.stderr.write(err.getvalue())
print(status, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_rss_kib(video: Path, out: Path) -> int:
    proc = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, "upscale", str(video), str(out), "--preset", "ultrafast",
         "--progress", "none"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    status, rss = proc.stdout.split()[-2:]
    assert status == "0", proc.stderr
    return int(rss)


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux only")
def test_peak_memory_does_not_grow_with_the_number_of_frames(tmp_path: Path) -> None:
    """Upscaling 400 frames peaks within 1.15x + 20 MB of the memory that 100 frames of the same video take."""
    short = synth_video(tmp_path / "short.mp4", n=100, size=(96, 64), bframes=False)
    long = synth_video(tmp_path / "long.mp4", n=400, size=(96, 64), bframes=False)
    short_kib = peak_rss_kib(short, tmp_path / "short_x3.mp4")
    long_kib = peak_rss_kib(long, tmp_path / "long_x3.mp4")
    limit = 1.15 * short_kib + 20 * 1024
    assert long_kib <= limit, (f"400 frames peaked at {long_kib / 1024:.0f} MiB, 100 frames at "
                               f"{short_kib / 1024:.0f} MiB (limit {limit / 1024:.0f} MiB)")
