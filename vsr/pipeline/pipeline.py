"""Wires the stages together and supervises their threads; the only module that knows them all.

Everything that can fail on configuration (input, model, output) is opened here, in the
caller's thread, before any stage starts. Then four named threads run:

    vsr-source --ch_in--> vsr-upscale --ch_out--> vsr-compose --ch_enc--> vsr-sink

The first exception in any stage wins: it gets a note naming the stage, every channel is
cancelled so the other stages unwind at once, and it is re-raised in the caller's thread with
its own type and traceback. The output is renamed into place only after all four stages
ended normally; on error or abort it is deleted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..channel import Channel
from ..errors import Cancelled, UsageError
from ..frames import (
    STEADY_AFTER,
    AudioFrame,
    AudioPacket,
    Chapter,
    Frame,
    Item,
    LiveStats,
    StageTimes,
    Stats,
    Steady,
    StreamInfo,
    seconds_of,
)
from ..media import output_container, pixfmt
from ..media.decode import DecodeSpec, SourceCounters
from ..media.input import OpenedInput, open_input
from ..media.resolution import Reference
from ..model.batch_size import auto_batch
from ..model.load import LumaUpscaler, load, provider_of
from ..options import (
    ColorPath,
    LiveOptions,
    Mode,
    ModelOptions,
    OnError,
    SinkOptions,
    SourceOptions,
    as_enum,
    tuning_for,
)
from . import interrupts
from .compose import ComposeCounters, ComposeSpec, run_compose
from .live import LiveCounters, run_live_source
from .model_stage import Batching, ModelCounters, run_model, warm_up
from .preview import PreviewServer
from .run import InputFigures, Snapshot, build_stats
from .sink import SinkCounters, run_sink
from .source import run_source

log = logging.getLogger(__name__)


class Pipeline:
    """One upscaling run: open everything now, run the stages with `run()` / `progress()`.

    Args:
        source: what to read.
        model: which model; or pass `upscaler` to use an already loaded one (tests, API).
        sink: what to write; None only for a live preview without an output.
        on_error: what damaged input does (`OnError`; its string values are taken too).
        mode: FILE (lossless, back-pressure) or LIVE (real time, drops at the input).
        live: live-mode settings.
        color: the colour path (`ColorPath`; its string values are taken too).
        log_notes: log the output's notes (padding, dropped streams); a scale-out segment
            leaves that to the job, which says them once.

    Raises:
        VsrError subclasses for bad input, model or output, before any thread starts.
    """

    def __init__(
        self,
        source: SourceOptions,
        model: ModelOptions,
        sink: SinkOptions | None,
        upscaler: LumaUpscaler | None = None,
        on_error: OnError | str = OnError.SKIP,
        mode: Mode = Mode.FILE,
        live: LiveOptions | None = None,
        color: ColorPath | str = ColorPath.AUTO,
        log_notes: bool = True,
    ) -> None:
        if model.batch < 0:
            raise UsageError("--batch must be 'auto' or at least 1")
        if sink is None and not (mode is Mode.LIVE and live is not None and live.preview):
            raise UsageError("an output is required (or --preview in live mode)")
        self.mode = mode
        self.live = live or LiveOptions()
        self.model_options = model
        self.on_error = as_enum(OnError, on_error, "on_error")
        self.upscaler: LumaUpscaler = upscaler or load(model)
        self.input: OpenedInput = open_input(
            dataclasses.replace(source, decoder_threads=tuning_for(mode, 1).decoder_threads)
        )
        v = self.input.info.video
        self.output: output_container.OpenedOutput | None = None
        self.preview: PreviewServer | None = None
        try:
            self.batch = model.batch or auto_batch(self.upscaler, v.height, v.width)
            self.tuning = tuning_for(mode, self.batch, self.live.max_latency)
            if sink is not None:
                # A file output is held from its creation to this assignment: a Ctrl-C between
                # open_output returning and the store would leave its temporary file with no
                # one to remove it. Not a network output: connecting may take seconds.
                with contextlib.nullcontext() if "://" in sink.url else interrupts.deferred():
                    self.output = output_container.open_output(
                        sink, self.input.info, self.upscaler.scale, live=mode is Mode.LIVE
                    )
            if mode is Mode.LIVE and self.live.preview:
                self.preview = PreviewServer(self.live.preview_host, self.live.preview_port)
            for note in self.output.notes if self.output and log_notes else []:
                log.warning("%s", note)
            self.native = self._native_path(as_enum(ColorPath, color, "color"))
            layout = pixfmt.native_input(v.pix_fmt)
            scale = self.upscaler.scale
            encode = self.output.format if self.output is not None else None
            picture = encode.picture_size if encode is not None else (v.width * scale, v.height * scale)
            self.compose_spec = ComposeSpec(
                self.native,
                layout.depth if layout else 8,
                picture,
                encode,
                Reference(v.width, v.height, v.sar, picture),
            )
            self.decode_spec = DecodeSpec(
                decode_audio=self.output.decode_audio if self.output else frozenset(),
                on_error=self.on_error,
                native=self.native,
                reorder_depth=self.tuning.reorder_depth,
            )
            self.src_counters = SourceCounters()
            self.live_counters = LiveCounters()
            self.model_counters = ModelCounters()
            self.compose_counters = ComposeCounters()
            self.sink_counters = SinkCounters()
            t = self.tuning
            self.ch_in: Channel[Item] = Channel(
                t.input.capacity,
                "decoded",
                t.input.policy,
                droppable=lambda item: isinstance(item, Frame),
                budget=t.input.budget,
                span=_span if t.input.trim_audio else None,
            )
            if mode is Mode.LIVE:  # the channel's drop plans start from a warm call's time
                self.ch_in.served(1, warm_up(self.upscaler, v.height, v.width))
            self.ch_out: Channel[Item] = Channel(t.output_queue, "upscaled")
            self.ch_enc: Channel[Item] = Channel(t.output_queue, "composed")
            self._stop = threading.Event()
            self._error: BaseException | None = None
            self._lock = threading.Lock()
            self._threads: list[threading.Thread] = []
            self._t0 = 0.0
            self._seconds: float | None = None  # set when the run ends
            # live: when the first upscaled frame was seen, and (time, frames in, dropped)
            # where the steady state began (frames.Steady)
            self._first_out: float | None = None
            self._steady_from: tuple[float, int, int] | None = None
            self._done = False
            # Given back when dropped unclosed (an interruption between this constructor and
            # its caller's try/finally): close() or the run's end detaches it.
            self._unreleased = weakref.finalize(self, _release, self.input, self.output, self.preview)
        except BaseException:
            _release(self.input, self.output, self.preview)
            raise

    def _native_path(self, color: ColorPath) -> bool:
        """Whether frames take the native YUV path: planar (or semi-planar) YUV in, planar
        YUV out, a video output; any depth and chroma subsampling."""
        if color is ColorPath.YCRCB:
            return False
        out = self.output
        ok = (
            out is not None
            and not out.is_image
            and pixfmt.layout_of(out.format.pix_fmt) is not None
            and pixfmt.native_input(self.input.info.video.pix_fmt) is not None
        )
        if color is ColorPath.NATIVE and not ok:
            log.warning(
                "the native colour path needs YUV video in and planar YUV video out: using the YCrCb path"
            )
        return ok

    @property
    def info(self) -> StreamInfo:
        return self.input.info

    @property
    def provider(self) -> str:
        return provider_of(self.upscaler)

    def _stage(self, name: str, run: Callable[[], None]) -> None:
        def body() -> None:
            try:
                run()
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                if not isinstance(exc, Cancelled):
                    with self._lock:
                        if self._error is None:
                            if hasattr(exc, "add_note"):  # Python >= 3.11
                                exc.add_note(f"in vsr stage {name!r}")
                            self._error = exc
                self.abort()

        t = threading.Thread(target=body, name=name)
        # Recorded before it starts: a running stage owns its libav objects, and the main
        # thread closes none of them before every recorded stage has been joined.
        self._threads.append(t)
        t.start()

    def start(self) -> None:
        """Start the four stage threads."""
        with interrupts.deferred():  # a Ctrl-C inside Thread.start() would hide a running stage
            self._start()

    def _start(self) -> None:
        self._t0 = time.monotonic()
        if self.mode is Mode.LIVE:
            self._stage(
                "vsr-source",
                lambda: run_live_source(
                    self.input,
                    self.ch_in,
                    self._stop,
                    self.decode_spec,
                    self.live,
                    counters=self.src_counters,
                    live_counters=self.live_counters,
                ),
            )
            max_latency: float | None = self.live.max_latency
        else:
            self._stage(
                "vsr-source",
                lambda: run_source(
                    self.input, self.ch_in, self._stop, self.decode_spec, counters=self.src_counters
                ),
            )
            max_latency = None
        self._stage(
            "vsr-upscale",
            lambda: run_model(
                self.upscaler,
                self.ch_in,
                self.ch_out,
                Batching(self.batch, self.tuning.batch_wait, max_latency),
                counters=self.model_counters,
            ),
        )
        self._stage(
            "vsr-compose",
            lambda: run_compose(
                self.ch_out,
                self.ch_enc,
                self.compose_spec,
                counters=self.compose_counters,
                preview=self.preview,
            ),
        )
        self._stage("vsr-sink", lambda: run_sink(self.output, self.ch_enc, self.sink_counters))

    def stop(self) -> None:
        """Graceful stop: end the input here, finish and keep what was already decoded."""
        self._stop.set()

    def abort(self) -> None:
        """Abort: every stage stops at its next channel operation; no output is kept."""
        self.ch_in.cancel()
        self.ch_out.cancel()
        self.ch_enc.cancel()

    def progress(self, interval: float = 0.25) -> Iterator[Snapshot]:
        """Run to the end, yielding a progress snapshot every `interval` seconds.

        Re-raises the first stage error; on KeyboardInterrupt (or when the caller stops
        iterating) aborts, cleans up and re-raises.
        """
        ended = False
        try:
            if not self._threads:
                self.start()
            while any(t.is_alive() for t in self._threads):
                self._threads[-1].join(interval)
                for t in self._threads:
                    if not t.is_alive():
                        t.join()
                self._mark_steady()
                yield self.snapshot()
            ended = True
        finally:
            self._end(failed=not ended)
        if self._error is not None:
            raise self._error
        yield self.snapshot()

    def run(self) -> Stats:
        """Run to the end and return the statistics."""
        for _ in self.progress():
            pass
        return self.stats()

    def _end(self, failed: bool) -> None:
        """Join every stage (aborted first if the run `failed`), then finish or discard the
        output: only then, as every libav object belongs to a stage until it has ended."""
        if failed:
            self.abort()
        try:
            self._join_all()
        finally:
            with interrupts.deferred():  # an output half closed or half renamed would stay
                self._finish(failed=failed or self._error is not None or self.ch_enc.cancelled)

    def _join_all(self) -> None:
        """Wait for every stage; a KeyboardInterrupt meanwhile aborts them, and is re-raised
        once all have ended."""
        interrupted: KeyboardInterrupt | None = None
        for t in self._threads:
            while t.is_alive():
                try:
                    t.join(0.1)
                except KeyboardInterrupt as exc:
                    self.abort()
                    interrupted = interrupted or exc
        if interrupted is not None:
            raise interrupted

    def _finish(self, failed: bool) -> None:
        if self._done:
            return
        self._done = True
        self._unreleased.detach()
        if self.ch_in.trimmed:
            log.info(
                "%d audio packet(s) before the first upscaled frame trimmed (its frames were dropped)",
                self.ch_in.trimmed,
            )
        try:
            if self.output is None:
                pass
            elif self.mode is Mode.LIVE:
                # A recording is kept whatever happened: close it properly (trailer, index)
                # so that what was recorded so far plays.
                output_container.close_in_place(self.output, self._live_chapters())
            elif failed:
                output_container.discard(self.output)
            else:
                output_container.finish(self.output)
        finally:
            if self.preview is not None:
                self.preview.close()
            self._seconds = time.monotonic() - self._t0

    def _mark_steady(self) -> None:
        """Note where a live run's steady state begins (`frames.Steady`): polled with the
        progress, so to within its interval."""
        if self.mode is not Mode.LIVE or self._steady_from is not None:
            return
        now = time.monotonic()
        if self._first_out is None:
            if self._frames_done() > 0:
                self._first_out = now
        elif now - self._first_out >= STEADY_AFTER:
            self._steady_from = (now, self.src_counters.frames, self.ch_in.dropped)

    def _steady(self) -> Steady | None:
        if self._steady_from is None:
            return None
        t, frames_in, dropped = self._steady_from
        end = self._t0 + self._seconds if self._seconds is not None else time.monotonic()
        return Steady(
            round(max(0.0, end - t), 3), self.src_counters.frames - frames_in, self.ch_in.dropped - dropped
        )

    @property
    def _total(self) -> int:
        """Frames this run is expected to write, for progress (0: unknown): the header's count,
        less what a trim leaves out, at most --frames."""
        v = self.info.video
        total = v.frames
        opts = self.input.options
        frames_in = math.ceil(opts.duration * v.rate - 1e-9) if opts.duration and v.rate else 0
        if total and opts.start and v.rate:
            total = max(1, total - round(opts.start * v.rate))
        if frames_in:
            total = min(total, frames_in) if total else frames_in
        if opts.max_frames:
            total = min(total, opts.max_frames) if total else opts.max_frames
        return total

    def snapshot(self) -> Snapshot:
        """Where the run is; live-only figures (drops, latency) are None/0 in file mode."""
        done = self._frames_done()
        elapsed = time.monotonic() - self._t0
        if self.mode is Mode.LIVE:
            recent = list(self._latencies())[-200:]
            return Snapshot(
                done,
                0,
                elapsed,
                self.src_counters.frames,
                self.ch_in.dropped,
                float(np.median(recent)) if recent else None,
                self.model_counters.batch_limit or self.batch,
            )
        return Snapshot(done, self._total, elapsed, self.src_counters.frames, batch=self.batch)

    def close(self) -> None:
        """Release everything the run still holds (the API's and an interruption's path):
        the input and output of a run never started; a started run that did not end (its
        `progress()` abandoned) is aborted, its stages joined and its output discarded."""
        if self._done:
            return
        if self._threads:
            self._end(failed=True)
        else:
            self._done = True
            self._unreleased()

    def _live_chapters(self) -> tuple[Chapter, ...]:
        """Each connection's chapters on a live recording's clock, each cut where the next
        connection's part begins and the last at the recording's end; none when the input had
        none or nothing was recorded."""
        end = self.sink_counters.video_end
        parts = self.live_counters.chapters
        if end is None:
            return ()
        out: list[Chapter] = []
        for i, part in enumerate(parts):
            until = min(end, parts[i + 1].start) if i + 1 < len(parts) else end
            out += output_container.live_chapters(part.chapters, part.origin, until, part.start)
        return tuple(out)

    def stats(self) -> Stats:
        """What the run did (so far: it can be called while it runs)."""
        src = self.src_counters
        out = self.output
        live = None
        if self.mode is Mode.LIVE:
            live = LiveStats(
                dropped=self.ch_in.dropped,
                steady=self._steady(),
                reconnects=self.live_counters.reconnects,
                output_reconnects=out.link.reconnects if out is not None and out.link is not None else 0,
                input_lost=self.live_counters.lost,
            )
        return build_stats(
            self,
            frames=self._frames_done(),
            seconds=self._seconds if self._seconds is not None else time.monotonic() - self._t0,
            output=self._output_name(),
            output_size=(out.format.width, out.format.height) if out is not None else None,
            audio_streams=len(out.stream_map) if out is not None else 0,
            stages=StageTimes(
                decode=src.decode_seconds,
                color=src.color_seconds + self.compose_counters.color_seconds,
                model=self.model_counters.model_seconds,
                encode=self.sink_counters.encode_seconds,
                wait_in=self.ch_in.wait_get,
                wait_out=self.ch_out.wait_put,
            ),
            input_figures=InputFigures(
                frames=src.frames,
                decode_errors=src.decode_errors,
                corrupt_frames=src.corrupt_frames,
                damage_times=tuple(src.error_times + src.corrupt_times),
                repaired_timestamps=src.repaired_pts,
                discontinuities=len(src.discontinuities),
                size_changes=src.size_changes,
            ),
            latency=_percentiles(self._latencies()),
            live=live,
        )

    def _frames_done(self) -> int:
        """Frames finished: encoded, or shown on the preview when there is no output."""
        return self.sink_counters.frames if self.output else self.compose_counters.frames

    def _latencies(self) -> Any:
        """Decode-to-output seconds: measured at the encoder, or at the preview without one."""
        return self.sink_counters.latencies if self.output else self.compose_counters.latencies

    def _output_name(self) -> str:
        if self.output is None:
            return self.preview.url if self.preview else ""
        if self.output.link is not None and self.output.link.mirror:
            return self.output.name  # "udp://... (recording rec.mkv)"
        if self.output.final_path is not None:
            return str(self.output.final_path)
        return self.output.url


def _release(
    opened: OpenedInput, output: output_container.OpenedOutput | None, preview: PreviewServer | None
) -> None:
    """Give back what a run that never started holds: close the input, discard the output
    (its temporary file) and stop the preview. Harmless to repeat."""
    opened.container.close()
    if output is not None:
        output_container.discard(output)
    if preview is not None:
        preview.close()


def _span(item: Item) -> tuple[float, float] | None:
    """An item's (start, end) media time in seconds, for the live input channel's audio trim."""
    if isinstance(item, Frame):
        t = float(item.pts * item.time_base)
        return t, t
    if isinstance(item, AudioPacket):
        pk = item.packet
        start = seconds_of(pk)
        return None if start is None else (start, start + float((pk.duration or 0) * pk.time_base))
    if isinstance(item, AudioFrame):
        af = item.frame
        start = seconds_of(af)
        return None if start is None else (start, start + af.samples / max(1, af.sample_rate or 1))
    return None


def _percentiles(values: Any) -> dict[str, float]:
    """p50/p95/p99/max of latency samples in seconds (empty when there are none)."""
    if not values:
        return {}
    arr = np.sort(np.fromiter(values, dtype=np.float64))
    p50, p95, p99 = (float(arr[min(len(arr) - 1, int(q * len(arr)))]) for q in (0.50, 0.95, 0.99))
    return {"p50": p50, "p95": p95, "p99": p99, "max": float(arr[-1])}


def upscale_video(
    input: str | os.PathLike[str] | SourceOptions,
    output: str | os.PathLike[str] | SinkOptions,
    *,
    model: ModelOptions | None = None,
    on_error: OnError | str = OnError.SKIP,
    color: ColorPath | str = ColorPath.AUTO,
) -> Stats:
    """Upscale a video (or image) file end to end and return what was done: `vsr upscale`,
    from the same option objects the command builds from its options.

    A path or URL stands for its options with every default (`SourceOptions(url)`,
    `SinkOptions(url)`: libx264 CRF 18, no overwriting); pass the objects to say more:

        upscale_video("in.mp4", "out.mp4")
        upscale_video("in.mp4", SinkOptions("out.mp4", crf=20, overwrite=True),
                      model=ModelOptions(quality="fast"))
        upscale_video(SourceOptions("film.mkv", start=90, duration=10), "part.mkv")

    Args:
        input: what to read: a path, a URL, "-" (standard input), or its `SourceOptions`.
        output: what to write: a path, a URL, "-" (standard output, with a `format`), or
            its `SinkOptions` (encoder, size, overwrite, ...).
        model: which model runs, where and how (None: the bundled default, x3, chosen engine).
        on_error: what damaged input does (`OnError`, or "skip"/"stop").
        color: the colour path (`ColorPath`, or "auto"/"native"/"ycrcb").

    Raises:
        VsrError subclasses for what the user can fix (an unknown option value is a
        UsageError), before any frame is read.
    """
    source = input if isinstance(input, SourceOptions) else SourceOptions(os.fspath(input))
    sink = output if isinstance(output, SinkOptions) else SinkOptions(os.fspath(output))
    pipeline = Pipeline(source, model or ModelOptions(), sink, on_error=on_error, color=color)
    return pipeline.run()


__all__ = ["Pipeline", "upscale_video"]
