"""The scale-out driver: split a file at keyframes, run the segments on an executor, keep the
manifest, join the parts. Runs in the caller's thread; presents the same `progress()` /
`run()` / `stats()` surface as `Pipeline`, so the CLI shows either the same way.

    scan keyframes -> plan segments -> work dir + manifest -> executor runs segments
        (manifest updated after each)  |  a straight decode fingerprints every frame
    -> check each segment against it (drop inexact cuts, run merged segments) -> verify parts
    -> join -> rename output -> remove work

Only the driver writes the manifest. A driver killed at any point leaves a manifest whose
"done" segments have whole parts on disk; `--resume` redoes the rest.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from ..errors import SourceError, UsageError, VsrError
from ..frames import ScaleOutStats, StageTimes, Stats
from ..media import output_container
from ..media.input import open_input
from ..model.load import LumaUpscaler, load
from ..options import ColorPath, ModelOptions, OnError, SinkOptions, SourceOptions, as_enum
from ..pipeline.run import InputFigures, Snapshot, build_stats
from ..pipeline.sink import SinkCounters
from ..version import __version__
from . import keyframes as kf
from . import verify as checks
from .executors import Executor, LocalExecutor, RayExecutor, Running, SegmentDone, SegmentFailed
from .join import JoinError, join, verify
from .manifest import (
    NAME,
    VERSION,
    Manifest,
    SegmentRecord,
    WorkDirError,
    file_sha256,
    input_signature,
    settings_hash,
)
from .worker import SegmentTask, describe_part

log = logging.getLogger(__name__)

#: What `ScaleOutJob._why_not_exact` says of a segment only a new run of it can check.
_REMAKE = "remake"

#: Fault injection for tests: the driver dies (os._exit(75), no clean-up) right after the
#: manifest records this many finished segments, as a killed or crashed driver would.
FAULT_ENV = "VSR_FAULT_EXIT_AFTER_SEGMENTS"


@dataclass(frozen=True)
class ScaleOutOptions:
    """How a file job is split and where its pieces run.

    Attributes:
        segments: how many segments (cut at the nearest keyframes; fewer if keyframes are few).
        segment_seconds: or their length; neither: 2 per worker, at most 120 s each.
        workers: workers to run (None: the executor's default, every GPU slot for Ray).
        gpus_per_worker: GPUs each Ray worker reserves (fractions share a card).
        cpus_per_worker: CPUs each Ray worker reserves (its decoder, encoder and, without a
            GPU, its onnxruntime threads).
        ray_address: None: a local Ray; "auto" or "ray://HEAD:10001": an existing cluster.
        executor: "local" (threads in this process: the API's default), "ray", or "auto" (Ray
            for more than one segment or with an address: the CLI's default).
        work_dir: where parts and the manifest live (default: OUTPUT.vsr-work beside the output;
            on a multi-node cluster it must be storage every worker shares).
        resume / restart: continue the job in work_dir, or delete it and start over.
        keep_work: keep the parts and manifest after a successful join.
    """

    segments: int | None = None
    segment_seconds: float | None = None
    workers: int | None = None
    gpus_per_worker: float | None = None
    cpus_per_worker: float = 1.0
    ray_address: str | None = None
    executor: str = "local"
    work_dir: str | None = None
    resume: bool = False
    restart: bool = False
    keep_work: bool = False
    max_attempts: int = 3


class ScaleOutJob:
    """One file upscaled in segments. Everything that can be refused is checked here, before
    any segment runs: input (splittable?), output (writable, codec fits), work directory.

    Raises:
        VsrError subclasses (exit 2 for usage, input, output and work-directory problems).
    """

    def __init__(
        self,
        source: SourceOptions,
        model: ModelOptions,
        sink: SinkOptions,
        options: ScaleOutOptions,
        on_error: OnError | str = OnError.SKIP,
        color: ColorPath | str = ColorPath.AUTO,
        upscaler: LumaUpscaler | None = None,
        executor: Executor | None = None,
    ) -> None:
        check_request(source, sink, options)
        # Absolute paths: a worker on another node (or a Ray worker in its own directory)
        # must find the same files.
        source = replace(source, url=str(Path(source.url).resolve()))
        self.source, self.model, self.sink, self.options = source, model, sink, options
        self.on_error = as_enum(OnError, on_error, "on_error")
        self.color = as_enum(ColorPath, color, "color")
        self.upscaler = upscaler or load(model)
        self.scale = self.upscaler.scale
        opened = open_input(source)
        try:
            # (The input's streams are only valid while it is open: the output is tried now.)
            self.info = opened.info
            if self.info.is_image:
                raise UsageError(f"'{source.url}' is an image: segments are for video files")
            self.part_codec, self.part_pix_fmt, self.output_size = self._preflight_output()
        finally:
            opened.container.close()
        self.index = kf.scan(source.url, source.format, source.options)
        self.part_suffix = _part_suffix(self.part_codec, self.index.time_base)
        self.final = Path(sink.url)
        self.work = (
            Path(options.work_dir)
            if options.work_dir
            else self.final.with_name(self.final.name + ".vsr-work")
        ).resolve()
        self.executor: Executor
        if executor is not None:
            self.executor = executor
        try:
            self.segments = self._plan()
            if executor is None:
                self.executor = self._executor(len(self.segments))
            self.settings = self._settings()
            self.manifest = self._open_work()
        except BaseException:
            if executor is None and hasattr(self, "executor"):
                self.executor.close()  # a Ray started to ask for its size
            raise
        self.sink_counters = SinkCounters()
        self._t0 = time.monotonic()
        self._seconds = 0.0
        self._running: dict[int, int] = {}
        self._events: list[dict[str, Any]] = []
        self._join_seconds = 0.0
        self._audio_streams = 0  # streams the joined output carries besides video
        # The straight decode the segments are checked against: started with the segments,
        # made once per job (`verify.Reference`).
        self._reference: checks.Reference | None = None
        # Each finished, unchecked segment's frame fingerprints, by (start_pts, end_pts): they
        # say which frames differ (the manifest keeps only their digest).
        self._fingerprints: dict[tuple[int, int | None], bytes] = {}
        self.check_seconds = 0.0  # the straight decode's own time
        self.check_waited = 0.0  # of it, the time the job waited for it after the segments
        self._finished_here = 0

    # -- set-up ---------------------------------------------------------------------------

    def _plan(self) -> list[kf.Segment]:
        """The segments: as asked; on --resume without a count, the recorded job's; otherwise
        2 per worker of the executor (which, for Ray, means asking the cluster now)."""
        o = self.options
        if o.segments is None and o.segment_seconds is None:
            if o.resume and not o.restart and (self.work / NAME).exists():
                recorded = Manifest.load(self.work).settings.get("segments") or []
                return kf.segments_at(self.index, [start for start, _ in recorded])
            if not hasattr(self, "executor"):
                self.executor = self._executor(2)
            workers = self.executor.capacity()
        else:
            workers = o.workers or 1
        wanted = kf.wanted_count(self.index, o.segments, o.segment_seconds, workers)
        if wanted > 1 and self.index.problem:
            raise UsageError(
                f"cannot split '{self.source.url}' into segments: {self.index.problem}",
                hint="run it on one machine (without --segments)",
            )
        segments = kf.plan(self.index, wanted)
        if len(segments) < wanted:
            log.warning(
                "asked for %d segments, but '%s' has %d keyframe(s) to cut at: %d segment(s)",
                wanted,
                self.source.url,
                len(self.index.keyframes),
                len(segments),
            )
        if o.resume and not o.restart and (self.work / NAME).exists():
            # Cuts this job already found not to be exact stay dropped.
            dropped = {int(pts) for pts, _ in Manifest.load(self.work).dropped_cuts}
            segments = kf.segments_at(
                self.index, [g.start_pts for g in segments if g.index == 0 or g.start_pts not in dropped]
            )
        return segments

    def _executor(self, segments: int) -> Executor:
        if hasattr(self, "executor"):
            return self.executor
        o = self.options
        kind = o.executor
        if kind == "auto":
            kind = "ray" if (segments > 1 or o.ray_address) else "local"
        if kind == "ray":
            return RayExecutor(
                o.ray_address, o.workers, o.gpus_per_worker, o.cpus_per_worker, max_attempts=o.max_attempts
            )
        if kind == "local":
            return LocalExecutor(o.workers or 1, self.upscaler)
        raise UsageError(f"unknown executor {kind!r}: use auto, ray or local")

    def _preflight_output(self) -> tuple[str, str, tuple[int, int]]:
        """Open (and discard) the real output now, so an existing file, a missing folder or a
        codec the container cannot hold fails before any segment runs; and the parts' codec,
        pixel format and encoded size (padded to even, as the segments' pipelines pad it).
        Its notes (padding, audio re-encoded or dropped) are said here, once for the job."""
        out = output_container.open_output(self.sink, self.info, self.scale)
        codec, pix_fmt = out.video.codec_context.name, out.format.pix_fmt
        size = (out.format.width, out.format.height)
        output_container.discard(out)
        for note in out.notes:
            log.warning("%s", note)
        return codec, pix_fmt, size

    def _settings(self) -> dict[str, Any]:
        s = self.sink
        return {
            "vsr": __version__,
            "model_sha256": file_sha256(Path(self.upscaler.path))
            if hasattr(self.upscaler, "path")
            else f"{type(self.upscaler).__module__}.{type(self.upscaler).__qualname__}",
            "scale": self.scale,
            "tile": self.model.tile,
            "color": self.color,
            "on_error": self.on_error,
            "codec": self.part_codec,
            "pix_fmt": self.part_pix_fmt,
            "crf": s.crf,
            "preset": s.preset,
            "codec_options": dict(sorted(s.codec_options.items())),
            "segments": [[g.start_pts, g.end_pts] for g in self.segments],
            # Only when set, so that work done before these options existed still resumes.
            **({"square_pixels": True} if s.square_pixels else {}),
            **({"picture": [s.width, s.height]} if s.width or s.height else {}),
        }

    def _open_work(self) -> Manifest:
        o, work = self.options, self.work
        manifest_path = work / NAME
        if work.exists() and not work.is_dir():
            raise WorkDirError(f"work directory '{work}' is a file")
        if o.restart and work.exists():
            if not manifest_path.exists() and any(work.iterdir()):
                raise WorkDirError(
                    f"'{work}' is not a vsr work directory (no {NAME}): not deleting it",
                    hint="pass another --work-dir",
                )
            shutil.rmtree(work)
        signature = input_signature(self.source.url, self.index.keyframes)
        digest = settings_hash(self.settings)
        if o.resume:
            manifest = Manifest.load(work)
            self._check_same_job(manifest, signature, digest)
            self._recheck_parts(manifest)
            return manifest
        if work.exists() and any(work.iterdir()):
            if manifest_path.exists():
                raise WorkDirError(
                    f"work directory '{work}' holds an unfinished job",
                    hint="pass --resume to continue it, or --restart to start over",
                )
            raise WorkDirError(f"work directory '{work}' is not empty", hint="pass another --work-dir")
        try:
            work.mkdir(parents=o.work_dir is not None, exist_ok=True)
        except OSError as exc:
            raise WorkDirError(f"cannot create work directory '{work}': {exc.strerror or exc}") from exc
        manifest = Manifest(
            VERSION,
            signature,
            digest,
            self.settings,
            str(self.final),
            str(self.index.time_base),
            [
                SegmentRecord(g.index, g.start_pts, g.end_pts, f"seg-{g.index:05d}{self.part_suffix}")
                for g in self.segments
            ],
        )
        manifest.save(work)
        return manifest

    def _check_same_job(self, m: Manifest, signature: dict[str, Any], digest: str) -> None:
        changed = [
            k for k in ("size", "mtime_ns", "head_sha256", "keyframes") if m.input.get(k) != signature[k]
        ]
        if changed:
            raise WorkDirError(
                f"the input changed since the work in '{self.work}' was done ({', '.join(changed)} differ)",
                hint="pass --restart to start over",
            )
        if m.settings_hash != digest:
            diff = sorted(
                k for k in set(m.settings) | set(self.settings) if m.settings.get(k) != self.settings.get(k)
            )
            raise WorkDirError(
                f"the settings differ from those of the work in '{self.work}' ({', '.join(diff)})",
                hint="use the same options as the first run, or --restart",
            )

    def _recheck_parts(self, m: Manifest) -> None:
        """Trust a finished part only if it is still the file the manifest describes."""
        for leftover in self.work.glob(".*.partial.*"):
            leftover.unlink(missing_ok=True)
        for rec in m.segments:
            if rec.status != "done":
                continue
            path = self.work / rec.file
            if rec.content is None:
                # Made by a vsr that kept no fingerprints of its frames: it cannot be checked
                # against a straight decode, so it is made again.
                log.warning(
                    "segment %d: its part was made without fingerprints of its frames "
                    "(an older vsr): running it again",
                    rec.index,
                )
            elif rec.frames == 0 or (
                path.is_file() and path.stat().st_size == rec.bytes and file_sha256(path) == rec.sha256
            ):
                continue
            else:
                log.warning("segment %d: its part is missing or damaged: running it again", rec.index)
            rec.status, rec.checked = "pending", False
            path.unlink(missing_ok=True)
        m.save(self.work)

    # -- running --------------------------------------------------------------------------

    def _task(self, rec: SegmentRecord) -> SegmentTask:
        source = replace(
            self.source,
            start_pts=rec.start_pts if rec.index else None,
            end_pts=rec.end_pts,
            video_only=True,
            video_prime=self.index.prime(rec.start_pts) if rec.index else (),
            fingerprints=True,
        )
        s = self.sink
        part = SinkOptions(
            str(self.work / rec.file),
            codec=self.part_codec,
            crf=s.crf,
            preset=s.preset,
            pix_fmt=self.part_pix_fmt,
            codec_options=dict(s.codec_options),
            overwrite=True,
            audio="none",
            container_options=_part_container_options(self.part_suffix, self.index.time_base),
            square_pixels=s.square_pixels,
            width=s.width,
            height=s.height,
        )
        return SegmentTask(
            rec.index, source, part, self.model, self.color, self.on_error, self.segments[rec.index].seconds
        )

    def progress(self, interval: float = 0.25) -> Iterator[Snapshot]:
        """Run the job, yielding progress snapshots (with segment events) as it goes.

        Raises:
            VsrError: a segment failed (the others are kept for --resume) or the join failed.
        """
        self._t0 = time.monotonic()
        started = False
        if any(not r.checked for r in self.manifest.segments):
            # While the segments run: on a cluster the driver's machine is idle meanwhile.
            self._reference = checks.Reference(self.source)
        try:
            while True:
                todo = [r for r in self.manifest.segments if r.status != "done"]
                if todo and not started:
                    self.executor.start(self.model, self.source.url, self.work)
                    started = True
                yield from self._run_segments(todo)
                failed = [r for r in self.manifest.segments if r.status != "done"]
                if failed:
                    break
                if not self._drop_inexact_cuts():
                    break
        except BaseException:
            self._stop_reference()
            self.executor.close()
            self._after_failure()
            raise
        self._stop_reference()
        self.executor.close()
        self._running = {}
        if failed:
            self._after_failure()
            first = failed[0]
            raise VsrError(
                f"{len(failed)} of {len(self.manifest.segments)} segment(s) failed; "
                f"segment {first.index}: {first.error}",
                hint=f"the finished segments are kept in '{self.work}': fix the cause "
                "and rerun with --resume",
            )
        yield self.snapshot()
        t0 = time.monotonic()
        parts = verify(self.work, self.manifest.segments, self.index.time_base)
        joined = join(parts, self.source, self.sink, self.scale, self.sink_counters)
        self._audio_streams = len(joined.stream_map)
        self.output_size = (joined.format.width, joined.format.height)  # what the parts hold
        self._join_seconds = time.monotonic() - t0
        if not self.options.keep_work:
            shutil.rmtree(self.work, ignore_errors=True)
        self._seconds = time.monotonic() - self._t0
        yield self.snapshot()

    def _run_segments(self, todo: list[SegmentRecord]) -> Iterator[Snapshot]:
        """Run the segments of `todo` on the executor (longest first), recording each."""
        if not todo:
            return
        todo = sorted(todo, key=lambda r: -self.segments[r.index].seconds)
        fault = int(os.environ.get(FAULT_ENV, "0") or 0)
        log.info(
            "%d segment(s) to run on %d %s worker(s)", len(todo), self.executor.workers, self.executor.name
        )
        for event in self.executor.run([self._task(r) for r in todo]):
            if isinstance(event, Running):
                self._running = event.frames
            elif isinstance(event, SegmentDone):
                self._record_done(event)
                self._finished_here += 1
                if fault and self._finished_here >= fault:
                    os._exit(75)
            elif isinstance(event, SegmentFailed):
                self._record_failed(event)
            yield self.snapshot()

    def _drop_inexact_cuts(self) -> bool:
        """Check every finished segment against the straight decode (`verify`): its
        timestamps, its damage and its pictures' fingerprints. Drop the cut before each
        segment that is not a straight decode's frames, merging it into the one before, with
        one line saying why. A part made before a --resume whose pictures cannot be compared
        frame by frame (the manifest keeps only their digest) is made again instead. Returns
        whether anything is to run again (merged or remade segments).

        Raises:
            JoinError: the first segment, which starts where a straight decode starts,
                differs from it (never joined: a bug, not a cut).
        """
        bad: dict[int, str] = {}
        again = False
        for rec in self.manifest.segments:
            if rec.checked:
                continue
            why = self._why_not_exact(rec)
            if why is _REMAKE:
                log.info(
                    "segment %d: made before this run, its frames cannot be compared one "
                    "by one with a straight decode: running it again",
                    rec.index,
                )
                rec.status, again = "pending", True
                (self.work / rec.file).unlink(missing_ok=True)
            elif why is None:
                rec.checked = True
                self._fingerprints.pop((rec.start_pts, rec.end_pts), None)
            elif rec.index == 0:
                raise JoinError(
                    f"segment 0 of '{self.source.url}' differs from a straight decode: {why}",
                    hint="run it without --segments",
                )
            else:
                bad[rec.index] = why
        if not bad:
            self.manifest.save(self.work)
            return again
        starts = [g.start_pts for g in self.segments if g.index not in bad]
        for index, why in sorted(bad.items()):
            start = self.segments[index].start_pts
            log.warning(
                "cannot cut '%s' exactly at %.3fs: %s; running %d segment(s) instead of %d",
                self.source.url,
                self.index.at(start),
                why,
                len(starts),
                len(self.segments),
            )
            self.manifest.dropped_cuts.append([start, why])
        self._replan(starts)
        return True

    def _why_not_exact(self, rec: SegmentRecord) -> str | None:
        """Why a finished segment is not what one machine's run has in its range (None: it
        is), from its part's timestamps, its damage and its frames' fingerprints; `_REMAKE`
        when only remaking it can tell (its fingerprints are gone and their digest differs)."""
        pts = describe_part(self.work / rec.file, self.index.time_base).pts if rec.frames else ()
        straight = self._straight()
        why = checks.mismatch(self.index, rec, pts, straight)
        if why is not None or checks.same_content(rec, straight):
            return why
        mine = self._fingerprints.get((rec.start_pts, rec.end_pts))
        if mine is None:
            return _REMAKE
        return checks.content_mismatch(self.index, rec, straight, mine)

    def _straight(self) -> checks.StraightDecode:
        """The straight decode, waiting for it if it still runs (started now if it was not)."""
        if self._reference is None:
            self._reference = checks.Reference(self.source)
        fresh = not self._reference.returned
        straight = self._reference.result()
        self.check_seconds, self.check_waited = straight.seconds, self._reference.waited
        if fresh:
            log.info(
                "checking the segments against a straight decode of '%s': %d frames "
                "decoded and fingerprinted in %.2fs (%.2fs of it after the segments ended)",
                self.source.url,
                len(straight.frames),
                straight.seconds,
                self.check_waited,
            )
        return straight

    def _stop_reference(self) -> None:
        """Stop the straight decode's thread (if it still runs) and join it."""
        if self._reference is not None:
            self._reference.cancel()

    def _replan(self, starts: list[int]) -> None:
        """Segments that begin at `starts`: those unchanged keep their parts, the others are
        new (their old parts deleted), and the manifest records the new plan."""
        old = {(r.start_pts, r.end_pts): r for r in self.manifest.segments}
        self.segments = kf.segments_at(self.index, starts)
        records = []
        for g in self.segments:
            rec = old.pop((g.start_pts, g.end_pts), None)
            if rec is None:
                rec = SegmentRecord(
                    g.index, g.start_pts, g.end_pts, f"seg-{g.index:05d}-{g.start_pts}{self.part_suffix}"
                )
            rec.index = g.index
            records.append(rec)
        for gone in old.values():
            (self.work / gone.file).unlink(missing_ok=True)
        self.settings = self._settings()
        self.manifest.segments = records
        self.manifest.settings = self.settings
        self.manifest.settings_hash = settings_hash(self.settings)
        self.manifest.save(self.work)

    def _after_failure(self) -> None:
        """Keep what is done for --resume; with nothing done, leave nothing behind."""
        for leftover in self.work.glob(".*.partial.*"):  # parts of killed workers
            leftover.unlink(missing_ok=True)
        done = sum(r.status == "done" for r in self.manifest.segments)
        if done:
            log.warning(
                "%d of %d segments are done and kept in '%s': rerun with --resume to continue",
                done,
                len(self.manifest.segments),
                self.work,
            )
        else:
            shutil.rmtree(self.work, ignore_errors=True)

    def _record_done(self, event: SegmentDone) -> None:
        r = event.result
        rec = self.manifest.segments[r.index]
        rec.status, rec.error, rec.checked = "done", None, False
        rec.attempts += 1
        rec.frames, rec.first_pts, rec.last_pts = r.frames, r.first_pts, r.last_pts
        rec.bytes, rec.sha256, rec.extradata = r.bytes, r.sha256, r.extradata
        rec.decode_errors, rec.corrupt_frames = r.decode_errors, r.corrupt_frames
        rec.damage_times = list(r.damage_times)
        rec.content = checks.content_digest(r.fingerprints)
        self._fingerprints[(rec.start_pts, rec.end_pts)] = r.fingerprints
        self.manifest.save(self.work)
        self._running.pop(r.index, None)
        self._events.append(
            {
                "event": "segment",
                "index": r.index,
                "status": "done",
                "frames": r.frames,
                "seconds": round(r.seconds, 3),
                "worker": r.worker,
            }
        )

    def _record_failed(self, event: SegmentFailed) -> None:
        rec = self.manifest.segments[event.index]
        rec.status, rec.error = "failed", event.error
        rec.attempts += event.attempts
        self.manifest.save(self.work)
        self._running.pop(event.index, None)
        log.error("segment %d failed: %s", event.index, event.error)
        self._events.append(
            {"event": "segment", "index": event.index, "status": "failed", "error": event.error}
        )

    def run(self) -> Stats:
        for _ in self.progress():
            pass
        return self.stats()

    def close(self) -> None:
        self._stop_reference()
        self.executor.close()

    def snapshot(self) -> Snapshot:
        done = [r for r in self.manifest.segments if r.status == "done"]
        frames = sum(r.frames for r in done) + sum(self._running.values())
        events, self._events = tuple(self._events), []
        return Snapshot(
            frames,
            self.info.video.frames,
            time.monotonic() - self._t0,
            segments=len(self.manifest.segments),
            segments_done=len(done),
            events=events,
        )

    @property
    def batch(self) -> int:
        """Frames per model call as asked (0: each segment chooses)."""
        return self.model.batch

    @property
    def provider(self) -> str:
        """Where the segments run, in the executor's words (e.g. "CPUExecutionProvider x4
        (Ray)"); its name until it has started."""
        return self.executor.provider or self.executor.name

    def stats(self) -> Stats:
        """What the job did (so far: it can be called while it runs)."""
        segs = self.manifest.segments
        return build_stats(
            self,
            frames=self.sink_counters.frames or sum(r.frames for r in segs),
            seconds=self._seconds or time.monotonic() - self._t0,
            output=str(self.final),
            output_size=self.output_size,
            audio_streams=self._audio_streams,
            stages=StageTimes(encode=self._join_seconds),
            input_figures=InputFigures(
                decode_errors=sum(r.decode_errors for r in segs),
                corrupt_frames=sum(r.corrupt_frames for r in segs),
                damage_times=tuple(t for r in segs for t in r.damage_times),
            ),
            scale_out=ScaleOutStats(segments=len(segs)),
        )


def _part_suffix(codec_name: str, time_base: Fraction) -> str:
    """The container of the parts: MP4 keeps any time base exactly; Matroska (for codecs MP4
    cannot hold) counts in milliseconds, exact only when the source does too."""
    codec = av.Codec(codec_name, "w")
    names = {codec.name, codec.canonical_name}
    for fmt, suffix in (("mp4", ".mp4"), ("matroska", ".mkv")):
        with av.open(io.BytesIO(), "w", format=fmt) as probe:
            fits = bool(names & set(probe.supported_codecs))
        if fits and (suffix == ".mp4" or (time_base * 1000).denominator == 1):
            return suffix
    raise UsageError(
        f"segments are kept as MP4 parts, which cannot hold {codec_name} video "
        f"(and Matroska would round this input's {time_base} timestamps)",
        hint="pick a codec MP4 holds (libx264, libx265, libsvtav1, libvpx-vp9, ffv1), "
        "or run without --segments",
    )


def _part_container_options(suffix: str, time_base: Fraction) -> dict[str, str]:
    """Muxer options that keep a part's timestamps exact.

    An MP4 part whose first frame is not at 0 (every part but the first) or whose frames
    are B-frame delayed gets an edit list, and the MP4 muxer writes edit lists in the movie
    timescale, 1/1000 by default: a start of 55/30 s read back as 1833 ms is no tick of 1/30,
    and 250250/30000 s came back 20 ticks early. Counting the movie in the source's own
    ticks keeps every edit exact."""
    if suffix != ".mp4":
        return {}
    return {"movie_timescale": str(time_base.denominator)}


def check_request(source: SourceOptions, sink: SinkOptions, o: ScaleOutOptions) -> None:
    """What a job in segments cannot be, checked before anything opens (the job service
    checks a submitted job with it too).

    Raises:
        UsageError: the request cannot be split (a pipe, a trim, a bad count).
    """
    if o.resume and o.restart:
        raise UsageError("--resume and --restart exclude each other")
    if source.url == "-" or "://" in source.url:
        raise UsageError(
            "segments need an input file every worker can seek in, not a pipe or URL",
            hint="save the stream to a file first, or run without --segments",
        )
    if sink.url == "-" or "://" in sink.url:
        raise UsageError(
            "a job in segments writes a file, not a pipe or URL",
            hint="write to a file, or run without --segments",
        )
    if source.max_frames is not None:
        raise UsageError("--frames cannot be combined with segments")
    if source.start or source.duration is not None:
        raise UsageError(
            "--start and --duration cannot be combined with segments",
            hint="run without --segments to upscale part of a file",
        )
    if o.segments is not None and o.segments < 1:
        raise UsageError("--segments must be at least 1")
    if o.segment_seconds is not None and o.segment_seconds <= 0:
        raise UsageError("--segment-seconds must be positive")
    if not Path(source.url).is_file():
        raise SourceError(f"cannot open input {source.url!r}: no such file or directory")
