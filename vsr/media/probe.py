"""Measure what an input's header only claims, by decoding it (`vsr info --count`; main thread).
Also the one way a whole-file reader (this count, the scale-out keyframe scan) opens an input.

A header's frame count and duration can be wrong: an MP4 edit list hides frames that the
sample table still counts, a cut or damaged file ends early, some containers say nothing.
Decoding every frame is the only count that matches what `vsr upscale` will produce.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av

from ..errors import SourceError, reason
from ..options import SourceOptions

#: Demuxers that turn any text file into video (ANSI art): a file FFmpeg probes as one of
#: these is text, not video, and is only read so when its format is asked for by name.
#: (Here, in a module that imports little, because the fuzz corpus's per-case probe
#: process, `vsr.lab.tolerant_decode`, imports it too.)
TEXT_FORMATS = frozenset({"tty", "bin", "adf", "idf", "xbin"})


def open_video(url: str, format: str | None = None, options: dict[str, str] | None = None) -> tuple[Any, Any]:
    """(container, its first video stream), for readers that go through a whole file.

    Raises:
        SourceError: the input cannot be opened or has no video stream (the container is
            closed then).
    """
    try:
        container = av.open(url, format=format, options=dict(options or {}))
    except FileNotFoundError as exc:
        raise SourceError(f"cannot open input {url!r}: no such file or directory") from exc
    except (av.error.FFmpegError, OSError) as exc:
        raise SourceError(f"cannot open input {url!r}: {reason(exc)}") from exc
    if not container.streams.video:
        container.close()
        raise SourceError(f"no video stream in {url!r}")
    return container, container.streams.video[0]


@dataclass(frozen=True)
class FrameCount:
    """The video's frames as decoded.

    Attributes:
        frames: frames the decoder delivered (edit lists applied, as in `vsr upscale`).
        duration: seconds from the first frame's start to the last frame's end; None when
            the frames carry no timestamps.
        decode_errors: packets that could not be decoded (their frames are not counted).
    """

    frames: int
    duration: float | None
    decode_errors: int = 0


def count_frames(opts: SourceOptions) -> FrameCount:
    """Decode the first video stream of `opts.url` to the end and count its frames.

    Raises:
        SourceError: the input cannot be opened or has no video stream.
    """
    container, video = open_video(opts.url, opts.format, dict(opts.options))
    with container:
        video.thread_type = "AUTO"
        rate = video.average_rate or video.guessed_rate
        frames = errors = 0
        first: Fraction | None = None
        end: Fraction | None = None
        for packet in container.demux(video):
            try:
                decoded = packet.decode()
            except av.error.InvalidDataError:
                errors += 1
                continue
            for f in decoded:
                frames += 1
                if f.pts is None or not f.time_base:
                    continue
                start = f.pts * f.time_base
                length = (
                    f.duration * f.time_base
                    if f.duration
                    else Fraction(1) / Fraction(rate)
                    if rate
                    else Fraction(0)
                )
                first = start if first is None else min(first, start)
                end = start + length if end is None else max(end, start + length)
    duration = float(end - first) if first is not None and end is not None else None
    return FrameCount(frames, duration, errors)
