"""Progress display for the CLI (main thread): a tqdm bar on a terminal, or JSON lines.

JSON lines go to stderr, one object per update, so stdout stays free for a video pipe:
{"event": "progress", "frames": 120, "total": 300, "fps": 24.1, "elapsed": 4.98, "eta": 7.47}

Many inputs (`show_batch`): one bar for the whole run (frames of all files, files done/total,
the overall ETA), or JSON lines that add the files and a "file" record as each one ends.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

from ..frames import LiveStats, Stats
from ..options import ProgressStyle
from ..pipeline.run import Snapshot

if TYPE_CHECKING:
    from .batch import BatchProgress, FileResult


def resolve_style(style: ProgressStyle, stream: TextIO) -> ProgressStyle:
    """AUTO becomes BAR on a terminal and NONE otherwise (pipes, CI logs)."""
    if style is ProgressStyle.AUTO:
        return ProgressStyle.BAR if getattr(stream, "isatty", lambda: False)() else ProgressStyle.NONE
    return style


def show(
    snapshots: Iterator[Snapshot],
    style: ProgressStyle,
    stream: TextIO = sys.stderr,
    every: float = 0.5,
    label: str = "",
) -> None:
    """Consume the pipeline's progress snapshots, drawing them as `style` says."""
    if style is ProgressStyle.BAR:
        _bar(snapshots, stream, label)
    elif style is ProgressStyle.JSON:
        # Throttled to one line per `every` seconds, but the last snapshot (where the run
        # ended: frames == total) is always written: a consumer's last progress line must not
        # depend on how the run's end fell against the throttle.
        last, unwritten = 0.0, None
        for p in snapshots:
            # scale-out segment events: every one, not throttled
            stream.writelines(json.dumps(event) + "\n" for event in p.events)
            now = time.monotonic()
            if now - last >= every:
                last, unwritten = now, None
                _json_line(stream, "progress", p)
            else:
                unwritten = p
        if unwritten is not None:
            _json_line(stream, "progress", unwritten)
    else:
        for _ in snapshots:
            pass


def _bar(snapshots: Iterator[Snapshot], stream: TextIO, label: str) -> None:
    from tqdm import tqdm

    bar: Any = tqdm(
        total=None, unit="frame", file=stream, desc=label or None, dynamic_ncols=True, smoothing=0.1
    )
    try:
        for p in snapshots:
            if p.total and bar.total != max(p.total, p.frames):
                bar.total = max(p.total, p.frames)
            if p.latency is not None:  # live: what a live operator watches
                bar.set_postfix(
                    dropped=p.dropped, latency=f"{p.latency * 1000:.0f}ms", batch=p.batch, refresh=False
                )
            elif p.segments:
                bar.set_postfix(segments=f"{p.segments_done}/{p.segments}", refresh=False)
            bar.update(p.frames - bar.n)
    finally:
        bar.close()


def _json_line(stream: TextIO, event: str, p: Snapshot) -> None:
    rec: dict[str, Any] = {
        "event": event,
        "frames": p.frames,
        "total": p.total or None,
        "fps": round(p.fps, 3),
        "elapsed": round(p.elapsed, 3),
        "eta": None if p.eta is None else round(p.eta, 3),
    }
    if p.segments:
        rec.update(segments=p.segments, segments_done=p.segments_done)
    if p.latency is not None:
        rec.update(
            frames_in=p.frames_in, dropped=p.dropped, batch=p.batch, latency_ms=round(p.latency * 1000, 1)
        )
    stream.write(json.dumps(rec) + "\n")
    stream.flush()


def stats_record(stats: Stats) -> dict[str, Any]:
    """The final statistics as a JSON-able dict (the CLI's "done" event): one flat record,
    whatever the kind of run (a file run says 0 dropped, no steady state, 0 reconnects)."""
    s = stats.stages
    live = stats.live or LiveStats()
    segments = stats.scale_out.segments if stats.scale_out else 0
    return {
        "event": "done",
        "frames": stats.frames,
        "seconds": round(stats.seconds, 3),
        "fps": round(stats.fps, 3),
        "input": list(stats.input_size),
        "output_size": list(stats.output_size),
        "scale": stats.scale,
        "model": stats.model,
        "engine": stats.engine,
        "provider": stats.provider,
        "precision": stats.precision,
        "batch": stats.batch,
        "output": stats.output,
        "audio_streams": stats.audio_streams,
        "decode_errors": stats.decode_errors,
        "corrupt_frames": stats.corrupt_frames,
        "damage_times": [round(t, 3) for t in stats.damage_times],
        "repaired_timestamps": stats.repaired_timestamps,
        "discontinuities": stats.discontinuities,
        "size_changes": stats.size_changes,
        "frames_in": stats.frames_in,
        # a live run's own figures, and a scale-out job's, flat as they always were
        "dropped": live.dropped,
        "steady": {
            "seconds": live.steady.seconds,
            "frames_in": live.steady.frames_in,
            "dropped": live.steady.dropped,
        }
        if live.steady
        else None,
        "latency_ms": {k: round(v * 1000, 1) for k, v in stats.latency.items()},
        "reconnects": live.reconnects,
        "output_reconnects": live.output_reconnects,
        "input_lost": live.input_lost or None,
        **({"segments": segments} if segments else {}),
        "stages": {
            k: round(getattr(s, k), 3) for k in ("decode", "color", "model", "encode", "wait_in", "wait_out")
        },
    }


def plural(n: int, noun: str) -> str:
    """`1 frame`, `2 frames`, `0 frames`."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def show_batch(
    events: Iterable[BatchProgress | FileResult],
    style: ProgressStyle,
    stream: TextIO = sys.stderr,
    every: float = 0.5,
) -> None:
    """Consume a batch run's events (vsr.app.batch.run_batch), drawing them as `style` says.

    JSON mode writes every file's record and scale-out segment event, and a progress line
    at most every `every` seconds:
    {"event": "progress", "file": "a.mp4", "files_done": 1, "files_total": 3, "frames": 40,
     "file_frames": 16, "file_total": 24, "fps": 20.1, "elapsed": 2.0, "eta": 1.6}
    """
    from .batch import FileResult

    if style is ProgressStyle.BAR:
        _batch_bar(events, stream)
        return
    last = 0.0
    for e in events:
        if style is not ProgressStyle.JSON:
            continue
        if isinstance(e, FileResult):
            stream.write(json.dumps(e.record()) + "\n")
            stream.flush()
            continue
        stream.writelines(json.dumps(event) + "\n" for event in e.events)
        now = time.monotonic()
        if now - last >= every and e.current is not None:
            last = now
            stream.write(
                json.dumps(
                    {
                        "event": "progress",
                        "file": e.current.input,
                        "files_done": e.files_done,
                        "files_total": e.files_total,
                        "frames": e.frames,
                        "file_frames": e.file.frames if e.file else 0,
                        "file_total": (e.file.total or None) if e.file else None,
                        "fps": round(e.fps, 3),
                        "elapsed": round(e.elapsed, 3),
                        "eta": None if e.eta is None else round(e.eta, 3),
                    }
                )
                + "\n"
            )
            stream.flush()


def _batch_bar(events: Iterable[BatchProgress | FileResult], stream: TextIO) -> None:
    from tqdm import tqdm

    from .batch import FileResult

    bar: Any = tqdm(total=None, unit="frame", file=stream, dynamic_ncols=True, smoothing=0.1)
    try:
        with _logging_above(stream):
            for e in events:
                if isinstance(e, FileResult):
                    continue  # the snapshot after it counts it
                if e.total_estimate and bar.total != max(e.total_estimate, e.frames):
                    bar.total = max(e.total_estimate, e.frames)
                bar.set_description(f"{e.files_done}/{e.files_total} files", refresh=False)
                bar.set_postfix_str(os.path.basename(e.current.input) if e.current else "", refresh=False)
                bar.update(e.frames - bar.n)
    finally:
        bar.close()


class _AboveBar:
    """A stream for log handlers that prints each line above the bar (tqdm.write)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> None:
        from tqdm import tqdm

        tqdm.write(text.rstrip("\n"), file=self.stream)

    def flush(self) -> None:
        self.stream.flush()


@contextmanager
def _logging_above(stream: TextIO) -> Iterator[None]:
    """While the bar is drawn, vsr's log lines (warnings about a file) go above it."""
    handlers = [
        h
        for h in logging.getLogger("vsr").handlers
        if isinstance(h, logging.StreamHandler) and h.stream is stream
    ]
    for h in handlers:
        h.setStream(_AboveBar(stream))
    try:
        yield
    finally:
        for h in handlers:
            h.setStream(stream)
