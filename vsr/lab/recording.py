"""What the tests and the live benchmark check in an output made from the test media
(`vsr.lab.media`): where each stream starts, and where its tone is heard. Runs in the
caller's thread."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def first_times(path: Path) -> dict[str, float]:
    """The earliest packet time of each stream type in a recording.

    Whether what `vsr live` recorded from the test stream starts its video with its audio.

    Returns:
        Stream type ("video", "audio", ...) -> seconds.
    """
    first: dict[str, float] = {}
    with av.open(str(path)) as c:
        for pk in c.demux():
            if pk.pts is not None:
                t = float(pk.pts * pk.time_base)
                first[pk.stream.type] = min(first.get(pk.stream.type, t), t)
    return first


def audible(path: Path, threshold: float = 0.05) -> tuple[float, float] | None:
    """Where the first audio stream's sound (the test tone, `vsr.lab.media.tone`) starts and
    ends, in seconds on the file's clock: what a viewer hears, whatever the codec's priming,
    padding or packet sizes. None when it is silent or has no audio.

    Args:
        path: the file.
        threshold: the level (full scale 1.0) a sample must pass to count as sound.
    """
    first = last = None
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return None
        for frame in c.decode(c.streams.audio[0]):
            if frame.pts is None or not frame.time_base:
                continue
            x = frame.to_ndarray()
            if not frame.format.is_planar:
                x = x.reshape(-1, len(frame.layout.channels)).T
            level = np.abs(x.astype(np.float64))
            if x.dtype.kind in "iu":
                level /= float(np.iinfo(x.dtype.name).max)
            loud = np.nonzero(level.max(axis=0) > threshold)[0]
            if not len(loud):
                continue
            t0 = float(frame.pts * frame.time_base)
            if first is None:
                first = t0 + loud[0] / frame.sample_rate
            last = t0 + (loud[-1] + 1) / frame.sample_rate
    return None if first is None or last is None else (float(first), float(last))
