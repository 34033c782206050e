"""The int8 ship rule, measured: an int8 model ships only if it is at least 1.4x as fast as its
float model and no more than 0.1 dB below it on Set5 and Set14, on AVX2-only and VNNI CPUs
alike (issue #14).

Why one module: `scripts/models/quantize.py` checks the rule on the CPU a model is made on, and
`scripts/bench/bench_int8.py` re-checks every bundled int8 model on whatever CPU it runs on
(onnxruntime picks different int8 kernels with and without VNNI, so a figure from one kind of
CPU says nothing certain about the other); both must measure the same way.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

from . import protocol

MIN_SPEEDUP = 1.4
MAX_LOSS_DB = 0.1
#: The frame size the speed is measured at (the size `scripts/bench/bench.py` reports too).
SPEED_SIZE = (640, 360)


def psnr_of(model: Path, scale: int, folder: Path) -> float:
    """Mean PSNR of `model` on a folder of images under the shared protocol, as vsr runs it."""
    from vsr.model.load import OnnxUpscaler
    from vsr.options import Device

    return round(protocol.mean_psnr(protocol.luma_runner(OnnxUpscaler(model, Device.CPU)), scale, folder), 3)


def speedup(fp32: Path, int8: Path, rounds: int = 15, threads: int = 0) -> float:
    """Median float time / median int8 time for a 640x360 frame, both on onnxruntime
    (`speedup_on`)."""
    return speedup_on(fp32, int8, rounds, threads)[0]


def speedup_on(
    fp32: Path, int8: Path, rounds: int = 15, threads: int = 0, engine: str = "onnxruntime"
) -> tuple[float, tuple[str, str]]:
    """Median float time / median int8 time for a 640x360 frame, the two runs interleaved so
    that other load on the machine hits both alike, after three warm-up calls each (with one,
    the same model pair measured 1.42x and 1.86x in two runs on an idle machine), and what
    ran each ("onnxruntime fp32", "openvino bf16", ...).

    `engine`: "onnxruntime", or "auto": each model on the engine and precision `--engine
    auto` picks on this CPU (the float model may run in bfloat16 on OpenVINO, the int8 one as
    int8 there): the rule against the best each can do on this kind of CPU."""
    import cv2

    from vsr.model.load import OnnxUpscaler
    from vsr.options import Device

    rng = np.random.default_rng(0)
    w, h = SPEED_SIZE
    y = cv2.GaussianBlur(rng.integers(0, 256, (h, w), dtype=np.uint8), (5, 5), 2)[None]
    ups = [
        OnnxUpscaler(fp32, Device.CPU, threads=threads, engine=engine),
        OnnxUpscaler(int8, Device.CPU, threads=threads, engine=engine),
    ]

    times: list[list[float]] = [[], []]
    for up in ups:
        for _ in range(3):
            up(y)
    for _ in range(rounds):
        for up, t in zip(ups, times, strict=True):
            t0 = time.perf_counter()
            up(y)
            t.append(time.perf_counter() - t0)
    ran = (f"{ups[0].runtime.value} {ups[0].precision}", f"{ups[1].runtime.value} {ups[1].precision}")
    return statistics.median(times[0]) / statistics.median(times[1]), ran


def cpu_features() -> str:
    """The x86 features that decide which kernels onnxruntime and OpenVINO run here."""
    from vsr.model import cpu

    return cpu.describe()


def misses(loss_db: float, ratio: float) -> list[str]:
    """What of the rule a measurement misses, in words; empty when it holds."""
    out = []
    if loss_db > MAX_LOSS_DB:
        out.append(f"{loss_db:.3f} dB below float (at most {MAX_LOSS_DB})")
    if ratio < MIN_SPEEDUP:
        out.append(f"{ratio:.3f}x the float model (at least {MIN_SPEEDUP}x)")
    return out
