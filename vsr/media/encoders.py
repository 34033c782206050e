"""Encoder families: what `--crf` and `--preset` mean to each encoder, and its sane defaults.

Why a table: vsr's options speak libx264 (CRF 18, preset "medium"), and every other encoder
reads them differently or not at all. Passed as they are, SVT-AV1 refused "medium", libvpx
needs `b:v 0` to honour a CRF, MPEG-1/2 only take standard frame rates, MJPEG only full-range
YUV, DNxHD only a few broadcast sizes, and hardware encoders want `cq` / `global_quality` —
so each family gets its mapping here, written once and documented in the README. Used by the
sink when it opens the encoder (main thread).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

log = logging.getLogger(__name__)

#: x264-style preset names on SVT-AV1's numeric scale (0 slowest .. 13 fastest).
SVTAV1_PRESETS = {"ultrafast": 12, "superfast": 11, "veryfast": 10, "faster": 9, "fast": 8,
                  "medium": 7, "slow": 5, "slower": 4, "veryslow": 2, "placebo": 1}
#: x264-style preset names for libvpx's cpu-used (0 slowest .. 8 fastest with realtime).
VPX_CPU_USED = {"ultrafast": 8, "superfast": 7, "veryfast": 6, "faster": 5, "fast": 5,
                "medium": 4, "slow": 2, "slower": 1, "veryslow": 0, "placebo": 0}
#: NVENC presets p1 (fastest) .. p7 (slowest) for x264's names.
NVENC_PRESETS = {"ultrafast": "p1", "superfast": "p1", "veryfast": "p2", "faster": "p3",
                 "fast": "p3", "medium": "p4", "slow": "p5", "slower": "p6", "veryslow": "p7",
                 "placebo": "p7"}
#: Frame rates MPEG-1/2 can signal.
MPEG12_RATES = [Fraction(24000, 1001), Fraction(24), Fraction(25), Fraction(30000, 1001),
                Fraction(30), Fraction(50), Fraction(60000, 1001), Fraction(60)]
#: Hardware encoder name suffixes and the hardware each needs.
HARDWARE = {"_nvenc": "an NVIDIA GPU with NVENC (and its driver)",
            "_qsv": "Intel Quick Sync Video (an Intel GPU and its media driver)",
            "_amf": "an AMD GPU with AMF (and its driver)",
            "_vaapi": "a VA-API device (/dev/dri/renderD128)",
            "_v4l2m2m": "a V4L2 memory-to-memory encoder device",
            "_videotoolbox": "macOS VideoToolbox",
            "_mf": "Windows Media Foundation",
            "_vulkan": "a Vulkan video encode device"}


def hardware_of(codec: str) -> str | None:
    """What hardware `codec` needs, or None for a software encoder."""
    return next((need for suffix, need in HARDWARE.items() if codec.endswith(suffix)), None)


@dataclass(frozen=True)
class Mapping:
    """How one encoder is set up: its private options and codec-context fields."""

    options: dict[str, str]
    bit_rate: int | None = None  # set cc.bit_rate (None: leave it)
    qrange: tuple[int, int] | None = None  # cc.qmin, cc.qmax
    time_base: Fraction | None = None  # an encoder that needs a standard rate's time base
    note: str = ""


def mapping(codec: str, private: set[str], crf: int | None, preset: str | None, live: bool,
            rate: Fraction | None, verbose: bool = False) -> Mapping:
    """The options that give `codec` vsr's meaning of `--crf` (x264's scale, lower = better)
    and `--preset` (x264's names; numbers pass through to encoders that take numbers).

    Args:
        private: the encoder's private option names (`cc.supported_options.private`).
        rate: the input's frame rate (for encoders that need a standard one).
        verbose: let the encoder's own log through (its banner otherwise stays quiet).
    """
    opts: dict[str, str] = {}
    named = str(preset) if preset is not None else None
    if codec in ("libx264", "libx265"):
        if crf is not None:
            opts["crf"] = str(crf)
        if named:
            opts["preset"] = named
        if live:
            opts["tune"] = "zerolatency"  # no lookahead or B-frames: frames leave at once
        if codec == "libx265":  # x265 prints a page of info (and size warnings) otherwise
            opts["x265-params"] = f"log-level={'info' if verbose else 'error'}"
        return Mapping(opts)
    if codec == "libsvtav1":
        opts["svtav1-params"] = f"log-level={3 if verbose else 1}"
        if named is not None:
            opts["preset"] = str(SVTAV1_PRESETS.get(named, named))
        if crf is not None:  # SVT-AV1's 0..63: +12 keeps x264's 18 (-> 30) and 23 (-> 35, its default)
            opts["crf"] = str(min(63, crf + 12))
        return Mapping(opts)
    if codec in ("libvpx", "libvpx-vp9"):
        # libvpx's defaults are its slowest ("good", cpu-used 0, one thread per frame): about
        # 1 fps at 1080p; "medium" maps near libx264 medium in speed and quality.
        opts.update({"deadline": "realtime" if live else "good", "row-mt": "1",
                     "cpu-used": str(VPX_CPU_USED.get(named or "medium", named or "4"))})
        if crf is not None:  # libvpx's 4..63; constant quality needs b:v 0
            opts["crf"] = str(min(63, max(4, crf + 13)))
            return Mapping(opts, bit_rate=0)
        return Mapping(opts)
    if codec in ("mpeg1video", "mpeg2video"):
        want = rate or Fraction(25)
        std = min(MPEG12_RATES, key=lambda r: abs(float(r) - float(want)))
        note = "" if std == want else (f"{codec} takes only standard frame rates: {float(want):.3f} fps "
                                       f"is written as {float(std):.3f} fps (timestamps rounded)")
        q = _qscale(crf)
        return Mapping(opts, qrange=(q, q), time_base=1 / std, note=note)
    if codec == "mpeg4" or codec.startswith("msmpeg4") or codec in ("h263", "h263p", "flv"):
        q = _qscale(crf)
        return Mapping(opts, qrange=(q, q))
    if codec == "mjpeg":
        opts["qscale"] = "2"
        return Mapping(opts, qrange=(1, 3))
    if codec == "dnxhd":
        # DNxHD proper only takes a few broadcast sizes and bit rates; DNxHR takes any size.
        opts["profile"] = "dnxhr_hq"
        return Mapping(opts)
    if codec == "prores_ks" and named in ("ultrafast", "superfast", "veryfast", "faster", "fast"):
        return Mapping({"profile": "standard"})
    if hardware_of(codec) is not None:
        if codec.endswith("_nvenc"):
            if named:
                opts["preset"] = NVENC_PRESETS.get(named, named)
            if crf is not None and "cq" in private:
                opts["cq"] = str(min(51, crf + 1))
                return Mapping(opts, bit_rate=0)
        elif codec.endswith("_qsv") and crf is not None:
            opts["global_quality"] = str(crf + 2)
        elif codec.endswith("_amf") and crf is not None:
            opts.update({"rc": "cqp", "qp_i": str(crf), "qp_p": str(crf + 2)})
        elif codec.endswith("_vaapi") and crf is not None:
            opts["qp"] = str(crf + 2)
        return Mapping(opts)
    # Anything else (lossless and intermediate codecs): its own defaults; a CRF or preset the
    # encoder knows by that name still passes.
    if crf is not None and "crf" in private:
        opts["crf"] = str(crf)
    if named and "preset" in private:
        opts["preset"] = named
    return Mapping(opts)


def _qscale(crf: int | None) -> int:
    """x264's CRF on the MPEG-1/2/4 quantiser scale (2 best .. 31): CRF 18 -> 3, 23 -> 5."""
    return 3 if crf is None else max(2, min(31, round((crf - 12) / 2.5) + 1))


def preferred_pix_fmt(codec: str, chosen: str) -> str:
    """MJPEG writes full-range YUV (the yuvj formats): limited range it refuses."""
    if codec == "mjpeg" and chosen.startswith("yuv") and not chosen.startswith("yuvj") \
            and chosen in ("yuv420p", "yuv422p", "yuv444p"):
        return "yuvj" + chosen[3:]
    return chosen


def apply(cc: Any, m: Mapping) -> None:
    """Set the codec-context fields of `m` on `cc` (before it is opened)."""
    if m.bit_rate is not None:
        cc.bit_rate = m.bit_rate
    if m.qrange is not None:
        cc.qmin, cc.qmax = m.qrange
    if m.time_base is not None:
        cc.time_base = m.time_base
        cc.framerate = 1 / m.time_base
