"""What a video packet's bytes say about where a decoder can start (pure functions over bytes;
called by the scale-out keyframe scan in the driver's thread and by a segment's source when it
opens the input).

A container's keyframe flag is not enough to start decoding a segment there: muxers flag
non-IDR I-frames whose followers may reference frames before them, and a decoder that starts
mid-stream has not seen what a straight decode learnt on its way there: parameter sets sent
in-band (H.264/HEVC SPS/PPS that change mid-stream) and the x264 version SEI of the first
access unit (FFmpeg's H.264 decoder decodes 4:4:4 CABAC streams of x264 before build 151
differently; without it a segment conceals damage that a straight decode does not have).

`AccessUnit` reads one packet: whether it is a random access point, and which of those
state-setting NAL units it carries. `frame()` puts NAL units back into the stream's framing
(length-prefixed, as MP4/Matroska store H.264/HEVC, or Annex B start codes, as MPEG-TS).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

#: Codecs whose packets are NAL units (the only ones whose keyframes need a closer look).
NAL_CODECS = frozenset({"h264", "hevc"})

#: The x264 version SEI's user-data text; FFmpeg reads the build from it.
X264_VERSION = b"x264 - core "

_H264_SPS, _H264_PPS, _H264_SEI, _H264_IDR, _H264_AUD = 7, 8, 6, 5, 9
_HEVC_VPS, _HEVC_SPS, _HEVC_PPS, _HEVC_AUD, _HEVC_PREFIX_SEI = 32, 33, 34, 35, 39
_H264_RECOVERY_POINT = 6


@dataclass(frozen=True)
class AccessUnit:
    """What one H.264/HEVC packet holds that matters for starting a decoder at it.

    Attributes:
        random_access: how a decoder can start here: "idr" (H.264 IDR, HEVC IDR/BLA),
            "cra" (HEVC clean random access: its leading frames are dropped), "recovery"
            (H.264 I-frame with a recovery point SEI that recovers at once: an open GOP),
            or None (not a place to start, whatever the container's flag says).
        parameter_sets: the SPS/PPS (and HEVC VPS) NAL units it carries, in order.
        encoder_sei: the x264 version SEI NAL unit it carries, or None.
    """

    random_access: str | None
    parameter_sets: tuple[bytes, ...] = ()
    encoder_sei: bytes | None = None


def nal_length_size(codec: str, extradata: bytes | None) -> int:
    """Bytes of the length in front of each NAL unit (MP4/Matroska's avcC/hvcC), or 0 for
    Annex B start codes (MPEG-TS, raw streams, or no extradata)."""
    data = extradata or b""
    if not data or data.startswith((b"\x00\x00\x01", b"\x00\x00\x00\x01")):
        return 0
    if codec == "h264" and len(data) >= 5 and data[0] == 1:
        return (data[4] & 3) + 1
    if codec == "hevc" and len(data) >= 22:
        return (data[21] & 3) + 1
    return 0


def nal_units(data: bytes, length_size: int) -> Iterator[bytes]:
    """The NAL units of one packet (header byte(s) included, no length or start code)."""
    if length_size:
        pos, end = 0, len(data)
        while pos + length_size <= end:
            size = int.from_bytes(data[pos : pos + length_size], "big")
            pos += length_size
            if size <= 0 or pos + size > end:
                return  # a damaged length: what follows cannot be trusted
            yield data[pos : pos + size]
            pos += size
        return
    starts = []
    pos = data.find(b"\x00\x00\x01")
    while pos >= 0:
        starts.append(pos + 3)
        pos = data.find(b"\x00\x00\x01", pos + 3)
    for i, begin in enumerate(starts):
        end = starts[i + 1] - 3 if i + 1 < len(starts) else len(data)
        nal = data[begin:end]
        # A four-byte start code leaves its leading zero at the end of the previous unit
        # (and trailing zeros are allowed after a unit).
        nal = nal.rstrip(b"\x00") if i + 1 < len(starts) else nal
        if nal:
            yield nal


def frame(nals: tuple[bytes, ...] | list[bytes], length_size: int) -> bytes:
    """NAL units in the stream's framing (`nal_length_size`), ready to put in a packet."""
    if length_size:
        return b"".join(len(n).to_bytes(length_size, "big") + n for n in nals)
    return b"".join(b"\x00\x00\x00\x01" + n for n in nals)


def access_unit(codec: str, data: bytes, length_size: int) -> AccessUnit:
    """Read one H.264 or HEVC packet (see `AccessUnit`)."""
    hevc = codec == "hevc"
    sets: list[bytes] = []
    sei: bytes | None = None
    access: str | None = None
    recovery = False
    for nal in nal_units(data, length_size):
        kind = (nal[0] >> 1) & 0x3F if hevc else nal[0] & 0x1F
        if hevc:
            if kind in (_HEVC_VPS, _HEVC_SPS, _HEVC_PPS):
                sets.append(nal)
            elif kind == _HEVC_PREFIX_SEI and X264_VERSION in nal:
                sei = nal
            elif kind < 32 and access is None:  # the first VCL unit decides
                access = "idr" if kind in (16, 17, 18, 19, 20) else "cra" if kind in (21, 22, 23) else ""
        else:
            if kind in (_H264_SPS, _H264_PPS):
                sets.append(nal)
            elif kind == _H264_SEI:
                if X264_VERSION in nal:
                    sei = nal
                recovery = recovery or _h264_recovers_at_once(nal)
            elif kind in (1, 5) and access is None:
                access = "idr" if kind == _H264_IDR else ("recovery" if recovery else "")
    return AccessUnit(access or None, tuple(sets), sei)


def _h264_recovers_at_once(nal: bytes) -> bool:
    """Whether an H.264 SEI NAL unit holds a recovery point SEI with recovery_frame_cnt 0
    (x264's open-GOP keyframes): the frames from it on in presentation order are exact."""
    rbsp = _unescape(nal[1:])
    pos = 0
    while pos < len(rbsp) and rbsp[pos] != 0x80:  # rbsp trailing bits end the messages
        kind = size = 0
        while pos < len(rbsp) and rbsp[pos] == 0xFF:
            kind += 255
            pos += 1
        if pos >= len(rbsp):
            return False
        kind += rbsp[pos]
        pos += 1
        while pos < len(rbsp) and rbsp[pos] == 0xFF:
            size += 255
            pos += 1
        if pos >= len(rbsp):
            return False
        size += rbsp[pos]
        pos += 1
        if kind == _H264_RECOVERY_POINT:
            # recovery_frame_cnt is the first ue(v): a single 1 bit encodes 0.
            return pos < len(rbsp) and bool(rbsp[pos] & 0x80)
        pos += size
    return False


def _unescape(data: bytes) -> bytes:
    """The RBSP of a NAL unit payload: emulation prevention bytes (00 00 03) removed."""
    return data.replace(b"\x00\x00\x03", b"\x00\x00") if b"\x00\x00\x03" in data else data


def vpx_keyframe(codec: str, data: bytes) -> bool | None:
    """Whether a VP8/VP9 packet's (first) frame is a key frame, from its frame header; None
    for other codecs (their keyframe flag is taken as it is)."""
    if codec not in ("vp8", "vp9") or not data:
        return None
    if codec == "vp8":
        return not data[0] & 1
    header = _vp9_header(_vp9_frames(data)[0])
    return header is not None and header[0] == "key"


def vpx_shows(codec: str, data: bytes) -> bool | None:
    """Whether a VP8/VP9 packet puts a frame on screen (hidden alt-ref frames do not: they
    are decoded as references only); None for other codecs."""
    if codec not in ("vp8", "vp9") or not data:
        return None
    if codec == "vp8":
        return bool(data[0] & 0x10)
    headers = [_vp9_header(f) for f in _vp9_frames(data)]
    return any(h is not None and h[1] for h in headers)


def _vp9_frames(data: bytes) -> list[bytes]:
    """The frames of a VP9 packet: one, or several packed in a superframe (its index at the
    end: a marker byte, the frame sizes, the marker again)."""
    last = data[-1]
    if last & 0xE0 == 0xC0:
        count, width = (last & 7) + 1, ((last >> 3) & 3) + 1
        size = 2 + width * count
        if len(data) >= size and data[-size] == last:
            frames, pos = [], 0
            for i in range(count):
                at = len(data) - size + 1 + i * width
                n = int.from_bytes(data[at : at + width], "little")
                frames.append(data[pos : pos + n])
                pos += n
            return [f for f in frames if f] or [data]
    return [data]


def _vp9_header(frame: bytes) -> tuple[str, bool] | None:
    """(key | inter, shown) from a VP9 frame's uncompressed header; None if it is not one."""
    if not frame or frame[0] >> 6 != 0b10:  # frame_marker
        return None
    b = frame[0]
    profile = ((b >> 5) & 1) | (((b >> 4) & 1) << 1)
    bit = 3 if profile < 3 else 2  # profile 3 has a reserved bit before show_existing_frame
    if (b >> bit) & 1:  # show_existing_frame: shows a decoded frame again
        return "inter", True
    bits = int.from_bytes(frame[:2], "big") if len(frame) > 1 else b << 8
    kind = "inter" if (bits >> (8 + bit - 1)) & 1 else "key"
    shown = bool((bits >> (8 + bit - 2)) & 1)
    return kind, shown


def prepend(codec: str, data: bytes, units: tuple[bytes, ...], length_size: int) -> bytes:
    """A packet's bytes with NAL `units` put in front of its own (after its access unit
    delimiter, which must stay first)."""
    if not units:
        return data
    head = b""
    first = next(nal_units(data, length_size), b"")
    aud = _HEVC_AUD if codec == "hevc" else _H264_AUD
    if first and ((first[0] >> 1) & 0x3F if codec == "hevc" else first[0] & 0x1F) == aud:
        end = data.find(first) + len(first)
        head, data = data[:end], data[end:]
    return head + frame(units, length_size) + data
