"""The offline benchmark's clip and floors, shared by scripts/bench/bench.py and
scripts/bench/bench_threads.py.

The clip is the sample scene (`vsr.lab.scene`) rendered at any size and decoded once; the
floors are work that an upscaler cannot avoid on this hardware, each measured alone: decode
only, the model only, the encoder only on the very pictures vsr encodes. `run_pipeline` runs
vsr's own Pipeline in this process, as `vsr upscale` builds it. Runs in the caller's thread
(the pipeline starts its own stage threads).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Protocol, cast

import av
import cv2
import numpy as np
import numpy.typing as npt

from vsr import ModelOptions, Pipeline, SinkOptions, SourceOptions
from vsr.media.color import is_full_range, merge_planes, split_frame

from .scene import FPS, render

#: The encoder's constant rate factor in every row of the benchmark.
CRF = 18


class LumaModel(Protocol):
    """What the floors and the pipeline run: (N, H, W) uint8 luma in, (N, sH, sW) out (vsr's
    OnnxUpscaler, or a stand-in such as the benchmark's almost free bicubic one)."""

    scale: int

    def __call__(self, y: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]: ...


@dataclass
class Clip:
    """A decoded clip: where it is, its size and timing, and its frames in order."""

    path: str
    width: int
    height: int
    rate: Fraction
    time_base: Fraction
    frames: list[av.VideoFrame]


def make_clip(path: Path, w: int, h: int, n: int) -> None:
    """Render `n` frames of the sample scene at w x h, H.264 yuv420p (deterministic)."""
    with av.open(str(path), "w", options={"fflags": "+bitexact"}) as out:
        vs = out.add_stream("libx264", rate=FPS, options={"crf": "20", "preset": "medium"})
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        for i in range(n):
            bgr = render(i / FPS)
            if bgr.shape[:2] != (h, w):
                shrink = w * h < bgr.shape[0] * bgr.shape[1]
                bgr = np.asarray(
                    cv2.resize(bgr, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC),
                    dtype=np.uint8,
                )
            vf = av.VideoFrame.from_ndarray(bgr, format="bgr24")
            vf.pts, vf.time_base = i, Fraction(1, FPS)
            out.mux(vs.encode(vf))
        out.mux(vs.encode(None))


def decode_frames(path: str, limit: int) -> Iterator[av.VideoFrame]:
    """Yield up to `limit` (0: all) decoded frames, slice-threaded like vsr."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "SLICE"
        for count, frame in enumerate(container.decode(stream), 1):
            yield frame
            if limit and count >= limit:
                return


def load_clip(path: str, limit: int) -> Clip:
    """Decode up to `limit` (0: all) frames of `path` into a Clip.

    Raises:
        SystemExit: no frame could be decoded (the benchmark scripts stop there).
    """
    with av.open(path) as container:
        s = container.streams.video[0]
        rate = Fraction(s.average_rate or s.guessed_rate or FPS)
        tb = s.time_base or Fraction(1, 90000)
    frames = list(decode_frames(path, limit))
    if not frames:
        raise SystemExit(f"bench: no decodable video frame in {path}")
    return Clip(path, frames[0].width, frames[0].height, rate, tb, frames)


class Encoder:
    """libx264 (preset, CRF 18, yuv420p) into an .mp4, set up like vsr's sink."""

    def __init__(self, path: Path, clip: Clip, w: int, h: int, preset: str) -> None:
        self.out = av.open(str(path), "w")
        self.stream = self.out.add_stream(
            "libx264", rate=clip.rate, options={"crf": str(CRF), "preset": preset}
        )
        self.stream.width, self.stream.height, self.stream.pix_fmt = w, h, "yuv420p"
        self.stream.codec_context.time_base = clip.time_base
        self.stream.time_base = clip.time_base
        self.time_base = clip.time_base

    def encode(self, vf: av.VideoFrame, pts: int | None) -> None:
        vf.pts, vf.time_base = pts, self.time_base
        self.out.mux(self.stream.encode(vf))

    def close(self) -> None:
        self.out.mux(self.stream.encode(None))
        self.out.close()


def even(n: int) -> int:
    """`n` rounded up to an even number (yuv420p needs even sizes)."""
    return n + n % 2


def floor_decode(clip: Clip, limit: int) -> int:
    """The decoder alone: demux and decode, frames discarded; returns the frame count."""
    return sum(1 for _ in decode_frames(clip.path, limit))


def floor_model(
    up: LumaModel, batches: list[npt.NDArray[np.uint8]], keep: list[npt.NDArray[np.uint8]]
) -> int:
    """The model on every (N, H, W) batch; the outputs are kept (a reference, no copy) for the
    encode floor, so that it encodes the very pictures vsr encodes. Returns the frame count."""
    keep.clear()
    for b in batches:
        keep.append(up(b))
    return sum(len(b) for b in batches)


def output_frames(clip: Clip, luma: list[npt.NDArray[np.uint8]], s: int) -> list[av.VideoFrame]:
    """The upscaled pictures as vsr's native path composes them (its luma, bicubic chroma,
    yuv420p), for the encode floor: sharper pictures cost the encoder more than bicubic
    ones (about 10% with libx264 veryfast here), so a bicubic floor would flatter it.

    Args:
        clip: the decoded clip.
        luma: the model's output batches, (N, sH, sW) uint8, in frame order.
        s: the scale (unused: the luma already has the output size).
    """
    frames = []
    for f, y in zip(clip.frames, (y for batch in luma for y in batch), strict=True):
        vf = cast(
            av.VideoFrame,
            merge_planes(y, split_frame(f, native=True)[1], 8, "yuv420p", is_full_range(f), pad=True),
        )
        vf.pts = f.pts
        frames.append(vf)
    return frames


def floor_encode(frames: list[av.VideoFrame], clip: Clip, s: int, preset: str, tmp: Path) -> int:
    """The encoder alone: `frames` are already output-size yuv420p. Returns the frame count."""
    enc = Encoder(tmp / "floor_encode.mp4", clip, even(clip.width * s), even(clip.height * s), preset)
    for f in frames:
        enc.encode(f, f.pts)
    enc.close()
    return len(frames)


def run_pipeline(clip: Clip, upscaler: LumaModel, batch: int, preset: str, out: Path, frames: int = 0) -> int:
    """vsr's Pipeline in this process, as `vsr upscale` builds it, with a given upscaler.

    Returns:
        The frames it wrote.
    """
    p = Pipeline(
        SourceOptions(clip.path, max_frames=frames or None),
        ModelOptions(batch=batch),
        SinkOptions(str(out), preset=preset, crf=CRF, overwrite=True),
        upscaler=upscaler,
    )
    return p.run().frames
