"""Choosing the batch size when the user did not (main thread, before the stages start)."""

from __future__ import annotations

import logging
import time

import numpy as np

from .load import LumaUpscaler, provider_of

log = logging.getLogger(__name__)


def auto_batch(
    upscaler: LumaUpscaler, height: int, width: int, limit: int = 16, memory_budget: int = 2 << 30
) -> int:
    """The batch size to use when the user did not choose one.

    On the CPU a batch only multiplies memory (ESPCN's 64-channel activations are ~1 GiB per
    4 frames at 640x360) without speeding the convolutions up, so it is 1. On a GPU, batches
    of 1..`limit` frames are timed on a crop and the smallest one within 5% of the best
    throughput is taken, capped so the activations fit `memory_budget`.
    """
    if provider_of(upscaler) != "CUDAExecutionProvider":
        return 1
    per_frame_bytes = 4 * 64 * 2 * height * width  # two 64-channel float32 activations
    cap = max(1, min(limit, memory_budget // max(1, per_frame_bytes)))
    h, w = min(height, 256), min(width, 256)
    y = np.random.default_rng(0).integers(0, 256, (cap, h, w), dtype=np.uint8)
    timings: dict[int, float] = {}
    b = 1
    while b <= cap:
        upscaler(y[:b])  # warm-up: cuDNN picks its algorithms per shape
        t0 = time.perf_counter()
        for _ in range(3):
            upscaler(y[:b])
        timings[b] = (time.perf_counter() - t0) / (3 * b)
        b *= 2
    best = min(timings.values())
    chosen = min(k for k, v in timings.items() if v <= best * 1.05)
    log.info(
        "batch auto: %s ms/frame for batches %s -> %d",
        [round(v * 1000, 2) for v in timings.values()],
        list(timings),
        chosen,
    )
    return chosen
