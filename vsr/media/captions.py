"""Closed captions (CEA-608/708 in ATSC A/53 user data) from decoded frames to encoded ones.

Broadcast and HLS H.264 carry captions in SEI messages, which FFmpeg's decoder hands over as
A53_CC side data on each decoded frame; encoders with an `a53cc` option (libx264, libx265,
NVENC, QSV H.264, MPEG-2) write that side data back as SEI. vsr makes new frames after the
model, so the side data must be carried across: `a53_of` reads it in the decode thread (it
travels on `frames.Frame.captions`), `attach_a53` puts it on the encoder's frame in the
compose thread.

Why ctypes: PyAV (18 and 19) reads frame side data but cannot add any. `attach_a53` calls
libavutil's own `av_frame_new_side_data` on the frame's AVFrame, in the very libavutil PyAV
loaded, after checking that the memory it touches is laid out as expected; when it is not
(another PyAV or FFmpeg), it attaches nothing and says so once, rather than guess.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
from typing import Any

import av

from .picture_metadata import side_data

log = logging.getLogger(__name__)

#: AVFrameSideDataType's AV_FRAME_DATA_A53_CC (stable since FFmpeg 1.x).
AV_FRAME_DATA_A53_CC = 1
#: The encoder option that writes A53 side data as SEI (FFmpeg's name for every encoder).
A53_OPTION = "a53cc"

# PyAV's Frame is a Cython extension type: PyObject_HEAD (16), its vtable pointer (8), then
# `ptr`, the AVFrame*. In AVFrame: data[8] (64 bytes), linesize[8] (32), extended_data (8),
# then width and height (int each). AVFrameSideData: type (int, padded to 8), data, size.
_PTR = 24
_WIDTH, _HEIGHT = 104, 108
_SD_DATA, _SD_SIZE = 8, 16


def a53_of(frame: Any) -> bytes | None:
    """The A53 closed-caption payload of a decoded frame (cc_data triplets), or None."""
    for kind, sd in side_data(frame):
        if kind == "A53_CC":
            data = bytes(sd)
            return data or None
    return None


def carries_captions(codec_context: Any) -> bool:
    """Whether the encoder writes A53 side data as SEI (it has an `a53cc` option)."""
    try:
        return any(o.name == A53_OPTION for o in codec_context.supported_options.private)
    except AttributeError:
        return False


def attach_a53(frame: Any, data: bytes) -> bool:
    """Attach `data` as A53_CC side data to the av.VideoFrame `frame` for its encoder.

    Returns False, changing nothing, when libavutil cannot be found or the frame's memory
    does not look like the expected layout.
    """
    lib = _avutil()
    if lib is None or not data:
        return False
    try:
        ptr = ctypes.c_void_p.from_address(id(frame) + _PTR).value
        if not ptr or not _looks_like(frame, ptr):
            _layout_warning()
            return False
        sd = lib.av_frame_new_side_data(
            ctypes.c_void_p(ptr), AV_FRAME_DATA_A53_CC, ctypes.c_size_t(len(data))
        )
        if not sd:
            return False
        target = ctypes.c_void_p.from_address(sd + _SD_DATA).value
        size = ctypes.c_size_t.from_address(sd + _SD_SIZE).value
        if not target or size != len(data):
            _layout_warning()
            return False
        ctypes.memmove(target, data, len(data))
        return True
    except (ValueError, OverflowError, OSError):
        return False


def _looks_like(frame: Any, ptr: int) -> bool:
    """The AVFrame at `ptr` is `frame`'s: its first plane pointer, width and height match."""
    if not frame.planes:
        return False
    data0 = ctypes.c_void_p.from_address(ptr).value
    width = ctypes.c_int.from_address(ptr + _WIDTH).value
    height = ctypes.c_int.from_address(ptr + _HEIGHT).value
    return bool(data0 == frame.planes[0].buffer_ptr and width == frame.width and height == frame.height)


@functools.lru_cache(maxsize=1)
def _layout_warning() -> None:
    log.warning(
        "closed captions dropped: this PyAV/FFmpeg's frame layout is not the one vsr "
        "knows, so their side data cannot be attached"
    )


@functools.lru_cache(maxsize=1)
def _avutil() -> Any:
    """The libavutil PyAV loaded (the same copy, checked by its version), or None."""
    for path in _loaded_avutil():
        try:
            lib = ctypes.CDLL(path)
            version = lib.avutil_version()
        except (OSError, AttributeError):
            continue
        expected = av.library_versions.get("libavutil")
        if expected and (version >> 16, (version >> 8) & 0xFF, version & 0xFF) != tuple(expected):
            continue
        lib.av_frame_new_side_data.restype = ctypes.c_void_p
        lib.av_frame_new_side_data.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
        return lib
    log.warning("closed captions dropped: cannot find the libavutil PyAV uses")
    return None


def _loaded_avutil() -> list[str]:
    """Paths of libavutil: the one mapped into this process first (Linux), else the system's."""
    paths = []
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                name = line.rsplit(None, 1)[-1]
                if "libavutil" in name and name not in paths:
                    paths.append(name)
    except OSError:
        pass
    found = ctypes.util.find_library("avutil")
    if found:
        paths.append(found)
    return paths
