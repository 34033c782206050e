"""How many frames a tolerant PyAV decode gets out of a file, whatever is wrong with it: what
makes a fuzz case "recoverable" (vsr.lab.fuzz).

Run by its path as a process of its own (`python .../tolerant_decode.py FILE...` prints one
count a line), since PyAV may crash on damaged data; that way it imports PyAV and
`vsr.media.probe`'s list of text demuxers alone, not the rest of vsr (a start-up in 0.2 s).
"""

from __future__ import annotations

import contextlib
import sys


def tolerant_decode(path: str) -> int:
    """Frames PyAV can get out of the first video stream, every error caught on the way.

    Returns:
        The frame count; 0 for a file PyAV cannot open, without video, or of a text demuxer.
    """
    import av

    from vsr.media.probe import TEXT_FORMATS  # vsr refuses them unless named: not recoverable

    try:
        container = av.open(path)
    except Exception:  # noqa: BLE001 - anything unreadable is simply not recoverable
        return 0
    frames = 0
    with container:
        if container.format.name in TEXT_FORMATS or not container.streams.video:
            return 0
        video = container.streams.video[0]
        packets = container.demux(video)
        while True:
            try:
                packet = next(packets)
            except Exception:  # noqa: BLE001 - StopIteration or a demuxer error: the end
                break
            with contextlib.suppress(Exception):
                frames += len(video.decode(packet))
        with contextlib.suppress(Exception):
            frames += len(video.decode(None))
    return frames


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(tolerant_decode(arg), flush=True)
