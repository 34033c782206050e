"""The model stage (thread "vsr-upscale"): batches of Y planes through the Upscaler.

It only stacks luma, runs the model and unstacks; colour work stays in the decoder and
encoder threads so the three overlap. Order is preserved by construction (one consumer, one
producer, FIFO channels), so no reorder buffer is needed.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np

from .channel import Channel
from .errors import VsrError
from .frames import Frame, Item
from .model import Upscaler


@dataclass
class UpscaleCounters:
    """Written by the upscaler thread, read by the pipeline after it ends."""

    frames: int = 0
    batches: int = 0
    model_seconds: float = 0.0
    last_seconds: float = 0.0  # the latest batch: model time and frame count
    last_frames: int = 0
    batch_limit: int = 0  # live: the adaptive batch size in force


def run_upscaler(upscaler: Upscaler, inp: Channel[Item], out: Channel[Item], batch: int,
                 counters: UpscaleCounters, max_wait: float | None = None,
                 max_latency: float | None = None) -> None:
    """Upscale every Frame from `inp` into `out`; other items pass straight through.

    A batch holds frames of one size only (a size change flushes the batch), so one model
    call always gets one [N,1,H,W] array. With `max_latency` (live mode) the batch limit
    adapts: a batch may take at most half the latency budget, measured per frame, so larger
    batches (better throughput, on GPUs especially) are used only while they fit.
    """
    limit = batch if max_latency is None else 1
    if max_latency is not None:
        inp.maxsize = limit
    per_frame: float | None = None
    while (items := inp.next_batch(limit, max_wait)) is not None:  # `limit` may change
        frames: list[Frame] = []
        for item in items:
            if not isinstance(item, Frame):
                out.put(item)  # audio overtakes video by at most one batch; the muxer interleaves
                continue
            if frames and frames[0].y.shape != item.y.shape:
                _run(upscaler, frames, out, counters)
                frames = []
            frames.append(item)
        if frames:
            _run(upscaler, frames, out, counters)
        if max_latency is not None and counters.batches:
            last = counters.last_seconds / max(1, counters.last_frames)
            per_frame = last if per_frame is None else 0.8 * per_frame + 0.2 * last
            limit = max(1, min(batch, int(0.5 * max_latency / max(per_frame, 1e-6))))
            counters.batch_limit = limit
            # Hold no more frames than the next batch takes: older ones would only wait
            # (adding latency) to be dropped or processed late.
            inp.maxsize = limit
    out.close()


def _run(upscaler: Upscaler, frames: list[Frame], out: Channel[Item],
         counters: UpscaleCounters) -> None:
    t0 = time.perf_counter()
    y = np.stack([f.y for f in frames])
    hr = upscaler(y)
    counters.last_seconds = time.perf_counter() - t0
    counters.model_seconds += counters.last_seconds
    counters.last_frames = len(frames)
    n, h, w = y.shape
    s = upscaler.scale
    if hr.shape != (n, h * s, w * s) or hr.dtype != np.uint8:
        # Encoders silently rescale frames of the wrong size; never let that stretch a video.
        raise VsrError(f"the model returned {hr.dtype} {list(hr.shape)} for {n} frames of "
                       f"{w}x{h}, expected uint8 {[n, h * s, w * s]} (scale {s})")
    counters.batches += 1
    for f, y in zip(frames, hr):
        out.put(dataclasses.replace(f, y=y))
        counters.frames += 1
