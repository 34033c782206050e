"""`--engine auto` and `--precision auto` on the CPU: which engine and arithmetic run a model,
decided by this CPU's features and a short measurement, cached per (model, CPU).

Main thread, while the model loads. Why measured: which engine is faster depends on the CPU
(OpenVINO's bfloat16 is 1.7-2.2x onnxruntime's float32 on a CPU with avx512_bf16; on an
AVX2-only one nothing says OpenVINO wins) and on the model (int8 kernels pay only for wide
layers), so a table written here would be wrong somewhere.

The candidates (`available`), in order of preference, for a float model: onnxruntime float32
(today's engine and the reference), OpenVINO float32, and OpenVINO bfloat16 only where the CPU
has bfloat16 units (never emulated: `vsr.model.cpu`) and the model is not known to lose more
than the quality bar in it (`guard_verdict`: bundled models are measured on Set5 and Set14 by
scripts/models/precision_guard.py, whose figures ship as models/bf16_guard.json). For an int8
model: onnxruntime int8 and OpenVINO int8, the latter only where int8 dot products sum in 32
bits (VNNI; the rule of `vsr.model.quant`). `--engine`/`--precision` narrow the list
(`allowed`); an explicit `--precision bf16` runs whatever the guard says.

The probe (`measure`) runs every candidate on one generated frame full of what is hard for
reduced precision (text, line art, stripes, flat fields, a dark ramp) and
- compares each one's pixels with the reference's: a candidate more than `MAX_LEVELS` grey
  levels off anywhere, or under `MIN_PSNR` dB against it, is not exact enough. This is a net
  for the broken (int8 kernels that saturate were 57 levels off; a model whose activations
  bfloat16 cannot hold), not the quality bar itself, which the tests hold on Set5, Set14 and
  the hard images (tests/test_engines.py): on this frame the bundled models in bfloat16 are
  2-8 levels and 50.8-58.5 dB from float32, their int8 versions on OpenVINO 1-6 levels and
  60-85 dB from onnxruntime's (2-core AMD EPYC with avx512_bf16);
- times the candidates interleaved (so load on the machine hits all alike), the fastest of
  `ROUNDS` calls each (other processes only ever add time, so the minimum is the steadiest
  figure on a shared machine), at the largest of `PROBE_SIZES` where the reference takes at
  most `PROBE_BUDGET_MS` a call.
`decide` then keeps the reference unless an exact-enough candidate is at least `MARGIN` times
faster than the best so far, so noise never trades today's engine for one no faster.
The record is cached (`vsr.model.choice_cache`) under the model file's hash, the CPU's kind,
both engines' versions and the thread count: later starts read it and measure nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
import numpy.typing as npt

from ..errors import ProviderUnavailable
from ..options import Engine, Precision
from . import choice_cache, cpu, quant

log = logging.getLogger(__name__)

#: A candidate is exact enough when no pixel of the probe frame is further than this from the
#: reference's, and the frame's PSNR against the reference is at least MIN_PSNR dB.
MAX_LEVELS = 12
MIN_PSNR = 45.0
#: How much faster a less preferred candidate must be to be chosen.
MARGIN = 1.1
#: Probe frame sizes (width, height), largest first, and the reference's time per call at
#: most for a size to be used.
PROBE_SIZES = ((640, 360), (320, 180), (160, 90))
PROBE_BUDGET_MS = 60.0
ROUNDS = 5


class Runner(Protocol):
    """An engine: uint8 [n,1,h,w] -> uint8 [n,1,sh,sw]."""

    def run(self, x: npt.NDArray[Any]) -> npt.NDArray[Any]: ...


@dataclass(frozen=True, order=True)
class Candidate:
    """One way to run a model: an engine ("onnxruntime" or "openvino") and its arithmetic
    ("fp32", "bf16", "fp16" or "int8")."""

    engine: str
    precision: str

    @property
    def label(self) -> str:
        return f"{self.engine} {self.precision}"


@dataclass(frozen=True)
class Measurement:
    """One candidate on the probe frame: ms per call (the fastest of `ROUNDS`), the most grey levels any pixel
    is from the reference's, and the PSNR against the reference (inf: identical)."""

    ms: float
    max_levels: int
    psnr: float

    @property
    def exact_enough(self) -> bool:
        return self.max_levels <= MAX_LEVELS and self.psnr >= MIN_PSNR


def available(
    model_precision: str,
    have_openvino: bool,
    flags: frozenset[str] | set[str] | None = None,
    guarded_out: str = "",
) -> list[Candidate]:
    """Every candidate this CPU and install offer for a model of `model_precision` ("fp32" or
    "int8"), most preferred (the reference: onnxruntime) first; `guarded_out`: why the model
    must not run on OpenVINO's reduced arithmetic (bfloat16 for a float model, int8 for an
    int8 one) unasked (`guard_verdict`), "" when nothing says so."""
    flags = cpu.flags() if flags is None else flags
    out = [Candidate("onnxruntime", model_precision)]
    if not have_openvino:
        return out
    if model_precision == "int8":
        if not quant.cpu_saturates_u8s8(flags) and not guarded_out:
            out.append(Candidate("openvino", "int8"))
        return out
    out.append(Candidate("openvino", "fp32"))
    if cpu.native_bf16(flags) and not guarded_out:
        out.append(Candidate("openvino", "bf16"))
    return out


#: The file scripts/models/precision_guard.py writes beside the bundled models.
GUARD_FILE = "bf16_guard.json"
#: Issue 35's bars for OpenVINO's reduced arithmetic (bfloat16 against float32, OpenVINO int8
#: against onnxruntime int8): within 0.02 dB on Set5 and Set14, and every pixel of the hard
#: images within 2 grey levels. `auto` holds a bundled model to both, so it runs bfloat16 only
#: for the models whose figures meet them (the x3 ESPCNs; the others are 3-8 levels off on
#: 0.001-0.8% of the hard images' pixels, docs/cpu-engines.md) and leaves the speed-up of the
#: others to an explicit `--precision bf16`. Keeping only the last convolution in float32 was
#: tried and does not help: the error builds up through the body (fast_x3: 4 levels either way).
GUARD_LOSS_DB = 0.02
GUARD_LEVELS = 2
_ARITHMETIC = {"bf16": "bfloat16", "int8": "int8 on OpenVINO"}


def guard_verdict(path: Path, digest: str, dirs: Sequence[Path], precision: str = "bf16") -> str:
    """Why `path` must not run in `precision` ("bf16", or "int8" on OpenVINO) unless asked: its
    measured distance in the guard file (`GUARD_FILE` in the first of `dirs` that has one) when
    its record misses a bar; "" when both hold, or when the file does not know this model
    (those bytes: `digest` is the file's SHA-256)."""
    for d in dirs:
        try:
            data = json.loads((d / GUARD_FILE).read_text())
        except FileNotFoundError:
            continue
        except (OSError, ValueError):
            return ""
        record = (data.get("models") or {}).get(path.name) if isinstance(data, dict) else None
        if not isinstance(record, dict) or record.get("sha256") != digest:
            return ""
        figures = record.get(precision) or {}
        try:
            loss, levels = float(figures["loss_db"]), int(figures["max_levels"])
        except (KeyError, TypeError, ValueError):
            return ""
        name = _ARITHMETIC.get(precision, precision)
        if loss > GUARD_LOSS_DB:
            return f"it loses {loss:.4f} dB on Set5/Set14 in {name} (at most {GUARD_LOSS_DB})"
        if levels > GUARD_LEVELS:
            return f"in {name} it is {levels} grey levels off on the hard images (at most {GUARD_LEVELS})"
        return ""
    return ""


def file_digest(path: Path) -> str:
    """The model file's SHA-256 (hex)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def allowed(
    every: Sequence[Candidate],
    engine: Engine,
    precision: Precision,
    model_precision: str,
    have_openvino: bool,
    flags: frozenset[str] | set[str] | None = None,
) -> list[Candidate]:
    """The candidates `--engine` and `--precision` leave (never empty).

    Raises:
        ProviderUnavailable: what was asked for cannot run here, with what to do instead.
    """
    flags = cpu.flags() if flags is None else flags
    if engine is Engine.OPENVINO and not have_openvino:
        raise ProviderUnavailable(
            "--engine openvino: openvino is not installed",
            hint="pip install 'vsr[cpu]' (or pip install openvino)",
        )
    if precision in (Precision.BF16, Precision.FP16) and model_precision == "int8":
        raise ProviderUnavailable(
            f"--precision {precision.value}: the model is int8; its arithmetic is fixed",
            hint="drop --precision, or pick its float model",
        )
    if precision is Precision.BF16:
        if engine is Engine.ONNXRUNTIME:
            raise ProviderUnavailable(
                "--precision bf16: onnxruntime's CPU provider has no bfloat16 convolutions",
                hint="pass --engine openvino (or auto)",
            )
        if not have_openvino:
            raise ProviderUnavailable(
                "--precision bf16 needs OpenVINO, which is not installed",
                hint="pip install 'vsr[cpu]' (or pip install openvino)",
            )
        if not cpu.native_bf16(flags):
            raise ProviderUnavailable(
                "--precision bf16: this CPU has no bfloat16 units (avx512_bf16 or amx_bf16); "
                "emulated, bfloat16 would be slower than float32",
                hint="pass --precision fp32 or auto",
            )
        return [Candidate("openvino", "bf16")]
    if precision is Precision.FP16:  # on the CPU: OpenVINO where the CPU has float16 units
        if not cpu.native_fp16(flags):
            raise ProviderUnavailable(
                "--precision fp16 on OpenVINO: this CPU has no float16 units (avx512_fp16 or amx_fp16)",
                hint="pass --precision fp32 or auto (or --engine onnxruntime)",
            )
        return [Candidate("openvino", "fp16")]
    out = [c for c in every if engine is Engine.AUTO or c.engine == engine.value]
    if precision is Precision.FP32:
        out = [c for c in out if c.precision in ("fp32", "int8")]
    if not out:  # --engine openvino for an int8 model on a CPU whose int8 kernels saturate
        raise ProviderUnavailable(
            "--engine openvino: this CPU's int8 kernels can saturate (x86 without VNNI), so an "
            "int8 model runs on onnxruntime only",
            hint="pass --engine auto, or use the float model",
        )
    return out


def decide(measured: Mapping[Candidate, Measurement], order: Sequence[Candidate]) -> Candidate:
    """The first of `order` (the reference), unless a later exact-enough candidate runs
    `MARGIN` times faster than the best so far."""
    best = order[0]
    for c in order[1:]:
        m = measured.get(c)
        if m is not None and m.exact_enough and m.ms * MARGIN <= measured[best].ms:
            best = c
    return best


def probe_frame(height: int, width: int) -> npt.NDArray[np.uint8]:
    """(1, height, width) uint8 luma, the same every run: what reduced precision finds hard.
    Black text on white and white on black, anti-aliased lines, full-contrast stripes and a
    checkerboard, flat fields with hard edges, a dark ramp, and smooth noise."""
    rng = np.random.default_rng(35)
    y = np.asarray(
        cv2.GaussianBlur(rng.integers(0, 256, (height, width), dtype=np.uint8), (5, 5), 1.5), dtype=np.uint8
    )
    q = width // 4
    y[: height // 2, :q] = 255
    y[height // 2 :, :q] = 0
    for i in range(max(1, height // 14)):
        colour = 0 if i * 14 < height // 2 else 255
        cv2.putText(
            y, "vsr 1080p x3", (2, 11 + i * 14), cv2.FONT_HERSHEY_SIMPLEX, 0.35, colour, 1, cv2.LINE_AA
        )
    band = y[:, q : 2 * q]
    band[:] = 240
    for _ in range(max(4, width // 16)):
        p1 = (int(rng.integers(band.shape[1])), int(rng.integers(height)))
        p2 = (int(rng.integers(band.shape[1])), int(rng.integers(height)))
        cv2.line(band, p1, p2, 15, 1, cv2.LINE_AA)
    yy, xx = np.mgrid[0:height, 0:q]
    stripes = np.where((xx // 2 + yy // 2) % 2 == 0, 255, 0).astype(np.uint8)
    stripes[: height // 2] = np.where(xx[: height // 2] % 3 == 0, 255, 0)
    y[:, 2 * q : 3 * q] = stripes
    ramp = (np.arange(width - 3 * q) * 38 // max(1, width - 3 * q - 1)).astype(np.uint8)
    y[height // 2 :, 3 * q :] = ramp
    y[: height // 4, 3 * q :] = 90
    y[height // 8 : height // 4, 3 * q + 3 : 3 * q + q // 2] = 200
    return y[None]


def _timed(engine: Runner, x: npt.NDArray[np.uint8]) -> float:
    t0 = time.perf_counter()
    engine.run(x)
    return (time.perf_counter() - t0) * 1000


def _compare(out: npt.NDArray[np.uint8], want: npt.NDArray[np.uint8]) -> tuple[int, float]:
    diff = np.abs(out.astype(np.int16) - want.astype(np.int16))
    mse = float(np.mean(diff.astype(np.float64) ** 2))
    return int(diff.max()), math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def measure(
    engines: Mapping[Candidate, Runner], reference: Candidate, fixed: tuple[int, int] | None = None
) -> tuple[dict[Candidate, Measurement], tuple[int, int]]:
    """Each engine's time and distance from `reference`'s pixels on the probe frame, and the
    frame's (width, height); `fixed`: the model's own (height, width), for a model that takes
    no other."""
    ref = engines[reference]
    if fixed is not None:
        h, w = fixed
    else:
        w, h = PROBE_SIZES[-1]
        small = probe_frame(h, w)[:, None]
        _timed(ref, small)  # first call: allocations
        per_pixel = min(_timed(ref, small), _timed(ref, small)) / (w * h)
        w, h = next(
            ((sw, sh) for sw, sh in PROBE_SIZES if per_pixel * sw * sh <= PROBE_BUDGET_MS), PROBE_SIZES[-1]
        )
    x = probe_frame(h, w)[:, None]
    want = ref.run(x)
    distance = {c: _compare(e.run(x), want) for c, e in engines.items()}  # also each one's warm-up
    times: dict[Candidate, list[float]] = {c: [] for c in engines}
    for _ in range(ROUNDS):
        for c, e in engines.items():
            times[c].append(_timed(e, x))
    return {c: Measurement(round(min(times[c]), 2), *distance[c]) for c in engines}, (w, h)


def cache_key(digest: str, threads: int, versions: Mapping[str, str]) -> str:
    """The model file's bytes (`digest`: its SHA-256), the CPU's kind, the engines' versions
    and the thread count."""
    ver = ",".join(f"{k}={v}" for k, v in sorted(versions.items()))
    return f"{digest[:16]}|{cpu.identity()}|{ver}|threads={threads}"


@dataclass(frozen=True)
class Choice:
    """What `choose` decided and on what: the candidate, the measurements (empty when there
    was nothing to choose between), the probe frame's (width, height), and whether the
    measurements came from the cache."""

    candidate: Candidate
    measured: Mapping[Candidate, Measurement]
    size: tuple[int, int] = (0, 0)
    cached: bool = False

    def ms_per_output_megapixel(self, scale: int) -> float | None:
        """The chosen candidate's measured time per output megapixel (None: not measured)."""
        m = self.measured.get(self.candidate)
        if m is None or not self.size[0]:
            return None
        return m.ms / (self.size[0] * self.size[1] * scale * scale / 1e6)


def choose(
    path: Path,
    digest: str,
    every: Sequence[Candidate],
    allowed_here: Sequence[Candidate],
    threads: int,
    versions: Mapping[str, str],
    build: Callable[[Candidate], Runner],
    fixed: tuple[int, int] | None = None,
) -> tuple[Choice, dict[Candidate, Runner]]:
    """What to run, from the cache or measured now (then cached), and the engines the
    measurement built (so the chosen one is not built twice; empty on a cache hit).

    Args:
        path: the model file.
        digest: its SHA-256 (`file_digest`).
        every: all candidates this CPU offers (`available`), the reference first; all are
            measured, so that any later `--engine`/`--precision` is answered from the cache.
        allowed_here: those this run may choose from (`allowed`), in the same order.
        threads: the engines' thread count (part of the key).
        versions: the engines' versions (part of the key).
        build: makes a candidate's engine.
        fixed: the model's fixed input (height, width), None when it takes any size.
    """
    if len(allowed_here) == 1:
        return Choice(allowed_here[0], {}), {}
    key = cache_key(digest, threads, versions)
    record = choice_cache.get(key)
    measured = _from_record(record, every) if record is not None else None
    if record is not None and measured is not None:
        chosen = decide(measured, allowed_here)
        log.debug(
            "engine for %s: %s (measured %s, cached in %s)",
            path.name,
            chosen.label,
            record.get("when", "?"),
            choice_cache.cache_file(),
        )
        size = record.get("size") or [0, 0]
        w, h = (
            size
            if isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) for v in size)
            else (0, 0)
        )
        return Choice(chosen, measured, (w, h), cached=True), {}
    engines = {c: build(c) for c in every}
    measured, size = measure(engines, every[0], fixed)
    ours = {
        "model": path.name,
        "cpu": cpu.describe(),
        "threads": threads,
        "versions": dict(versions),
        "size": list(size),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "measured": {
            c.label: {
                "ms": m.ms,
                "max_levels": m.max_levels,
                "psnr": None if math.isinf(m.psnr) else round(m.psnr, 2),
            }
            for c, m in measured.items()
        },
    }
    stored = choice_cache.put_first(key, ours, lambda r: _from_record(r, every) is not None)
    theirs = _from_record(stored, every) if stored is not ours else None
    if theirs is not None:  # another process stored its measurement first: run what it chose
        chosen = decide(theirs, allowed_here)
        log.info("engine for %s: %s, as another vsr process measured it", path.name, chosen.label)
        return Choice(chosen, theirs, size, cached=True), {c: e for c, e in engines.items() if c == chosen}
    chosen = decide(measured, allowed_here)
    log.info(
        "engine for %s on this CPU, measured at %dx%d: %s -> %s (kept in %s)",
        path.name,
        *size,
        ", ".join(
            f"{c.label} {m.ms:.1f} ms"
            + ("" if m.exact_enough else f" (not exact enough: {m.max_levels} levels off)")
            for c, m in measured.items()
        ),
        chosen.label,
        choice_cache.cache_file(),
    )
    return Choice(chosen, measured, size), {c: e for c, e in engines.items() if c == chosen}


def _from_record(record: dict[str, Any], every: Sequence[Candidate]) -> dict[Candidate, Measurement] | None:
    """The measurements a cached record holds, or None when it lacks one of `every` or is damaged."""
    found = record.get("measured")
    if not isinstance(found, dict):
        return None
    out = {}
    for c in every:
        m = found.get(c.label)
        if not isinstance(m, dict):
            return None
        try:
            psnr = math.inf if m["psnr"] is None else float(m["psnr"])
            out[c] = Measurement(float(m["ms"]), int(m["max_levels"]), psnr)
        except (TypeError, KeyError, ValueError):
            return None
    return out
