"""Shared fixtures: generated media (PyAV), paths to ../shared, a numpy fake upscaler, and a
check that no pipeline thread outlives its test."""

from __future__ import annotations

import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
SHARED_VIDEOS = SHARED / "videos"
SHARED_DATA = SHARED / "data"
MODEL_X3 = ROOT / "models" / "espcn_x3.onnx"
ZOO_MODEL = SHARED_DATA / "reference" / "super_resolution.onnx"

sys.path.insert(0, str(ROOT / "scripts"))
from send_test_stream import pattern, tone


def synth_video(path: Path, n: int = 12, size: tuple[int, int] = (64, 48), fps: int = 25,
                codec: str = "libx264", pix_fmt: str = "yuv420p", audio: str | None = "aac",
                container_format: str | None = None, vfr: bool = False, bframes: bool = True,
                options: dict[str, str] | None = None, bt709: bool = False) -> Path:
    """Write a small real video with PyAV: `n` frames of `pattern()`, optional audio.

    With `vfr`, frame durations alternate between 1 and 2 ticks of 1/(2*fps)... so the clip
    has genuinely variable frame timing.
    """
    w, h = size
    with av.open(str(path), "w", format=container_format) as out:
        rate = fps * 2 if vfr else fps
        vs = out.add_stream(codec, rate=rate)
        vs.width, vs.height, vs.pix_fmt = w, h, pix_fmt
        opts = dict(options or {})
        if codec == "libx264":
            opts.setdefault("preset", "ultrafast" if not bframes else "medium")
            if not bframes:
                opts.setdefault("bf", "0")
        vs.codec_context.options = opts
        if bt709:
            cc = vs.codec_context
            cc.colorspace = cc.color_primaries = cc.color_trc = 1
            cc.color_range = 1
        tb = Fraction(1, rate)
        vs.codec_context.time_base = tb
        aus = None
        if audio:
            aus = out.add_stream(audio, rate=48000, layout="stereo" if audio != "pcm_s16le" else "mono")
        pts = 0
        for i in range(n):
            vf = av.VideoFrame.from_ndarray(pattern(i, w, h), format="bgr24")
            vf.pts = pts
            vf.time_base = tb
            pts += (1 + i % 2) if vfr else 1
            out.mux(vs.encode(vf))
        out.mux(vs.encode(None))
        if aus is not None:
            total = int(pts / rate * 48000)
            channels = 2 if audio != "pcm_s16le" else 1
            for start in range(0, total, 1024):
                out.mux(aus.encode(tone(start, min(1024, total - start), channels)))
            out.mux(aus.encode(None))
    return path


def damage_middle(clean: Path, damaged: Path, flips: int = 60, span: int = 6000) -> Path:
    """Write `damaged`: `clean` with `flips` bytes inverted in the `span` bytes after its middle
    (seeded: the same bytes every run)."""
    data = bytearray(clean.read_bytes())
    rng = np.random.default_rng(1)
    for i in rng.integers(len(data) // 2, len(data) // 2 + span, flips):
        data[i] ^= 0xFF
    damaged.write_bytes(bytes(data))
    return damaged


def video_stats(path: Path) -> dict[str, object]:
    """Decode a file and return frame pts (seconds), sizes and audio packet count."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        times = []
        sizes = set()
        for f in c.decode(v):
            times.append(float(f.pts * f.time_base))
            sizes.add((f.width, f.height))
    with av.open(str(path)) as c:
        audio = sum(1 for s in c.streams if s.type == "audio")
    return {"times": times, "sizes": sizes, "audio_streams": audio}


class FakeUpscaler:
    """Nearest-neighbour numpy 'model': fast and exact, with optional delay or failure."""

    provider = "fake"

    def __init__(self, scale: int = 2, delay: float = 0.0, fail_at: int | None = None) -> None:
        self.scale = scale
        self.delay = delay
        self.fail_at = fail_at
        self.calls = 0
        self.frames = 0

    def __call__(self, y: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        self.calls += 1
        if self.fail_at is not None and self.frames + len(y) > self.fail_at:
            raise RuntimeError(f"fake model failure at frame {self.fail_at}")
        self.frames += len(y)
        if self.delay:
            time.sleep(self.delay)
        return np.repeat(np.repeat(y, self.scale, axis=1), self.scale, axis=2)


@pytest.fixture
def sample_video(tmp_path: Path) -> Path:
    """A 12-frame 64x48 H.264 + AAC mp4 with B-frames."""
    return synth_video(tmp_path / "in.mp4")


@pytest.fixture(autouse=True)
def no_leaked_threads():
    """Every test must leave no 'vsr-*' thread running."""
    yield
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        alive = [t.name for t in threading.enumerate() if t.name.startswith("vsr-")]
        if not alive:
            return
        time.sleep(0.05)
    pytest.fail(f"threads still running after the test: {alive}")


def needs(path: Path) -> pytest.MarkDecorator:
    """Skip unless `path` (usually under ../shared) exists."""
    return pytest.mark.skipif(not path.exists(), reason=f"{path} not present")
