"""One segment, start to finish, on whatever worker runs it: the same threaded pipeline as
`vsr upscale`, restricted to frames start_pts <= pts < end_pts, video only, encoded with the
source's own timestamps into an MP4 part (Matroska rounds timestamps to 1 ms, so the job uses it
only for codecs MP4 cannot hold, and only when that rounding is exact).

The pipeline writes the part under a hidden temporary name and renames it when complete, so a
part that exists under its final name is whole; `describe_part()` then reads back what the
join will check (frame count, first/last pts, encoder extradata) and its hash for the manifest.
"""

from __future__ import annotations

import builtins
import hashlib
import os
import socket
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av

from ..errors import Cancelled, NoVideoFrame, SourceError, VsrError
from ..media import fingerprint
from ..model.load import LumaUpscaler, load, provider_of
from ..options import ColorPath, ModelOptions, OnError, SinkOptions, SourceOptions
from .manifest import file_sha256


@dataclass(frozen=True)
class SegmentTask:
    """Everything a worker needs for one segment (plain data: it travels to Ray workers)."""

    index: int
    source: SourceOptions  # with start_pts / end_pts / video_only set
    sink: SinkOptions  # the part's path (.mp4 or .mkv) and the job's encoder settings
    model: ModelOptions
    color: ColorPath = ColorPath.AUTO
    on_error: OnError = OnError.SKIP
    seconds: float = 0.0  # expected length, for longest-first scheduling


@dataclass(frozen=True)
class SegmentResult:
    index: int
    frames: int
    first_pts: int | None
    last_pts: int | None
    bytes: int
    sha256: str
    extradata: str
    seconds: float
    decode_errors: int = 0
    corrupt_frames: int = 0
    damage_times: tuple[float, ...] = ()  # input seconds
    worker: str = ""
    # One media.fingerprint.SIZE-byte fingerprint per frame, in the order of the part's
    # timestamps: what the segment's decoder made, for the check against a straight decode.
    fingerprints: builtins.bytes = b""  # (the field `bytes` above hides the type)


@dataclass
class SegmentProgress:
    """Frames of the running segment written so far (read by the executor for progress)."""

    index: int = -1
    frames: int = 0
    cancelled: bool = False  # set by the executor to abort the running segment


@dataclass(frozen=True)
class PartInfo:
    frames: int
    first_pts: int | None
    last_pts: int | None
    extradata: str
    pts: tuple[int, ...] = field(default=(), repr=False)


def run_segment(
    task: SegmentTask, upscaler: LumaUpscaler | None = None, progress: SegmentProgress | None = None
) -> SegmentResult:
    """Upscale one segment into its part file and describe the result.

    Raises:
        VsrError subclasses, as `vsr upscale` would for the same input range.
    """
    from ..pipeline.pipeline import Pipeline

    t0 = time.monotonic()
    try:
        pipeline = Pipeline(
            task.source,
            task.model,
            task.sink,
            upscaler=upscaler,
            on_error=task.on_error,
            color=task.color,
            log_notes=False,
        )
    except NoVideoFrame:
        # Damage took every frame of this range: an empty segment (its frames are as lost
        # as on one machine), not a failed one. No part is written.
        return SegmentResult(
            task.index,
            0,
            None,
            None,
            0,
            "",
            "",
            time.monotonic() - t0,
            decode_errors=1,
            worker=f"{socket.gethostname()}:{os.getpid()}",
        )
    try:
        for snap in pipeline.progress():
            if progress is not None:
                progress.index, progress.frames = task.index, snap.frames
                if progress.cancelled:
                    pipeline.abort()
    finally:
        pipeline.close()
    if progress is not None and progress.cancelled:
        raise Cancelled(f"segment {task.index} cancelled")
    stats = pipeline.stats()
    path = Path(task.sink.url)
    part = describe_part(path, pipeline.info.video.time_base)
    if part.frames != stats.frames:
        raise VsrError(f"segment {task.index}: {stats.frames} frames encoded but {part.frames} in '{path}'")
    fingerprints = bytes(pipeline.src_counters.fingerprints)
    if task.source.fingerprints and len(fingerprints) != part.frames * fingerprint.SIZE:
        raise VsrError(
            f"segment {task.index}: {len(fingerprints) // fingerprint.SIZE} frames "
            f"fingerprinted but {part.frames} in '{path}'"
        )
    return SegmentResult(
        task.index,
        part.frames,
        part.first_pts,
        part.last_pts,
        path.stat().st_size,
        file_sha256(path),
        part.extradata,
        time.monotonic() - t0,
        stats.decode_errors,
        stats.corrupt_frames,
        stats.damage_times,
        f"{socket.gethostname()}:{os.getpid()}",
        fingerprints,
    )


def describe_part(path: Path, time_base: Fraction) -> PartInfo:
    """Count a part's video packets and read its timestamp range (in the source's `time_base`)
    and extradata.

    The MP4 muxer may store a finer time base than the source's (it raises timescales below
    10000, e.g. Matroska's 1/1000 becomes 1/16000); the timestamps convert back exactly.

    Raises:
        SourceError: the part is missing, truncated or not a video file.
    """
    try:
        with av.open(str(path)) as c:
            v = c.streams.video[0]
            extradata = hashlib.sha256(bytes(v.codec_context.extradata or b"")).hexdigest()
            raw = [p.pts for p in c.demux(v) if p.size and p.pts is not None]
            ratio = Fraction(v.time_base or time_base) / time_base
    except (av.error.FFmpegError, OSError, IndexError) as exc:
        raise SourceError(f"segment file '{path}' is unreadable: {exc}") from exc
    pts = sorted(p * ratio for p in raw)
    if any(p.denominator != 1 for p in pts):
        raise SourceError(
            f"segment file '{path}' has timestamps that do not fall on the source's time base {time_base}"
        )
    ints = tuple(int(p) for p in pts)
    return PartInfo(len(ints), ints[0] if ints else None, ints[-1] if ints else None, extradata, ints)


class SegmentWorker:
    """A warm worker: loads the model once, then runs segment after segment.

    Wrapped with `ray.remote` (one actor per GPU slot) by the Ray executor; `frames()` may be
    called while `run()` works (a threaded actor). The local executor needs no such object: its
    threads share one model in one process.
    """

    def __init__(self, model: ModelOptions) -> None:
        self.upscaler = load(model)
        self.progress = SegmentProgress()

    def run(self, task: SegmentTask) -> SegmentResult:
        self.progress = SegmentProgress(task.index, 0)
        return run_segment(task, self.upscaler, self.progress)

    def frames(self) -> tuple[int, int]:
        return self.progress.index, self.progress.frames

    def provider(self) -> str:
        return provider_of(self.upscaler)

    def probe(self, input_url: str, marker: str) -> str:
        """Check, on this worker's machine, that the input and the work directory are shared:
        the driver wrote `marker` into the work directory; this worker must see it and be able
        to write beside it. Returns "" when fine, else what is wrong."""
        host = socket.gethostname()
        if not os.path.exists(input_url):
            return f"worker on {host} cannot read the input '{input_url}'"
        if not os.path.exists(marker):
            return f"worker on {host} does not see the work directory '{Path(marker).parent}'"
        try:
            mine = Path(f"{marker}.{host}.{os.getpid()}")
            mine.write_text("ok")
            mine.unlink()
        except OSError as exc:
            return f"worker on {host} cannot write to '{Path(marker).parent}': {exc.strerror or exc}"
        return ""
