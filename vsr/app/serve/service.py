"""One job service: its settings, and the parts that run it (store, workers, models, metrics).

`Service` is what the HTTP layer (`vsr.app.serve.api`) talks to; it knows nothing of HTTP,
so that each check (a path, an option, a full queue) raises an exception with the message a
client sees, and the API only maps exception types to status codes.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import ProviderUnavailable, UsageError, VsrError
from ...model.load import require_cuda
from ..jobs import model_options
from . import jobspec
from .metrics import ServiceCollector, Totals, registry_for, render
from .runner import ModelPool, Runner, RunnerSettings
from .store import ACTIVE, Job, JobStore, Status

log = logging.getLogger(__name__)

#: Jobs that may wait in the queue; more are refused (HTTP 503) rather than piling up.
MAX_QUEUED = 1000


@dataclass(frozen=True)
class ServeOptions:
    """`vsr serve`'s options.

    Attributes:
        root: the folder jobs read from and write to; nothing outside it is reachable.
        host, port: where to listen (a non-loopback host needs a token).
        jobs: jobs run at once.
        state: the jobs database (default ROOT/.vsr/jobs.sqlite); its folder also holds
            segment work folders.
        token: the bearer token every endpoint but /healthz needs (None: no token).
        allow_urls: take network URLs (http, https, rtmp, rtsp, srt, udp, tcp) as inputs.
        require_gpu: not ready (and no job runs) without a working CUDA provider.
        grace: seconds SIGTERM lets running jobs finish before they are queued again.
        ray_address: run jobs with `segments` on this Ray cluster.
        batch: most frames in one shared model call (0: 8 on CUDA, 1 on the CPU).
        defaults: `vsr upscale` options (by argparse name) every job starts from.
        max_body: largest request body in bytes.
        max_connections: open connections at once; more are closed at once.
        header_timeout: seconds a connection has to send a whole request head.
    """

    root: Path
    host: str = "127.0.0.1"
    port: int = 8765
    jobs: int = 1
    state: Path | None = None
    token: str | None = None
    allow_urls: bool = False
    require_gpu: bool = False
    grace: float = 30.0
    ray_address: str | None = None
    batch: int = 0
    defaults: dict[str, Any] = field(default_factory=dict)
    max_body: int = 64 * 1024
    max_connections: int = 256
    header_timeout: float = 10.0

    @property
    def state_path(self) -> Path:
        return self.state or self.root / ".vsr" / "jobs.sqlite"


class Draining(VsrError):
    """The service is stopping and takes no new jobs (HTTP 503)."""


class QueueFull(VsrError):
    """Too many jobs wait already (HTTP 503)."""


class NotFound(VsrError, LookupError):
    """No such job (HTTP 404)."""


class Conflict(VsrError):
    """The job is not in a state that allows this (HTTP 409)."""


class Service:
    """The running service's parts, opened in order; `close()` in reverse."""

    def __init__(self, options: ServeOptions) -> None:
        root = options.root.resolve()
        if not root.is_dir():
            raise UsageError(f"--root '{options.root}' is not a folder")
        self.options = options
        self.paths = jobspec.Paths(root, options.state_path.resolve().parent)
        self.store = JobStore(options.state_path)
        self.pool = ModelPool(options.batch)
        self.totals = Totals()
        self.runner = Runner(
            self.store,
            RunnerSettings(
                self.paths,
                options.defaults,
                options.jobs,
                options.allow_urls,
                options.require_gpu,
                options.ray_address,
            ),
            self.pool,
            on_finished=self.totals.add,
        )
        self.registry = registry_for(
            ServiceCollector(self.store, self.runner, self.pool, self.totals, self.readiness)
        )
        self._ready_error: str | None = "starting"
        self._lock = threading.Lock()

    def start(self) -> None:
        """Load the default model (readiness says whether it could), then start the workers."""
        self._ready_error = self._check_model()
        if self._ready_error:
            log.warning("not ready: %s", self._ready_error)
        self.runner.start()

    def _check_model(self) -> str | None:
        """Why the service cannot run its default model (None: it can)."""
        try:
            args = jobspec.parse(
                str(self.paths.root / "in.mp4"), str(self.paths.root / "out.mp4"), {}, self.options.defaults
            )
            model = self.pool.get(model_options(args))
        except VsrError as exc:
            return f"the default model does not load: {exc}"
        if self.options.require_gpu:
            try:
                require_cuda(model)
            except ProviderUnavailable as exc:
                return str(exc)
        return None

    def readiness(self) -> tuple[bool, str]:
        """(ready, why not)."""
        if not self.runner.accepting:
            return False, "the service is stopping"
        if self._ready_error:
            return False, self._ready_error
        return True, "ready"

    def submit(self, input: str, output: str | None, options: dict[str, Any]) -> Job:
        """Check a job and queue it.

        Raises:
            Draining, QueueFull: the service takes no job now.
            Refused: a path or URL it does not allow.
            OutputBusy, Conflict: another job writes that output, or it exists (no overwrite).
            UsageError, ModelError: a bad option, a missing input, an unknown model.
        """
        if not self.runner.accepting:
            raise Draining("the service is stopping and takes no new jobs")
        if self.options.require_gpu and self._ready_error:
            raise Draining(f"not ready: {self._ready_error}")
        if self.store.counts()[Status.QUEUED] >= MAX_QUEUED:
            raise QueueFull(f"the queue is full ({MAX_QUEUED} jobs waiting)", hint="try again later")
        checked = jobspec.check(
            self.paths,
            input,
            output,
            options,
            self.options.defaults,
            allow_urls=self.options.allow_urls,
            scale_of=self._scale_of,
        )
        if checked.output.exists() and not checked.args.overwrite:
            raise Conflict(
                f"output '{checked.output_shown}' already exists",
                hint='pass "overwrite": true in options to replace it',
            )
        with self._lock:
            job = self.store.add(
                checked.input.shown, checked.output_shown, str(checked.output), checked.options
            )
        self.runner.wake()
        log.info("job %s queued: %s -> %s", job.id, job.input, job.output)
        return job

    def _scale_of(self, args: Any) -> int:
        return self.pool.get(model_options(args)).scale

    def get(self, job_id: str) -> Job:
        job = self.store.get(job_id)
        if job is None:
            raise NotFound(f"no job {job_id!r}")
        return job

    def record(self, job: Job) -> dict[str, Any]:
        """A job as the API shows it: a running job's progress from memory (fresher than the
        database's, written once a second)."""
        rec = job.record()
        running = self.runner.running_job(job.id) if job.status is Status.RUNNING else None
        if running is not None:
            rec["progress"] = running.progress
            rec["model"] = running.model or None
            rec["provider"] = running.provider or None
            rec["engine"] = running.engine or None
            rec["precision"] = running.precision or None
            fps = float(running.progress.get("fps") or 0.0)
            factor = running.realtime_factor(fps)
            rec["figures"] = {"realtime_factor": None if factor is None else round(factor, 3)}
        return rec

    def cancel(self, job_id: str) -> Job:
        job = self.get(job_id)
        if job.status not in ACTIVE:
            raise Conflict(f"job {job_id} is {job.status.value}: nothing to cancel")
        found = self.runner.cancel(job_id)
        assert found is not None
        return found

    def output_path(self, job_id: str) -> Path:
        """A finished job's output file.

        Raises:
            NotFound, Conflict: no such job, or it is not done (or its output is gone).
        """
        job = self.get(job_id)
        if job.status is not Status.DONE:
            raise Conflict(f"job {job_id} is {job.status.value}: no output yet")
        key = self.store.output_key(job_id)
        path = Path(key) if key else None
        if path is None or not path.is_file():
            raise Conflict(f"the output of job {job_id} is gone")
        return path

    def metrics(self) -> bytes:
        return render(self.registry)

    def drain(self) -> None:
        log.warning("stopping: no new jobs; running ones have %.0f s to finish", self.options.grace)
        self.runner.drain(self.options.grace)

    def close(self) -> None:
        self.pool.close()
        self.store.close()
