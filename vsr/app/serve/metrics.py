"""The job service's Prometheus metrics: where the jobs are and where their time goes.

Read at scrape time from the things themselves (the job store, the running jobs, the shared
models, NVML), so no figure can drift from what the API shows. What a user of a GPU box
asks first is answered here: is the GPU busy (`vsr_gpu_utilization_ratio`), are the model
calls full (`vsr_batch_occupancy`), which provider really ran (`vsr_model_info`), and which
stage the time goes to (`vsr_stage_seconds_total`).

GPU figures come from NVML (`nvidia-ml-py`, optional): without it, or without a GPU, they
are simply absent.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from ...frames import Stats
from .runner import ModelPool, Runner, Running
from .store import JobStore, Status

log = logging.getLogger(__name__)

STAGES = ("decode", "model", "colour", "encode")


class Totals:
    """What finished jobs add up to (counters since the service started)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.frames = 0
        self.stage_seconds = dict.fromkeys(STAGES, 0.0)
        self.finished: dict[str, int] = {}

    def add(self, stats: Stats | None, running: Running) -> None:
        """A job ended (`stats` None: it did not finish; its frames so far still count)."""
        with self._lock:
            if stats is not None:
                self.frames += stats.frames
                st = stats.stages
                for stage, seconds in zip(STAGES, (st.decode, st.model, st.color, st.encode), strict=True):
                    self.stage_seconds[stage] += seconds
            else:
                self.frames += int(running.progress.get("frames") or 0)

    def snapshot(self) -> tuple[int, dict[str, float]]:
        with self._lock:
            return self.frames, dict(self.stage_seconds)


class ServiceCollector:
    """A prometheus_client collector over the live state of one service."""

    def __init__(self, store: JobStore, runner: Runner, pool: ModelPool, totals: Totals, ready: Any) -> None:
        self.store, self.runner, self.pool, self.totals, self.ready = store, runner, pool, totals, ready
        self._nvml = _Nvml()

    def collect(self) -> Iterator[Metric]:
        counts = self.store.counts()
        jobs = GaugeMetricFamily("vsr_jobs", "Jobs in the store by status", labels=["status"])
        for status in Status:
            jobs.add_metric([status.value], counts[status])
        yield jobs
        yield GaugeMetricFamily("vsr_queue_depth", "Jobs waiting to run", value=counts[Status.QUEUED])
        running = self.runner.running()
        finished_frames, stage_seconds = self.totals.snapshot()
        frames_now = sum(int(r.progress.get("frames") or 0) for r in running)
        yield CounterMetricFamily(
            "vsr_frames",
            "Frames upscaled (finished jobs and running ones so far)",
            value=finished_frames + frames_now,
        )
        stages = CounterMetricFamily(
            "vsr_stage_seconds", "Seconds spent working per stage, finished jobs", labels=["stage"]
        )
        for stage in STAGES:
            stages.add_metric([stage], stage_seconds[stage])
        yield stages
        rtf = GaugeMetricFamily(
            "vsr_job_realtime_factor",
            "Running jobs: frames per second over the input's frame rate",
            labels=["job"],
        )
        fps = GaugeMetricFamily("vsr_job_fps", "Running jobs: frames per second", labels=["job"])
        for r in running:
            f = float(r.progress.get("fps") or 0.0)
            fps.add_metric([r.job.id], f)
            factor = r.realtime_factor(f)
            if factor is not None:
                rtf.add_metric([r.job.id], factor)
        yield rtf
        yield fps
        info = GaugeMetricFamily(
            "vsr_model_info",
            "Loaded models and where they really run",
            labels=["model", "provider", "engine", "precision"],
        )
        occupancy = GaugeMetricFamily(
            "vsr_batch_occupancy",
            "Mean frames per model call over the largest batch (1: every call full)",
            labels=["model"],
        )
        calls = CounterMetricFamily(
            "vsr_model_calls", "Model calls (frames of concurrent jobs merged)", labels=["model"]
        )
        for model in self.pool.loaded():
            info.add_metric([model.name, model.provider, model.runtime, model.precision], 1)
            occ = model.occupancy()
            occupancy.add_metric([model.name], occ.mean)
            calls.add_metric([model.name], occ.calls)
        yield info
        yield occupancy
        yield calls
        ready, _ = self.ready()
        yield GaugeMetricFamily(
            "vsr_ready", "1 when the service takes jobs (see /readyz)", value=1 if ready else 0
        )
        yield from self._nvml.collect()


class _Nvml:
    """GPU utilisation and memory through NVML, when `pynvml` (nvidia-ml-py) and a GPU are there."""

    def __init__(self) -> None:
        self.nvml: Any = None
        try:
            import pynvml  # type: ignore[import-not-found,unused-ignore]

            pynvml.nvmlInit()
            self.nvml = pynvml
        except Exception:  # noqa: BLE001 - no library, no driver, no GPU: no GPU figures
            self.nvml = None

    def collect(self) -> Iterator[Metric]:
        if self.nvml is None:
            return
        nv = self.nvml
        util = GaugeMetricFamily("vsr_gpu_utilization_ratio", "GPU busy share (NVML)", labels=["gpu"])
        used = GaugeMetricFamily("vsr_gpu_memory_used_bytes", "GPU memory in use (NVML)", labels=["gpu"])
        total = GaugeMetricFamily("vsr_gpu_memory_total_bytes", "GPU memory (NVML)", labels=["gpu"])
        try:
            for i in range(nv.nvmlDeviceGetCount()):
                handle = nv.nvmlDeviceGetHandleByIndex(i)
                rates = nv.nvmlDeviceGetUtilizationRates(handle)
                memory = nv.nvmlDeviceGetMemoryInfo(handle)
                util.add_metric([str(i)], rates.gpu / 100.0)
                used.add_metric([str(i)], memory.used)
                total.add_metric([str(i)], memory.total)
        except Exception as exc:  # noqa: BLE001 - a GPU that went away must not break /metrics
            log.debug("NVML: %s", exc)
            return
        yield util
        yield used
        yield total


def registry_for(collector: ServiceCollector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
