"""What this CPU computes natively: its feature flags, read once, and the questions engines ask
of them (bfloat16 and float16 arithmetic, int8 dot products that sum in 32 bits).

Why by flags and never by trying: OpenVINO runs bfloat16 on a CPU without it by emulation
(slower than float32), and onnxruntime's int8 kernels on a CPU without VNNI give wrong pixels
silently (`vsr.model.quant`); neither says so. Linux's /proc/cpuinfo names are used; where
the flags cannot be read, nothing is assumed native (the safe side costs only speed).
"""

from __future__ import annotations

import functools
import hashlib
import platform
from pathlib import Path

#: Flags whose bfloat16 dot products run in hardware: AVX-512 BF16 (AMD Zen 4 and later,
#: Intel Cooper Lake) and AMX (Intel Sapphire Rapids and later).
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
#: Flags whose float16 arithmetic runs in hardware (Intel Sapphire Rapids' AVX512-FP16, AMX-FP16).
FP16_FLAGS = frozenset({"avx512_fp16", "amx_fp16"})
#: Flags whose int8 dot products accumulate in 32 bits (see `vsr.model.quant`).
VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})
#: The flags that decide which kernels the engines pick: printed beside every benchmark
#: table, and part of the engine choice's cache key.
KERNEL_FLAGS = (
    "avx2",
    "avx512f",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_bf16",
    "amx_int8",
    "amx_fp16",
)


@functools.cache
def flags() -> frozenset[str] | None:
    """This CPU's feature flags (None where they cannot be read: not Linux, or no flags line)."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return None


def model_name() -> str:
    """The CPU's model name as the kernel reports it ("" where unknown)."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return ""
    for line in text.splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return ""


def is_x86(machine: str | None = None) -> bool:
    return (machine or platform.machine()).lower() in ("x86_64", "amd64", "i386", "i686", "x86")


def native_bf16(have: frozenset[str] | set[str] | None = None) -> bool:
    """Whether the CPU computes bfloat16 in hardware (`have`: its flags, default this CPU's)."""
    have = flags() if have is None else have
    return bool(have and have & BF16_FLAGS)


def native_fp16(have: frozenset[str] | set[str] | None = None) -> bool:
    """Whether the CPU computes float16 in hardware (`have`: its flags, default this CPU's)."""
    have = flags() if have is None else have
    return bool(have and have & FP16_FLAGS)


def kernel_flags() -> list[str]:
    """Those of `KERNEL_FLAGS` this CPU has."""
    have = flags() or frozenset()
    return [f for f in KERNEL_FLAGS if f in have]


def describe() -> str:
    """One line for a benchmark table: machine, model name, the kernel flags it has."""
    named = " ".join(kernel_flags()) or "(flags unknown)"
    return f"{platform.machine()} {model_name() or 'unknown CPU'}: {named}"


def identity() -> str:
    """A short key for this kind of CPU: the same model and kernel flags give the same key
    (a VM moved to another host of the same kind keeps its cached engine choices)."""
    text = f"{platform.machine()}|{model_name()}|{' '.join(kernel_flags())}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]
