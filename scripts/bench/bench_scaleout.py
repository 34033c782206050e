#!/usr/bin/env python3
"""Scale-out benchmark: what splitting a file into segments costs and gains, measured side by
side in one run on the same clip, plus a scheduling simulation for more GPU workers than this
machine has.

Real runs (this machine, the real model, real decode/encode):
  * the single-machine path (`vsr upscale`, no segments): the reference time;
  * the same job as --segments N on 1 local worker: the cost of splitting (keyframe seeks,
    one encoder start per part, the join) with no parallelism to hide it;
  * 2 local threads, and 1 and 2 Ray actors (1 CPU each): the speed-up on this CPU;
  * keyframe scan, Ray start-up (ray.init + warm actors) and join times on their own.

Simulation (Ray scheduling only): a 2-hour film cut into 30-120 s segments, each segment's
work replaced by a sleep of its length x --sim-speed (as a GPU worker would take at a fixed
fps), on 1-8 Ray actors with fake GPUs. It measures vsr's own scheduler (RayExecutor, longest
segment first) and Ray's dispatch overhead; not encoding or I/O contention.

    python scripts/bench/bench_scaleout.py                       # 320x180, 240 frames, 4 segments
    python scripts/bench/bench_scaleout.py --size 640x360 --frames 300 --json scaleout.json
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import random
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from vsr import ModelOptions, SinkOptions, SourceOptions
from vsr.lab.media import synth_video
from vsr.pipeline.pipeline import Pipeline
from vsr.scaleout import LocalExecutor, RayExecutor, ScaleOutJob, ScaleOutOptions
from vsr.scaleout.keyframes import scan
from vsr.scaleout.worker import SegmentResult, SegmentTask


def make_clip(path: Path, size: tuple[int, int], frames: int, fps: int, gop: int) -> None:
    """A clip with a keyframe every `gop` frames (what an encoder's default GOP gives)."""
    synth_video(
        path,
        n=frames,
        size=size,
        fps=fps,
        options={"g": str(gop), "keyint_min": str(gop), "sc_threshold": "0"},
    )


def cpu_seconds() -> float:
    """CPU time of this process (all its threads) and its waited-for children."""
    t = os.times()
    return t.user + t.system


def timed_job(src: Path, out: Path, segments: int, executor: Any, sink: SinkOptions) -> dict[str, float]:
    c0 = cpu_seconds()
    t0 = time.monotonic()
    job = ScaleOutJob(
        SourceOptions(str(src)),
        ModelOptions(),
        replace(sink, url=str(out)),
        ScaleOutOptions(segments=segments, restart=True),
        executor=executor,
    )
    t_setup = time.monotonic() - t0
    t1 = time.monotonic()
    job.run()
    total = time.monotonic() - t0
    cpu = cpu_seconds() - c0 if isinstance(executor, LocalExecutor) else float("nan")
    return {
        "seconds": total,
        "setup": t_setup,
        "run": time.monotonic() - t1,
        "join": job._join_seconds,
        "frames": job.stats().frames,
        "cpu": cpu / total,
        "segments": len(job.manifest.segments),
    }


class SimWorker:
    """Stands in for SegmentWorker in the simulation: a segment takes seconds x speed."""

    def __init__(self, model: Any) -> None:
        self.speed = float(os.environ.get("VSR_SIM_SPEED", "0.01"))

    def run(self, task: SegmentTask) -> SegmentResult:
        time.sleep(task.seconds * self.speed)
        return SegmentResult(task.index, 0, None, None, 0, "", "", task.seconds * self.speed)

    def frames(self) -> tuple[int, int]:
        return -1, 0

    def provider(self) -> str:
        return "simulated"

    def probe(self, input_url: str, marker: str) -> str:
        return ""


def simulate(
    workers: list[int], speed: float, film_seconds: float, seed: int, tmp: Path
) -> list[dict[str, Any]]:
    import ray

    rng = random.Random(seed)
    lengths: list[float] = []
    while sum(lengths) < film_seconds:
        lengths.append(rng.uniform(30, 120))
    tasks = [
        SegmentTask(i, SourceOptions(""), SinkOptions(""), ModelOptions(), seconds=s)
        for i, s in enumerate(lengths)
    ]
    tasks.sort(key=lambda t: -t.seconds)
    os.environ["VSR_SIM_SPEED"] = str(speed)
    rows = []
    ray.init(
        num_cpus=2,
        num_gpus=max(workers),
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.ERROR,
        runtime_env={"env_vars": {"VSR_SIM_SPEED": str(speed)}},
    )
    try:
        for w in workers:
            ex = RayExecutor(workers=w, gpus_per_worker=1, cpus_per_worker=0, worker_class=SimWorker)
            ex.start(ModelOptions(), str(tmp), tmp)
            t0 = time.monotonic()
            for _ in ex.run(tasks):
                pass
            seconds = time.monotonic() - t0
            ex.close()
            ideal = max(sum(lengths) * speed / w, max(lengths) * speed)
            rows.append({"workers": w, "segments": len(tasks), "seconds": seconds, "ideal": ideal})
    finally:
        ray.shutdown()
    base = rows[0]["seconds"]
    for r in rows:
        r["speedup"] = base / r["seconds"]
        r["efficiency_vs_ideal"] = r["ideal"] / r["seconds"]
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="320x180")
    ap.add_argument("--frames", type=int, default=240)
    ap.add_argument("--fps", type=int, default=24)
    ap.add_argument("--gop", type=int, default=24, help="keyframe interval of the generated clip")
    ap.add_argument("--segments", type=int, default=4)
    ap.add_argument("--preset", default="veryfast")
    ap.add_argument("--no-ray", action="store_true", help="skip the Ray runs and the simulation")
    ap.add_argument("--sim-workers", default="1,2,4,8")
    ap.add_argument(
        "--sim-speed", type=float, default=0.002, help="simulated seconds of work per second of video"
    )
    ap.add_argument(
        "--gpu-layouts",
        default="",
        help="on a GPU machine: WORKERSxGPUS_EACH layouts to compare instead of the "
        "CPU Ray runs, e.g. 1x1,2x0.5,4x0.25",
    )
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    w, h = map(int, args.size.split("x"))
    tmp = Path(tempfile.mkdtemp(prefix="vsr-bench-scaleout-"))
    src = tmp / "clip.mp4"
    make_clip(src, (w, h), args.frames, args.fps, args.gop)
    sink = SinkOptions("", preset=args.preset, crf=18)
    results: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "size": args.size,
        "frames": args.frames,
        "segments": args.segments,
        "preset": args.preset,
    }

    t0 = time.monotonic()
    index = scan(str(src))
    results["scan_seconds"] = time.monotonic() - t0
    results["keyframes"] = len(index.keyframes)

    c0, t0 = cpu_seconds(), time.monotonic()
    Pipeline(SourceOptions(str(src)), ModelOptions(), replace(sink, url=str(tmp / "single.mp4"))).run()
    single = time.monotonic() - t0
    rows: list[tuple[str, dict[str, float]]] = [
        ("single machine (no segments)", {"seconds": single, "cpu": (cpu_seconds() - c0) / single})
    ]
    for workers in (1, 2):
        row = timed_job(src, tmp / f"l{workers}.mp4", args.segments, LocalExecutor(workers), sink)
        rows.append((f"{row['segments']} segments, {workers} local thread(s)", row))
    if not args.no_ray:
        import ray

        t0 = time.monotonic()
        ray.init(
            num_cpus=os.cpu_count() if args.gpu_layouts else 2,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.ERROR,
        )
        ray_init = time.monotonic() - t0
        layouts = [
            (int(w), float(g)) for w, g in (x.split("x") for x in args.gpu_layouts.split(",") if x)
        ] or [(1, 0.0), (2, 0.0)]
        for workers, gpus in layouts:
            cpus = max(1.0, float((os.cpu_count() or 2) // workers)) if gpus else 1.0
            ex = RayExecutor(workers=workers, gpus_per_worker=gpus, cpus_per_worker=cpus)
            t0 = time.monotonic()
            ex.start(ModelOptions(), str(src), tmp)
            actors = time.monotonic() - t0
            segments = max(args.segments, 2 * workers)
            row = timed_job(src, tmp / f"r{workers}.mp4", segments, ex, sink)
            row["actors_start"] = actors
            what = f"{gpus:g} GPU + {cpus:g} CPU" if gpus else "1 CPU"
            rows.append((f"{row['segments']} segments, {workers} Ray actor(s) x {what} ({ex.provider})", row))
            ex.close()
        ray.shutdown()
        results["ray_init_seconds"] = ray_init

    print(
        f"\nScale-out on {results['machine']}: {args.frames} frames {args.size} -> x3, "
        f"libx264 {args.preset}, {args.segments} segments ({len(index.keyframes)} keyframes)\n"
    )
    print("| run | seconds | fps | vs single machine | CPU use (cores) | join (s) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in rows:
        cpu = r.get("cpu", float("nan"))
        print(
            f"| {name} | {r['seconds']:.2f} | {args.frames / r['seconds']:.1f} | "
            f"{single / r['seconds']:.2f}x | {'-' if math.isnan(cpu) else f'{cpu:.2f}'} | "
            f"{r.get('join', 0):.3f} |"
        )
    print(
        f"\nkeyframe scan {results['scan_seconds'] * 1000:.1f} ms"
        + (
            f"; ray.init {results['ray_init_seconds']:.2f} s; warm actors "
            + ", ".join(f"{r['actors_start']:.2f} s" for _, r in rows if "actors_start" in r)
            if "ray_init_seconds" in results
            else ""
        )
    )
    results["runs"] = [{"run": n, **r} for n, r in rows]

    if not args.no_ray:
        sim = simulate([int(x) for x in args.sim_workers.split(",")], args.sim_speed, 7200, 1, tmp)
        print(
            f"\nSimulated GPU workers (Ray scheduling of a 2-hour film in {sim[0]['segments']} "
            f"segments of 30-120 s; work = video seconds x {args.sim_speed}):\n"
        )
        print("| workers | seconds | speed-up | of ideal |")
        print("|---:|---:|---:|---:|")
        for r in sim:
            print(
                f"| {r['workers']} | {r['seconds']:.2f} | {r['speedup']:.2f}x | "
                f"{r['efficiency_vs_ideal'] * 100:.0f}% |"
            )
        results["simulation"] = sim
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
