"""The model stage (thread "vsr-upscale"): batches of Y planes through a `LumaUpscaler`.

It only stacks luma, runs the model and unstacks; colour work stays in the decoder and
encoder threads so the three overlap. Order is preserved by construction (one consumer, one
producer, FIFO channels), so no reorder buffer is needed.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np

from ..channel import Channel
from ..errors import VsrError
from ..frames import Frame, Item
from ..model.load import LumaUpscaler


@dataclass
class ModelCounters:
    """Written by the model stage's thread, read by the pipeline after it ends."""

    frames: int = 0
    batches: int = 0
    model_seconds: float = 0.0
    last_seconds: float = 0.0  # the latest batch: model time and frame count
    last_frames: int = 0
    batch_limit: int = 0  # live: the adaptive batch size in force


@dataclass(frozen=True)
class Batching:
    """How the model stage gathers frames into model calls, decided once by the pipeline.

    Attributes:
        batch: frames per model call at most.
        max_wait: seconds a batch may wait to fill (`Tuning.batch_wait`: None waits until it
            is full or the stream ends, 0 takes what is queued).
        max_latency: live mode's latency budget, which the batch size adapts to (None: the
            batch size is fixed).
    """

    batch: int
    max_wait: float | None = None
    max_latency: float | None = None


def run_model(
    upscaler: LumaUpscaler,
    inp: Channel[Item],
    out: Channel[Item],
    batching: Batching,
    *,
    counters: ModelCounters,
) -> None:
    """Upscale every Frame from `inp` into `out`; other items pass straight through.

    A batch holds frames of one size only (a size change flushes the batch), so one model
    call always gets one [N,1,H,W] array. Every call's time is reported to `inp`
    (`Channel.served`): in live mode the channel plans its drops with it. With `max_latency`
    (live mode) the batch limit adapts too: a batch may take at most half the latency budget,
    at the channel's measured time per frame, so larger batches (better throughput, on GPUs
    especially) are used only while they fit. How many frames wait is the channel's policy
    (`options.tuning_for`), not this stage's.
    """
    batch, max_wait, max_latency = batching.batch, batching.max_wait, batching.max_latency
    limit = batch if max_latency is None else 1
    while (items := inp.next_batch(limit, max_wait)) is not None:  # `limit` may change
        frames: list[Frame] = []
        for item in items:
            if not isinstance(item, Frame):
                out.put(item)  # audio overtakes video by at most one batch; the muxer interleaves
                continue
            if frames and frames[0].y.shape != item.y.shape:
                _run(upscaler, frames, inp, out, counters)
                frames = []
            frames.append(item)
        if frames:
            _run(upscaler, frames, inp, out, counters)
        if max_latency is not None and inp.cost is not None:
            limit = max(1, min(batch, int(0.5 * max_latency / max(inp.cost, 1e-6))))
            counters.batch_limit = limit
    out.close()


def warm_up(upscaler: LumaUpscaler, height: int, width: int, calls: int = 2) -> float:
    """Run the model on blank frames of the input's size and return the last call's seconds.

    The first call on a shape pays one-off costs (onnxruntime allocates its buffers, cuDNN
    picks algorithms) several times a normal call: paid here, before the stream starts, it
    neither delays the first frames nor passes for the model's speed in live mode's plans.
    """
    y = np.zeros((1, height, width), np.uint8)
    seconds = 0.0
    for _ in range(calls):
        t0 = time.perf_counter()
        upscaler(y)
        seconds = time.perf_counter() - t0
    return seconds


def _run(
    upscaler: LumaUpscaler,
    frames: list[Frame],
    inp: Channel[Item],
    out: Channel[Item],
    counters: ModelCounters,
) -> None:
    t0 = time.perf_counter()
    y = np.stack([f.y for f in frames])
    hr = upscaler(y)
    counters.last_seconds = time.perf_counter() - t0
    counters.model_seconds += counters.last_seconds
    counters.last_frames = len(frames)
    inp.served(len(frames), counters.last_seconds)
    n, h, w = y.shape
    s = upscaler.scale
    if hr.shape != (n, h * s, w * s) or hr.dtype != y.dtype:
        # Encoders silently rescale frames of the wrong size; never let that stretch a video.
        raise VsrError(
            f"the model returned {hr.dtype} {list(hr.shape)} for {n} frames of "
            f"{w}x{h}, expected {y.dtype} {[n, h * s, w * s]} (scale {s})"
        )
    counters.batches += 1
    for f, y in zip(frames, hr, strict=True):
        out.put(dataclasses.replace(f, y=y, source_y=f.y))  # a reference: no copy
        counters.frames += 1
