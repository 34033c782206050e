"""Picture metadata: what a video says about its pixels besides the pixels (pixel aspect
ratio, HDR10 static metadata, Dolby Vision, the frames' side data they come in).

Not the container and stream *tags* (title, language, ...: `vsr.media.streams`), and not
signals to the process (`vsr.pipeline.interrupts`). Read when the input is opened, written
when the output is (main thread). Why a module of its own: these
are the properties a phone, camera or broadcast clip carries in side channels (the codec's
VUI/SEI, the container's boxes), that PyAV only partly exposes, and that vsr must carry
exactly or say plainly that it could not.

- Sample aspect ratio: the encoder's context carries it into H.264/HEVC bitstreams and MP4's
  `pasp` box. Matroska/WebM store it only at the container level (DisplayWidth), from the
  AVStream's own field, which PyAV cannot set: `set_stream_sar` writes it through ctypes,
  after checking that the struct layout is the one it expects.
- HDR10 static metadata (mastering display colour volume, content light level): read from
  the first frame's side data, written as the encoder's SEI through its own parameters
  (x265, x264, SVT-AV1), since PyAV cannot attach side data to frames or streams.
"""

from __future__ import annotations

import ctypes
import struct
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

#: Codecs whose bitstream carries the sample aspect ratio (the encoder writes it from the
#: context); for the others only the container can.
SAR_IN_BITSTREAM = {
    "libx264",
    "libx265",
    "h264_nvenc",
    "hevc_nvenc",
    "h264_qsv",
    "hevc_qsv",
    "mpeg4",
    "mpeg2video",
    "ffv1",
    "h264_vaapi",
    "hevc_vaapi",
    "libopenh264",
}


class _Rational(ctypes.Structure):
    _fields_ = [("num", ctypes.c_int), ("den", ctypes.c_int)]


# Offsets in FFmpeg's AVStream (libavformat 59..62): index 8, time_base 32, sample_aspect_ratio 72.
_INDEX, _TIME_BASE, _SAR = 8, 32, 72
# PyAV's Stream is a Cython extension type: PyObject_HEAD (16), its vtable pointer (8), then
# `ptr`, the AVStream*.
_PTR = 24


def set_stream_sar(stream: Any, sar: Fraction) -> bool:
    """Set the AVStream's sample_aspect_ratio (what Matroska writes as DisplayWidth).

    Returns False, changing nothing, when the memory does not look like the expected layout
    (a PyAV or FFmpeg whose structs moved): the caller then resamples to square pixels.
    """
    try:
        ptr = ctypes.c_void_p.from_address(id(stream) + _PTR).value
        if not ptr:
            return False
        index = ctypes.c_int.from_address(ptr + _INDEX).value
        tb = _Rational.from_address(ptr + _TIME_BASE)
        if index != stream.index or not stream.time_base or Fraction(tb.num, tb.den or 1) != stream.time_base:
            return False
        target = _Rational.from_address(ptr + _SAR)
        target.num, target.den = sar.numerator, sar.denominator
        return True
    except (ValueError, OverflowError, ZeroDivisionError):
        return False


@dataclass(frozen=True)
class Hdr10:
    """HDR10 static metadata in the units HEVC's SEI uses.

    Chromaticities in 0.00002 steps, luminance in 0.0001 cd/m2 steps (as x265's
    `master-display` takes them); light levels in cd/m2.
    """

    green: tuple[int, int] | None = None
    blue: tuple[int, int] | None = None
    red: tuple[int, int] | None = None
    white: tuple[int, int] | None = None
    luminance: tuple[int, int] | None = None  # (max, min)
    max_cll: int | None = None
    max_fall: int | None = None

    @property
    def has_display(self) -> bool:
        return None not in (self.green, self.blue, self.red, self.white, self.luminance)

    def master_display(self) -> str:
        g, b, r, wp, lum = self.green, self.blue, self.red, self.white, self.luminance
        assert g and b and r and wp and lum
        return f"G({g[0]},{g[1]})B({b[0]},{b[1]})R({r[0]},{r[1]})WP({wp[0]},{wp[1]})L({lum[0]},{lum[1]})"

    def describe(self) -> str:
        parts = []
        if self.luminance:
            parts.append(f"mastering {self.luminance[0] / 10000:g}/{self.luminance[1] / 10000:g} cd/m2")
        if self.max_cll is not None:
            parts.append(f"MaxCLL {self.max_cll}, MaxFALL {self.max_fall}")
        return ", ".join(parts)


def side_data(frame: Any) -> list[tuple[str, Any]]:
    """(type name, side data) for each of a frame's side data, under PyAV 18 and 19 alike.

    Why: PyAV 19 (what Python 3.12+ installs) made `Frame.side_data` a real mapping whose
    iteration yields `sidedata.Type` keys; PyAV 18 yields the `SideData` objects themselves,
    each with a `.type`. Reading either through this one function keeps the HDR and Dolby
    Vision checks identical on both."""
    container = getattr(frame, "side_data", None)
    if container is None:
        return []
    found = []
    for item in container:
        kind = getattr(item, "type", None)
        sd = item
        if kind is None:  # PyAV >= 19: `item` is the key
            kind, sd = item, container[item]
        name = getattr(kind, "name", None) or str(kind).rsplit(".", 1)[-1]
        found.append((str(name), sd))
    return found


def hdr10_of(frame: Any) -> Hdr10 | None:
    """The HDR10 static metadata in a decoded frame's side data, or None."""
    found: dict[str, Any] = {}
    for kind, sd in side_data(frame):
        raw = bytes(sd)
        if kind == "MASTERING_DISPLAY_METADATA" and len(raw) >= 88:
            v = struct.unpack_from("<22i", raw)  # 3x2 primaries, white point, min, max, flags
            rats = [Fraction(v[i], v[i + 1]) if v[i + 1] else Fraction(0) for i in range(0, 20, 2)]
            if v[20]:  # has_primaries: R, G, B, white point
                (rx, ry, gx, gy, bx, by, wx, wy) = (round(float(x) * 50000) for x in rats[:8])
                found.update(red=(rx, ry), green=(gx, gy), blue=(bx, by), white=(wx, wy))
            if v[21]:  # has_luminance: min, max
                found["luminance"] = (round(float(rats[9]) * 10000), round(float(rats[8]) * 10000))
        elif kind == "CONTENT_LIGHT_LEVEL" and len(raw) >= 8:
            found["max_cll"], found["max_fall"] = struct.unpack_from("<2I", raw)
    return Hdr10(**found) if found else None


def has_dolby_vision(frame: Any, stream: Any) -> bool:
    """Whether the input carries Dolby Vision metadata (RPUs in the frames, or a DV codec tag)."""
    kinds = {kind for kind, _ in side_data(frame)}
    tag = str(getattr(stream, "codec_tag", "") or "")
    return bool(kinds & {"DOVI_METADATA", "DOVI_RPU_BUFFER"}) or tag in ("dvh1", "dvhe", "dav1", "dva1")


#: Per encoder: (its parameter option, the mastering display key, the light level key).
_HDR_PARAMS = {
    "libx265": ("x265-params", "master-display", "max-cll"),
    "libx264": ("x264-params", "mastering-display", "cll"),
    "libsvtav1": ("svtav1-params", "mastering-display", "content-light"),
}


def _svt_display(hdr: Hdr10) -> str:
    """SVT-AV1 takes the same G/B/R/WP/L form in plain numbers (0..1, cd/m2)."""
    g, b, r, wp, lum = hdr.green, hdr.blue, hdr.red, hdr.white, hdr.luminance
    assert g and b and r and wp and lum
    c = [x / 50000 for x in (*g, *b, *r, *wp)]
    return (
        f"G({c[0]},{c[1]})B({c[2]},{c[3]})R({c[4]},{c[5]})WP({c[6]},{c[7]})"
        f"L({lum[0] / 10000},{lum[1] / 10000})"
    )


def hdr_codec_options(codec: str, hdr: Hdr10, options: dict[str, str]) -> str | None:
    """Add the encoder parameters that write `hdr` as SEI/OBU metadata to `options`.

    Returns None on success, or the reason the encoder cannot carry it.
    """
    if codec not in _HDR_PARAMS:
        return f"{codec} has no way for vsr to write it"
    option, display_key, cll_key = _HDR_PARAMS[codec]
    extra = []
    if hdr.has_display:
        display = _svt_display(hdr) if codec == "libsvtav1" else hdr.master_display()
        extra.append(f"{display_key}={display}")
    if hdr.max_cll is not None:
        extra.append(f"{cll_key}={hdr.max_cll},{hdr.max_fall}")
    options[option] = ":".join(p for p in (options.get(option, ""), *extra) if p)
    return None
