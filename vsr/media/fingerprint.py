"""Content fingerprints of decoded video frames (computed in whichever thread decodes: a
scale-out segment's source thread, or the scale-out check's straight decode in its own thread).

Why: a segment cut from the middle of a file is decoded by a decoder that has not seen what
came before the cut. Where that decoder's state differs from a straight decode's (an encoder
version SEI the keyframe scan does not recognise, a parameter set it missed, a decoder quirk
nobody has met yet), its pictures differ with no damage flag, the planned frame count and the
planned timestamps: only the pixels tell. The model is deterministic per frame, so equal
decoded pictures give equal outputs, and comparing one fingerprint per picture with a straight
decode's is enough to prove a segment right.

A fingerprint covers what the pipeline's colour stage reads: the pixel format, the size, the
colour matrix and range tags, and every plane's visible samples. Row padding is left out: it
holds whatever the decoder's buffer pool had there and differs between two decodes of the same
picture.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import numpy.typing as npt

#: Bytes of one fingerprint (a truncated SHA-256: fast on CPUs with SHA extensions, and 2**-128
#: is chance enough of two different pictures looking equal).
SIZE = 16


def frame_fingerprint(frame: Any) -> bytes:
    """The `SIZE`-byte fingerprint of an av.VideoFrame's picture (see the module docstring)."""
    h = hashlib.sha256()
    h.update(
        f"{frame.format.name} {frame.width}x{frame.height} {int(frame.colorspace)} "
        f"{int(frame.color_range)}".encode()
    )
    for i, plane in enumerate(frame.planes):
        for part in _visible(frame, i, plane):
            h.update(part.data)
    return h.digest()[:SIZE]


def _visible(frame: Any, index: int, plane: Any) -> list[npt.NDArray[np.uint8]]:
    """The visible bytes of plane `index`, row padding left out, as C-contiguous arrays."""
    fmt = frame.format
    data = np.frombuffer(plane, np.uint8)
    comps = [c for c in fmt.components if c.plane == index]
    line, height = plane.line_size, plane.height
    if not comps or line <= 0 or height <= 0:
        return [data]  # a palette: one block, no rows
    if len({c.plane for c in fmt.components}) == 1:  # packed: all components in one plane
        row = -(-plane.width * fmt.padded_bits_per_pixel // 8)
    else:
        row = plane.width * len(comps) * -(-max(c.bits for c in comps) // 8)
    row = min(row, line)
    if data.size >= line * height:
        rows = data[: line * height].reshape(height, line)
        return [rows if row == line else np.ascontiguousarray(rows[:, :row])]
    return [data[y * line : y * line + row] for y in range(height)]  # a short last row
