"""Progress display for the CLI (main thread): a tqdm bar on a terminal, or JSON lines.

JSON lines go to stderr, one object per update, so stdout stays free for a video pipe:
{"event": "progress", "frames": 120, "total": 300, "fps": 24.1, "elapsed": 4.98, "eta": 7.47}
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from typing import Any, TextIO

from .frames import Stats
from .options import Progress as Mode
from .pipeline import Progress


def resolve_mode(mode: Mode, stream: TextIO) -> Mode:
    """AUTO becomes BAR on a terminal and NONE otherwise (pipes, CI logs)."""
    if mode is Mode.AUTO:
        return Mode.BAR if getattr(stream, "isatty", lambda: False)() else Mode.NONE
    return mode


def show(snapshots: Iterator[Progress], mode: Mode, stream: TextIO = sys.stderr,
         every: float = 0.5, label: str = "") -> None:
    """Consume the pipeline's progress snapshots, drawing them as `mode` says."""
    if mode is Mode.BAR:
        _bar(snapshots, stream, label)
    elif mode is Mode.JSON:
        last = 0.0
        for p in snapshots:
            for event in p.events:  # scale-out segment events: every one, not throttled
                stream.write(json.dumps(event) + "\n")
            now = time.monotonic()
            if now - last >= every:
                last = now
                _json_line(stream, "progress", p)
    else:
        for _ in snapshots:
            pass


def _bar(snapshots: Iterator[Progress], stream: TextIO, label: str) -> None:
    from tqdm import tqdm

    bar: Any = tqdm(total=None, unit="frame", file=stream, desc=label or None, dynamic_ncols=True,
                    smoothing=0.1)
    try:
        for p in snapshots:
            if p.total and bar.total != max(p.total, p.frames):
                bar.total = max(p.total, p.frames)
            if p.latency is not None:  # live: what a live operator watches
                bar.set_postfix(dropped=p.dropped, latency=f"{p.latency * 1000:.0f}ms",
                                batch=p.batch, refresh=False)
            elif p.segments:
                bar.set_postfix(segments=f"{p.segments_done}/{p.segments}", refresh=False)
            bar.update(p.frames - bar.n)
    finally:
        bar.close()


def _json_line(stream: TextIO, event: str, p: Progress) -> None:
    rec: dict[str, Any] = {"event": event, "frames": p.frames, "total": p.total or None,
                           "fps": round(p.fps, 3), "elapsed": round(p.elapsed, 3),
                           "eta": None if p.eta is None else round(p.eta, 3)}
    if p.segments:
        rec.update(segments=p.segments, segments_done=p.segments_done)
    if p.latency is not None:
        rec.update(frames_in=p.frames_in, dropped=p.dropped, batch=p.batch,
                   latency_ms=round(p.latency * 1000, 1))
    stream.write(json.dumps(rec) + "\n")
    stream.flush()


def stats_record(stats: Stats) -> dict[str, Any]:
    """The final statistics as a JSON-able dict (the CLI's "done" event)."""
    s = stats.stages
    return {
        "event": "done", "frames": stats.frames, "seconds": round(stats.seconds, 3),
        "fps": round(stats.fps, 3), "input": list(stats.input_size),
        "output_size": list(stats.output_size), "scale": stats.scale,
        "provider": stats.provider, "precision": stats.precision, "batch": stats.batch, "output": stats.output,
        "audio_streams": stats.audio_streams, "decode_errors": stats.decode_errors,
        "corrupt_frames": stats.corrupt_frames,
        "damage_times": [round(t, 3) for t in stats.damage_times],
        "repaired_timestamps": stats.repaired_timestamps,
        "frames_in": stats.frames_in, "dropped": stats.dropped,
        "latency_ms": {k: round(v * 1000, 1) for k, v in stats.latency.items()},
        "reconnects": stats.reconnects, "input_lost": stats.input_lost or None,
        **({"segments": stats.segments} if stats.segments else {}),
        "stages": {k: round(getattr(s, k), 3) for k in
                   ("decode", "color", "model", "encode", "wait_in", "wait_out")},
    }
