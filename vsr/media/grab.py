"""One frame of an input, as a player would show it at a given time (`vsr compare`).

Seeking is by presentation time on the video stream, then decoding forward to the last frame
that starts at or before the time asked for; inputs that cannot seek, or seek badly, are
handled without ever returning a frame from the wrong time silently.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import av
import numpy as np

from ..errors import UsageError
from ..options import SourceOptions
from .color import Image, frame_to_bgr
from .input import open_input
from .probe import count_frames

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Grabbed:
    """The frame compared: BGR pixels (upright) and where it is in the input (None: an image)."""

    bgr: Image
    seconds: float | None
    rotation: int


def grab_frame(url: str, at: float | None) -> Grabbed:
    """The frame on screen at `at` seconds (the last one starting at or before it).

    Raises:
        SourceError: the input cannot be opened or decoded.
        UsageError: `at` is negative or beyond the end of the video.
    """
    if at is not None and at < 0:
        raise UsageError(f"--at {at:g}: a time must be 0 or more seconds")
    src = open_input(SourceOptions(url, video_only=True, decoder_threads="AUTO"))
    with src.container:
        v = src.info.video
        if src.info.is_image:
            if at:
                log.warning("%s is an image: --at is ignored", url)
            return Grabbed(_upright(frame_to_bgr(src.first_frame), v.rotation), None, v.rotation)
        first = src.first_frame
        tb = first.time_base or v.time_base
        if first.pts is None or not tb:
            if at:
                raise UsageError(
                    f"cannot seek in '{url}': its frames have no timestamps",
                    hint="leave out --at to compare its first frame",
                )
            return Grabbed(_upright(frame_to_bgr(first), v.rotation), 0.0, v.rotation)
        duration = v.duration
        if duration is None and os.path.isfile(url):  # the header does not say: count
            duration = count_frames(SourceOptions(url)).duration
        if at is None:
            if duration is None:  # a pipe or a stream: reading it to the end would lose it
                raise UsageError(
                    f"the length of '{url}' is unknown, so it has no middle", hint="pass --at SECONDS"
                )
            at = duration / 2
        elif duration is not None and at > duration:
            raise UsageError(
                f"--at {at:g}s is beyond the end of '{url}' ({duration:.2f}s long)",
                hint=f"pick a time from 0 to {duration:.2f}",
            )
        frame = _frame_at(src.container, src.video, first, first.pts + round(at / tb))
        seconds = float((frame.pts - first.pts) * tb) if frame.pts is not None else at
        shown = float(frame.duration * tb) if frame.duration else 1 / float(v.rate or 25)
        if duration is None and seconds + shown < at:  # the input ended before `at`
            raise UsageError(
                f"--at {at:g}s is beyond the end of '{url}' (its last frame is at {seconds:.2f}s)",
                hint=f"pick a time from 0 to {seconds:.2f}",
            )
        return Grabbed(_upright(frame_to_bgr(frame), v.rotation), seconds, v.rotation)


def _frame_at(container: Any, video: Any, first: Any, target: int) -> Any:
    """The last frame with pts <= `target`: seek to the keyframe before it, decode forward.

    A seek that finds no frame at or before the target (indexless containers such as MPEG-TS
    seek by byte position and can land after it, or between keyframes) is redone from the first
    frame; an input that cannot seek (a pipe) is decoded forward from the first frame.
    """
    if first.pts >= target:
        return first
    try:
        _seek(container, video, target)
    except av.error.FFmpegError:
        return _decode_until(container, video, target, first)[0]
    best, found = _decode_until(container, video, target, None)
    if not found:
        try:  # back to the very start (time 0 in AV_TIME_BASE: before any start offset)
            container.seek(0)
            video.codec_context.flush_buffers()
            best, found = _decode_until(container, video, target, None)
        except av.error.FFmpegError:
            found = False
    if not found:
        log.warning("cannot seek to pts %d in this input: comparing its first frame", target)
        return first
    return best


def _seek(container: Any, video: Any, pts: int) -> None:
    container.seek(pts, stream=video, backward=True, any_frame=False)
    video.codec_context.flush_buffers()


def _decode_until(container: Any, video: Any, target: int, prev: Any) -> tuple[Any, bool]:
    """(the last frame decoded at or before `target`, else `prev`; whether there is one)."""
    best = prev
    for packet in container.demux(video):
        try:
            frames = packet.decode()
        except av.error.FFmpegError:
            continue  # a damaged packet: its neighbours still show the picture
        for f in frames:
            if f.pts is not None and f.pts > target:
                return best, best is not None
            best = f
    return best, best is not None


def _upright(bgr: Image, rotation: int) -> Image:
    """Apply the display matrix (counter-clockwise degrees), as players do."""
    k = round(rotation / 90) % 4
    return np.ascontiguousarray(np.rot90(bgr, k)) if k else bgr
