"""The job service's workers: `--jobs N` threads that take queued jobs and run them.

Each worker thread takes the oldest queued job (`JobStore.claim`), builds it exactly as
`vsr upscale` would (`vsr.app.jobs.open_job`) with the model from the shared pool, follows
its progress, and records how it ended. A job runs in the worker's thread; its pipeline's
stages are threads of their own, as in the CLI.

Stopping: `cancel()` stops one job (its partial output is removed, as after Ctrl-C);
`drain()` stops taking jobs, lets the running ones finish within a grace period, and puts
the rest back in the queue, so that the next start runs them again (a job in segments
resumes from its finished segments, kept in the service's work folder).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...errors import SinkError, VsrError
from ...frames import Stats
from ...media.output_container import partials_of
from ...model.load import load, require_cuda
from ...model.registry import resolve
from ...options import ModelOptions
from ...pipeline.shared_model import SharedModel
from ..jobs import model_options, open_job, scale_out_requested
from . import jobspec
from .confine import check_input, inside
from .store import Job, JobStore, Status

log = logging.getLogger(__name__)

#: Seconds between two progress records written to the database for one job (the API reads
#: running jobs' progress from memory, so this only bounds what a restart shows).
STORE_EVERY = 1.0


class ModelPool:
    """Each (model file, device, engine, precision, tile, threads) loaded once, shared by every job
    that asks for it, as a `SharedModel` whose calls merge frames of concurrent jobs."""

    def __init__(self, max_batch: int) -> None:
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._models: dict[tuple[Any, ...], SharedModel] = {}

    def get(self, options: ModelOptions) -> SharedModel:
        """The shared model for `options`, loaded on first use.

        Raises:
            ModelError: no such model, or it cannot be loaded.
        """
        path = resolve(options.model, options.scale, options.quality, options.degrade)
        key = (
            str(path.resolve()),
            options.device,
            options.engine,
            options.precision,
            options.tile,
            options.threads,
        )
        with self._lock:
            found = self._models.get(key)
            if found is None:
                up = load(dataclasses.replace(options, batch=0))
                cuda = "CUDA" in up.provider
                found = SharedModel(up, max_batch=self.max_batch or (8 if cuda else 1))
                self._models[key] = found
                log.info(
                    "model %s loaded on %s (%s %s), shared",
                    found.name,
                    found.provider,
                    found.runtime,
                    found.precision,
                )
            return found

    def loaded(self) -> list[SharedModel]:
        with self._lock:
            return list(self._models.values())

    def close(self) -> None:
        for model in self.loaded():
            model.close()


class _Stop(Exception):
    """Raised in a worker to leave a job's progress loop: cancelled, or the service stops."""


@dataclass
class Running:
    """A job a worker is running now, as the API and the metrics see it."""

    job: Job
    cancel: threading.Event = field(default_factory=threading.Event)
    requeue: bool = False  # the service stops: back to the queue, not cancelled
    progress: dict[str, Any] = field(default_factory=dict)
    rate: float = 0.0  # the input's frame rate (real-time factor = fps / rate)
    model: str = ""
    provider: str = ""
    engine: str = ""
    precision: str = ""

    def realtime_factor(self, fps: float) -> float | None:
        """`fps` over the input's frame rate (None when the input does not say its rate)."""
        return fps / self.rate if self.rate else None


@dataclass(frozen=True)
class RunnerSettings:
    """What the workers need from the service's options."""

    paths: jobspec.Paths
    defaults: dict[str, Any]
    jobs: int = 1
    allow_urls: bool = False
    require_gpu: bool = False
    ray_address: str | None = None


class Runner:
    """The worker threads, and what they are running."""

    def __init__(
        self,
        store: JobStore,
        settings: RunnerSettings,
        pool: ModelPool,
        on_finished: Callable[[Stats | None, Running], None] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.pool = pool
        self.on_finished = on_finished
        self._cond = threading.Condition()
        self._accepting = True
        self._running: dict[str, Running] = {}
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Put back what a killed process left running (removing its half-written files),
        then start the workers."""
        for job in self.store.recover():
            log.warning("job %s was running when the service stopped: queued again", job.id)
            self._remove_partials(job)
        for n in range(self.settings.jobs):
            t = threading.Thread(target=self._work, name=f"vsr-job-{n}", daemon=True)
            t.start()
            self._threads.append(t)

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    @property
    def accepting(self) -> bool:
        return self._accepting

    def running(self) -> list[Running]:
        with self._cond:
            return list(self._running.values())

    def running_job(self, job_id: str) -> Running | None:
        with self._cond:
            return self._running.get(job_id)

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued or running job; None when there is no such job. A running job stops
        within a progress interval; a finished one is left as it is."""
        if self.store.cancel_queued(job_id):
            return self.store.get(job_id)
        with self._cond:
            running = self._running.get(job_id)
            if running is not None:
                running.cancel.set()
        if running is not None:
            deadline = time.monotonic() + 10
            while self.running_job(job_id) is not None and time.monotonic() < deadline:
                time.sleep(0.05)
        return self.store.get(job_id)

    def drain(self, grace: float) -> None:
        """Stop taking jobs; wait up to `grace` seconds for the running ones; stop the rest and
        put them back in the queue."""
        with self._cond:
            self._accepting = False
            self._cond.notify_all()
        deadline = time.monotonic() + grace
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.1)
        for running in self.running():
            log.warning("job %s did not finish within the grace period: queued again", running.job.id)
            running.requeue = True
            running.cancel.set()
        for t in self._threads:
            t.join(timeout=30)

    def _work(self) -> None:
        while True:
            with self._cond:
                if not self._accepting:
                    return
            job = self.store.claim()
            if job is None:
                with self._cond:
                    if self._accepting:
                        self._cond.wait(timeout=1.0)
                continue
            running = Running(job)
            with self._cond:
                self._running[job.id] = running
            try:
                self._run(running)
            finally:
                with self._cond:
                    del self._running[job.id]

    def _run(self, running: Running) -> None:
        job, s = running.job, self.settings
        stats: Stats | None = None
        run: Any = None
        try:
            source = check_input(s.paths.root, job.input, allow_urls=s.allow_urls, state=s.paths.state)
            output = inside(s.paths.root, job.output, what="output", state=s.paths.state)
            try:  # inside the root, so a job may name a folder that does not exist yet
                output.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise SinkError(f"cannot create folder '{job.output}': {exc.strerror or exc}") from exc
            args = jobspec.parse(source.url, str(output), job.options, s.defaults)
            args = jobspec.with_run_paths(args, source, s.paths.work_dir(job.id), s.ray_address)
            if args.segments and args.resume:
                log.info("job %s resumes from the segments finished before the service stopped", job.id)
            model = self.pool.get(model_options(args))
            if s.require_gpu:
                require_cuda(model)
            running.model, running.provider = model.name, model.provider
            running.engine, running.precision = model.runtime, model.precision
            run = open_job(args, source.url, str(output), model, scale_out_requested(args), args.work_dir)
            rate = run.info.video.rate
            running.rate = float(rate) if rate else 0.0
            stored = 0.0
            for snap in run.progress(interval=0.25):
                if running.cancel.is_set():
                    raise _Stop
                running.progress = {
                    "frames": snap.frames,
                    "total": snap.total,
                    "fps": round(snap.fps, 2),
                    "eta_s": round(snap.eta, 1) if snap.eta is not None else None,
                }
                if snap.segments:
                    running.progress.update(segments=snap.segments, segments_done=snap.segments_done)
                if time.monotonic() - stored >= STORE_EVERY:
                    self.store.progress(job.id, running.progress)
                    stored = time.monotonic()
            stats = run.stats()
            figures = _figures(stats, running)
            progress = {
                **running.progress,
                "frames": stats.frames,
                "total": stats.frames,
                "fps": round(stats.fps, 2),
                "eta_s": 0,
            }
            self.store.finish(job.id, Status.DONE, progress=progress, figures=figures)
            log.info("job %s done: %d frames in %.1fs", job.id, stats.frames, stats.seconds)
        except _Stop:
            if run is not None:
                run.close()  # stops the stages, removes the temporary file
                run = None
            if running.requeue:
                self.store.requeue(job.id)
            else:
                shutil.rmtree(s.paths.work_dir(job.id), ignore_errors=True)
                self.store.finish(job.id, Status.CANCELLED, progress=running.progress)
                log.info("job %s cancelled", job.id)
        except VsrError as exc:
            message = str(exc) + (f" (hint: {exc.hint})" if exc.hint else "")
            self.store.finish(job.id, Status.FAILED, error=message, progress=running.progress)
            log.warning("job %s failed: %s", job.id, message)
        except Exception as exc:  # one job's bug must not end the worker
            log.exception("job %s failed", job.id)
            self.store.finish(
                job.id, Status.FAILED, error=f"internal error: {exc!r}", progress=running.progress
            )
        finally:
            if run is not None:
                run.close()
            if self.on_finished is not None:
                self.on_finished(stats, running)

    def _remove_partials(self, job: Job) -> None:
        """The hidden temporary files a killed run left beside its output; the final name
        was never written."""
        try:
            output = inside(self.settings.paths.root, job.output, what="output")
        except VsrError:
            return
        for partial in partials_of(output):
            log.info("removing %s, left by a stopped run", partial)
            partial.unlink(missing_ok=True)


def _figures(stats: Stats, running: Running) -> dict[str, Any]:
    """What a finished job reports: the model that ran, where its time went, how fast."""
    st = stats.stages
    return {
        "model": stats.model or running.model,
        "provider": stats.provider or running.provider,
        "engine": stats.engine or running.engine,
        "precision": stats.precision or running.precision,
        "frames": stats.frames,
        "seconds": round(stats.seconds, 3),
        "fps": round(stats.fps, 2),
        "realtime_factor": _rounded(running.realtime_factor(stats.fps)),
        "stage_seconds": {
            "decode": round(st.decode, 3),
            "model": round(st.model, 3),
            "colour": round(st.color, 3),
            "encode": round(st.encode, 3),
        },
        "batch": stats.batch,
        "segments": stats.scale_out.segments if stats.scale_out else 0,
        "input_size": list(stats.input_size),
        "output_size": list(stats.output_size),
        "decode_errors": stats.decode_errors,
        "corrupt_frames": stats.corrupt_frames,
        "discontinuities": stats.discontinuities,
        "reconnects": stats.live.reconnects if stats.live else 0,
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
