"""What the live tests and the live benchmark check in a recording of the test stream: where
each stream starts. Runs in the caller's thread."""

from __future__ import annotations

from pathlib import Path

import av


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
