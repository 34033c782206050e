"""Where segments run: threads in this process (`LocalExecutor`) or warm actors on a Ray
cluster (`RayExecutor`). Both take the same tasks and yield the same events, so the job
driver neither knows nor cares which one it has.

Ray is imported only inside `RayExecutor.start()`: the single-machine path never loads it.
A local Ray that vsr starts is watched by a small reaper process (`RayReaper`), so that its
processes end with the driver even when the driver is killed with SIGKILL.
One actor per GPU slot keeps its onnxruntime session warm across segments (Ray's GPU *tasks*
default to a fresh process per call, which made scheduling slower than one machine).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from ..errors import Cancelled, UsageError, VsrError
from ..model.load import LumaUpscaler, load, provider_of
from ..options import ModelOptions
from .worker import SegmentProgress, SegmentResult, SegmentTask, SegmentWorker, run_segment

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SegmentDone:
    result: SegmentResult


@dataclass(frozen=True)
class SegmentFailed:
    index: int
    error: str
    attempts: int


@dataclass(frozen=True)
class Running:
    """Frames written so far by each running segment (index -> frames)."""

    frames: dict[int, int]


Event = SegmentDone | SegmentFailed | Running


class Executor(Protocol):
    """Runs segment tasks. `run()` yields events until every task is done or failed."""

    name: str
    workers: int
    provider: str

    def capacity(self) -> int:
        """How many segments can run at once (Ray: asks the cluster)."""
        ...

    def start(self, model: ModelOptions, input_url: str, work: Path) -> None: ...

    def run(self, tasks: Sequence[SegmentTask]) -> Iterator[Event]: ...

    def close(self) -> None: ...


class LocalExecutor:
    """`workers` threads in this process sharing one model session (onnxruntime's `run` is
    thread-safe); the default for the Python API and `--executor local`."""

    name = "local"

    def __init__(self, workers: int = 1, upscaler: LumaUpscaler | None = None) -> None:
        self.workers = max(1, workers)
        self.upscaler = upscaler
        self.provider = ""
        self._progress: list[SegmentProgress] = []

    def capacity(self) -> int:
        return self.workers

    def start(self, model: ModelOptions, input_url: str, work: Path) -> None:
        if self.upscaler is None:
            self.upscaler = load(model)
        self.provider = provider_of(self.upscaler)

    def run(self, tasks: Sequence[SegmentTask]) -> Iterator[Event]:
        todo: deque[SegmentTask] = deque(tasks)
        # A deque polled with sleeps, not a queue.Queue: the main thread waits here, and a
        # Ctrl-C raises wherever it is (vsr.pipeline.interrupts); raised inside Condition.wait, between
        # its release and re-acquire of the queue's lock, it became "RuntimeError: release
        # unlocked lock", a traceback and exit 1 instead of 130. append/popleft take no lock.
        events: deque[Event] = deque()
        lock = threading.Lock()
        self._progress = [SegmentProgress() for _ in range(min(self.workers, len(tasks)))]

        def work(progress: SegmentProgress) -> None:
            while not progress.cancelled:
                with lock:
                    if not todo:
                        return
                    task = todo.popleft()
                try:
                    events.append(SegmentDone(run_segment(task, self.upscaler, progress)))
                except Cancelled:
                    return
                except VsrError as exc:
                    events.append(SegmentFailed(task.index, str(exc), 1))
                except Exception as exc:  # noqa: BLE001 - reported as this segment's failure
                    events.append(SegmentFailed(task.index, f"{type(exc).__name__}: {exc}", 1))
                finally:
                    progress.index, progress.frames = -1, 0

        threads = [
            threading.Thread(target=work, args=(p,), name=f"vsr-segment-{i}")
            for i, p in enumerate(self._progress)
        ]
        for t in threads:
            t.start()
        finished = 0
        quiet_since = time.monotonic()
        try:
            while finished < len(tasks):
                if not events:
                    if time.monotonic() - quiet_since >= 0.5:
                        if not any(t.is_alive() for t in threads) and not events:
                            raise VsrError("segment workers stopped with segments left")
                        yield Running({p.index: p.frames for p in self._progress if p.index >= 0})
                        quiet_since = time.monotonic()
                    time.sleep(0.02)
                    continue
                finished += 1
                quiet_since = time.monotonic()
                yield events.popleft()
        finally:
            self._cancel()
            for t in threads:
                t.join()

    def _cancel(self) -> None:
        for p in self._progress:
            p.cancelled = True

    def close(self) -> None:
        self._cancel()


class RayExecutor:
    """One warm `SegmentWorker` actor per GPU slot (or per CPU when the cluster has no GPUs).

    Args:
        address: None starts (or joins this process's) local Ray; "auto" or "ray://host:10001"
            joins an existing cluster.
        workers: actors to start; None: every GPU slot (GPUs / gpus_per_worker), or one per
            `cpus_per_worker` CPUs on a cluster without GPUs.
        gpus_per_worker: GPUs each actor reserves; fractions share a card (0.5: two actors per
            GPU, so one encodes on the CPU while the other runs the model). None: 1 when the
            cluster has GPUs, else 0.
        max_attempts: a segment whose worker died (node lost) is retried up to this many times.
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        workers: int | None = None,
        gpus_per_worker: float | None = None,
        cpus_per_worker: float = 1.0,
        max_attempts: int = 3,
        start_timeout: float = 120.0,
        worker_class: type = SegmentWorker,
    ) -> None:
        self.address = address
        self.worker_class = worker_class  # SegmentWorker; the scale-out benchmark simulates one
        self.workers = workers or 0
        self.gpus_per_worker = gpus_per_worker
        self.cpus_per_worker = cpus_per_worker
        self.max_attempts = max_attempts
        self.start_timeout = start_timeout
        self.provider = ""
        self._actors: list[Any] = []
        self._started_ray = False
        self._reaper: RayReaper | None = None
        self._actor_class: Any = None
        self._model: ModelOptions | None = None
        self._gpus: float | None = None  # cluster resources, once connected
        self._cpus = 1.0
        self._g = 0.0

    def capacity(self) -> int:
        self._connect()
        return self.workers

    def _connect(self) -> None:
        """Join or start Ray and size the worker pool from the cluster's resources."""
        if self._gpus is not None:
            return
        try:
            import ray
        except ImportError as exc:
            raise UsageError(
                "scale-out over Ray needs Ray: pip install 'vsr[ray]'",
                hint="or pass --executor local to run the segments in this process",
            ) from exc
        if not ray.is_initialized():
            if self.address is None:
                self._reaper = RayReaper.start()
            try:
                # ERROR: Ray's start-up warnings (token authentication, /dev/shm size) are
                # not the user's business in a vsr run; vsr reports its own failures.
                context = ray.init(
                    address=self.address,
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level=logging.ERROR,
                )
            except (ConnectionError, RuntimeError, ValueError) as exc:
                if self._reaper is not None:
                    self._reaper.close(clean=False)  # whatever it started goes
                    self._reaper = None
                hint = "check --ray-address (auto on a cluster node, or ray://HEAD:10001)"
                if (self.address or "").startswith("ray://"):
                    hint += (
                        "; a cluster with token authentication (Ray's default) also needs "
                        "RAY_AUTH_MODE=token and its token (RAY_AUTH_TOKEN or ~/.ray/auth_token)"
                    )
                raise UsageError(
                    f"cannot reach the Ray cluster at {self.address or 'local'}: "
                    f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                    hint=hint,
                ) from exc
            self._started_ray = True
            if self._reaper is not None:
                self._reaper.watch(str(getattr(context, "address_info", {}).get("session_dir") or ""))
        res = ray.cluster_resources()  # type: ignore[no-untyped-call]  # ray leaves it unannotated
        gpus, cpus = float(res.get("GPU", 0)), float(res.get("CPU", 1))
        g = self.gpus_per_worker if self.gpus_per_worker is not None else (1.0 if gpus else 0.0)
        if g > 0 and gpus < g:
            raise UsageError(
                f"the Ray cluster has {gpus:g} GPU(s): workers asking for {g:g} cannot start",
                hint="pass --gpus-per-worker 0 to run on CPUs",
            )
        if not self.workers:
            self.workers = int(gpus / g + 1e-9) if g else max(1, int(cpus // self.cpus_per_worker))
        self._gpus, self._cpus, self._g = gpus, cpus, g

    def start(self, model: ModelOptions, input_url: str, work: Path) -> None:
        if self._actors:
            return  # already started (warm actors are reused)
        self._connect()  # first: it says what to install when Ray is missing
        import ray

        gpus, cpus, g = self._gpus or 0.0, self._cpus, self._g
        if not g and not model.threads:
            # CPU workers share the machine: each onnxruntime gets its own CPUs' worth of
            # threads instead of one per core each (oversubscription).
            model = replace(model, threads=max(1, int(self.cpus_per_worker)))
        self._model = model
        self._actor_class = ray.remote(self.worker_class).options(
            num_gpus=g, num_cpus=self.cpus_per_worker, max_concurrency=2, max_restarts=0
        )
        self._actors = [self._actor_class.remote(model) for _ in range(self.workers)]
        marker = work / f".probe-{time.time_ns()}"
        marker.write_text("vsr")
        try:
            refs = [a.probe.remote(input_url, str(marker)) for a in self._actors]
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=self.start_timeout)
            if len(ready) < len(refs):
                raise UsageError(
                    f"Ray started {len(ready)} of {len(refs)} workers in "
                    f"{self.start_timeout:.0f}s (each needs {g:g} GPU, "
                    f"{self.cpus_per_worker:g} CPU; the cluster has {gpus:g} GPU, "
                    f"{cpus:g} CPU)",
                    hint="pass fewer --workers",
                )
            try:
                problems = [p for p in ray.get(refs) if p]
            except ray.exceptions.RayActorError as exc:
                raise VsrError(f"a Ray worker failed to start: {_cause(exc)}") from exc
            if problems:
                raise UsageError(
                    problems[0],
                    hint="a multi-node job needs the input and "
                    "--work-dir on storage that every worker can read and write",
                )
            self.provider = f"{ray.get(self._actors[0].provider.remote())} x{self.workers} (Ray)"
        finally:
            marker.unlink(missing_ok=True)

    def run(self, tasks: Sequence[SegmentTask]) -> Iterator[Event]:
        import ray

        todo: deque[tuple[SegmentTask, int]] = deque((t, 0) for t in tasks)
        idle = list(self._actors)
        in_flight: dict[Any, tuple[SegmentTask, int, Any]] = {}
        last_poll = 0.0
        while todo or in_flight:
            if not idle and not in_flight and todo:
                # Every worker was lost: ask for a new one, but not forever (the cluster may
                # have no room left for it).
                log.warning("no Ray workers left: starting a new one")
                replacement = self._actor_class.remote(self._model)
                ready, _ = ray.wait([replacement.provider.remote()], timeout=self.start_timeout)
                if not ready:
                    ray.kill(replacement)
                    for task, attempts in todo:
                        yield SegmentFailed(
                            task.index,
                            "no Ray worker could be started: every "
                            "worker was lost and the cluster has no room for a "
                            "new one",
                            attempts,
                        )
                    return
                self._actors.append(replacement)
                idle.append(replacement)
            while todo and idle:
                task, attempts = todo.popleft()
                actor = idle.pop(0)
                in_flight[actor.run.remote(task)] = (task, attempts + 1, actor)
            ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=0.5)
            for ref in ready:
                task, attempts, actor = in_flight.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    idle.append(actor)
                    yield SegmentFailed(task.index, _cause(exc), attempts)
                    continue
                except ray.exceptions.RayError as exc:  # the worker or its node is gone
                    self._actors = [a for a in self._actors if a is not actor]
                    if attempts < self.max_attempts:
                        log.warning(
                            "segment %d: its worker was lost (%s); running it again",
                            task.index,
                            type(exc).__name__,
                        )
                        todo.appendleft((task, attempts))
                    else:
                        yield SegmentFailed(
                            task.index, f"worker lost {attempts} times: {type(exc).__name__}", attempts
                        )
                    continue
                idle.append(actor)
                yield SegmentDone(result)
            now = time.monotonic()
            if in_flight and now - last_poll >= 1.0:
                last_poll = now
                yield Running(self._poll([a for _, _, a in in_flight.values()]))

    def _poll(self, actors: list[Any]) -> dict[int, int]:
        import ray

        frames: dict[int, int] = {}
        refs = [a.frames.remote() for a in actors]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0.5)
        for ref in ready:
            try:
                index, n = ray.get(ref)
            except Exception:  # noqa: BLE001 - progress only; a lost worker shows up in run()
                continue
            if index >= 0:
                frames[index] = n
        return frames

    def close(self) -> None:
        if not self._actors and not self._started_ray:
            return
        import ray

        for actor in self._actors:
            try:
                ray.kill(actor)
            except Exception:  # noqa: BLE001 - already gone
                pass
        self._actors = []
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False
            self._gpus = None
        if self._reaper is not None:
            self._reaper.close(clean=True)
            self._reaper = None


class RayReaper:
    """A watchdog process that ends the local Ray this driver started when the driver dies,
    however it dies: `kill -9` of a `--segments` run left Ray's dashboard and runtime-env
    agents running for good, adopted by init (the raylet, GCS and workers follow the driver
    by themselves; those agents do not, and ignore SIGTERM for seconds).

    The reaper is a plain Python process (no vsr, no Ray imported: it starts in tens of ms) in
    a session of its own, so a Ctrl-C or a signal to the driver's process group does not
    reach it. It reads a pipe from the driver, whose end only the driver holds; while the
    driver lives it notes the driver's descendants every second (pid and start time, so a
    reused pid is never touched). At end of file without the driver's "done" (the driver
    died before `close()`), it SIGKILLs those that are left, then any process of this user
    with Ray's session directory in its command line or among its open files (Ray's
    processes all write their logs there), for that session only, and only if this driver
    started it (a descendant named it). Linux only (/proc); elsewhere a no-op.
    """

    def __init__(self, process: subprocess.Popen[bytes] | None) -> None:
        self._process = process

    @classmethod
    def start(cls) -> RayReaper:
        if not sys.platform.startswith("linux") or not os.path.isdir("/proc/self"):
            return cls(None)
        try:
            process = subprocess.Popen(
                [sys.executable, "-S", "-c", _REAPER, str(os.getpid())],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:  # the run works without it; only a kill -9 would leave processes
            log.debug("cannot start the Ray reaper: %s", exc)
            return cls(None)
        return cls(process)

    def _say(self, line: str) -> None:
        if self._process is None or self._process.stdin is None:
            return
        with contextlib.suppress(OSError, ValueError):
            self._process.stdin.write(line.encode() + b"\n")
            self._process.stdin.flush()

    def watch(self, session_dir: str) -> None:
        """Name the session directory of the Ray just started (and note its processes now)."""
        if session_dir:
            self._say(f"session {session_dir}")

    def close(self, clean: bool) -> None:
        """`clean`: Ray was shut down here, the reaper only exits; else it ends what is left."""
        if self._process is None:
            return
        if clean:
            self._say("done")
        with contextlib.suppress(OSError, ValueError):
            if self._process.stdin is not None:
                self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None


#: The reaper's program (`RayReaper`): argv[1] is the driver's pid, stdin the driver's pipe.
_REAPER = r"""
import os, select, signal, sys, time

driver, me, uid = int(sys.argv[1]), os.getpid(), os.getuid()
for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(sig, signal.SIG_IGN)


def stat(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rindex(b")") + 2:].split()
    return int(rest[1]), int(rest[19])  # ppid, start time


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def pids():
    return [int(n) for n in os.listdir("/proc") if n.isdigit()]


def descendants():
    table = {p: st for p in pids() if (st := stat(p)) is not None}
    children = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = {}, [driver]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child != me and child not in found:
                found[child] = table[child][1]
                todo.append(child)
    return found


def in_session(pid, session):
    try:
        if os.stat(f"/proc/{pid}").st_uid != uid:
            return False
    except OSError:
        return False
    if session.encode() in cmdline(pid):
        return True
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(session):
                return True
    except OSError:
        pass
    return False


def kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


known, mine, session, buf = {}, set(), None, b""
while True:
    ready, _, _ = select.select([0], [], [], 1.0)
    if ready:
        chunk = os.read(0, 4096)
        if not chunk:
            break
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            if line == b"done":
                sys.exit(0)
            if line.startswith(b"session "):
                session = line[8:].decode()
    for pid, start in descendants().items():
        known[pid] = start
        if session and pid not in mine and session.encode() in cmdline(pid):
            mine.add(pid)

for pid, start in known.items():
    st = stat(pid)
    if st is not None and st[1] == start:
        kill(pid)
if session and mine:
    for _ in range(3):
        for pid in pids():
            if pid != me and in_session(pid, session):
                kill(pid)
        time.sleep(0.5)
"""


def _cause(exc: BaseException) -> str:
    """The message of the exception a Ray worker raised, without Ray's traceback dump or
    the exception's qualified class name."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        text = str(cause).strip().splitlines()
        return text[0] if text else type(cause).__name__
    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
    if not lines:
        return type(exc).__name__
    return re.sub(r"^(?:[A-Za-z_][\w.]*\.)?[A-Za-z_]\w*(?:Error|Exception): ", "", lines[-1].strip())
