#!/usr/bin/env python3
"""The CPU engines side by side: onnxruntime and OpenVINO, float32 and bfloat16, per tier.

    python scripts/bench/bench_engines.py model                 # model only, 640x360 luma
    python scripts/bench/bench_engines.py e2e --frames 48       # vsr upscale 640x360 -> 1080p
    python scripts/bench/bench_engines.py threads --tiers balanced   # --threads and x264's threads
    python scripts/bench/bench_engines.py model e2e --repeat 3 --json out.json

Rows per tier (each tier's bundled x3 model) x variant (ENGINE:PRECISION; `auto:auto` is what
`vsr upscale` picks here). Figures are taken side by side: within a round every variant runs
once, one after another, so load from other processes on a shared machine hits them alike;
`--repeat` rounds give the spread. The ratio column is each variant against the first
(onnxruntime float32, today's engine) within the same round, then the median and range of
those ratios over the rounds, which is steadier than a ratio of medians.

- model: `OnnxUpscaler` on one 640x360 luma frame (the sample scene), as the model stage calls
  it (uint8 in and out, conversions included), median of `--calls` after two warm-up calls.
- e2e: `python -m vsr upscale` on a generated 640x360 clip to 1920x1080, libx264 `veryfast`
  CRF 18, in a subprocess: wall-clock fps with start-up (imports, model load; the engine
  choice is cached beforehand, as after a first run) and the done record's fps.
- threads: e2e for `--threads 0/1/2` (the model engine's threads) and x264's own threads
  (`--codec-option threads=N`; libx264's default is 1.5 x cores), per variant.

The CPU's model name and its kernel flags are printed above every table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from vsr.lab.floors import make_clip
from vsr.lab.scene import render
from vsr.model import cpu
from vsr.model.load import OnnxUpscaler
from vsr.model.registry import tier_defaults
from vsr.options import Device, Engine, Precision
from vsr.paths import ROOT

DEFAULT_VARIANTS = "onnxruntime:fp32,openvino:fp32,openvino:bf16,auto:auto"


def variants(spec: str) -> list[tuple[str, str]]:
    return [(e, p) for e, _, p in (v.partition(":") for v in spec.split(",") if v)]


def spread(values: list[float], spec: str = ".2f") -> str:
    """median (min-max) of `values`."""
    if len(values) == 1:
        return format(values[0], spec)
    return (
        f"{format(statistics.median(values), spec)} ({format(min(values), spec)}-{format(max(values), spec)})"
    )


def bench_model(
    models: list[tuple[str, Path]], vs: list[tuple[str, str]], args: argparse.Namespace
) -> list[dict[str, Any]]:
    import cv2

    bgr = render(1.0)
    y = cv2.cvtColor(cv2.resize(bgr, (640, 360), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)[None]
    rows = []
    for tier, path in models:
        ups = {}
        for e, p in vs:
            ups[(e, p)] = OnnxUpscaler(
                path, Device.CPU, engine=Engine(e), precision=Precision(p), threads=args.threads
            )
            for _ in range(2):
                ups[(e, p)](y)
        ms: dict[tuple[str, str], list[float]] = {v: [] for v in vs}
        ratios: dict[tuple[str, str], list[float]] = {v: [] for v in vs}
        for _ in range(args.repeat):
            this: dict[tuple[str, str], float] = {}
            for v, up in ups.items():
                t = []
                for _ in range(args.calls):
                    t0 = time.perf_counter()
                    up(y)
                    t.append((time.perf_counter() - t0) * 1000)
                this[v] = statistics.median(t)
                ms[v].append(this[v])
            for v in vs:
                ratios[v].append(this[vs[0]] / this[v])
        for v, up in ups.items():
            rows.append(
                {
                    "tier": tier,
                    "model": path.stem,
                    "variant": f"{v[0]}:{v[1]}",
                    "ran": f"{up.runtime.value} {up.precision}",
                    "ms": ms[v],
                    "ratio": ratios[v],
                }
            )
            print(f"model {tier} {v}: {spread(ms[v], '.1f')} ms", file=sys.stderr, flush=True)
    return rows


def run_upscale(clip: Path, out: Path, model: Path, extra: list[str]) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "vsr",
        "upscale",
        str(clip),
        str(out),
        "-y",
        "--model",
        str(model),
        "--preset",
        "veryfast",
        "--crf",
        "18",
        "--device",
        "cpu",
        "--progress",
        "json",
        *extra,
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, check=False, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - t0
    done = [json.loads(x) for x in proc.stderr.splitlines() if x.startswith('{"event": "done"')]
    if proc.returncode != 0 or not done:
        raise SystemExit(f"bench_engines: {' '.join(cmd)} failed: {proc.stderr.strip()[-500:]}")
    return {
        "wall": wall,
        "fps": done[-1]["frames"] / wall,
        "fps_started": done[-1]["fps"],
        "ran": f"{done[-1]['engine']} {done[-1]['precision']}",
    }


def bench_e2e(
    models: list[tuple[str, Path]], configs: list[tuple[str, list[str]]], args: argparse.Namespace, tmp: Path
) -> list[dict[str, Any]]:
    clip = tmp / "clip.mp4"
    make_clip(clip, 640, 360, args.frames)
    rows = []
    for tier, path in models:
        for _, extra in configs:  # the engine choice cached, and the OS's file cache warm
            run_upscale(clip, tmp / "warm.mp4", path, extra)
        fps: dict[str, list[float]] = {c: [] for c, _ in configs}
        started: dict[str, list[float]] = {c: [] for c, _ in configs}
        ratios: dict[str, list[float]] = {c: [] for c, _ in configs}
        ran: dict[str, str] = {}
        for _ in range(args.repeat):
            this = {}
            for label, extra in configs:
                r = run_upscale(clip, tmp / "out.mp4", path, extra)
                this[label] = r["fps"]
                fps[label].append(r["fps"])
                started[label].append(r["fps_started"])
                ran[label] = r["ran"]
            for label, _ in configs:
                ratios[label].append(this[label] / this[configs[0][0]])
        for label, _ in configs:
            rows.append(
                {
                    "tier": tier,
                    "model": path.stem,
                    "variant": label,
                    "ran": ran[label],
                    "fps": fps[label],
                    "fps_started": started[label],
                    "ratio": ratios[label],
                }
            )
            print(f"e2e {tier} {label}: {spread(fps[label], '.2f')} fps", file=sys.stderr, flush=True)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", nargs="+", choices=("model", "e2e", "threads"))
    ap.add_argument("--tiers", default="all", help="comma-separated fast,balanced,quality or all")
    ap.add_argument(
        "--variants",
        default=DEFAULT_VARIANTS,
        help=f"ENGINE:PRECISION pairs, the first the baseline (default {DEFAULT_VARIANTS})",
    )
    ap.add_argument("--repeat", type=int, default=3, help="rounds (default 3)")
    ap.add_argument("--calls", type=int, default=5, help="model: timed calls per variant and round")
    ap.add_argument("--frames", type=int, default=48, help="e2e: frames of the 640x360 clip")
    ap.add_argument("--threads", type=int, default=0, help="model: engine threads (0: all cores)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    models = [(t, m.path) for t, m in tier_defaults(args.tiers, 3) if m is not None]
    vs = variants(args.variants)
    head = f"CPU: {cpu.describe()}; {os.cpu_count()} cores"
    results: dict[str, Any] = {"cpu": cpu.describe()}
    with tempfile.TemporaryDirectory(prefix="vsr-engines-") as tmpdir:
        tmp = Path(tmpdir)
        if "model" in args.what:
            rows = results["model"] = bench_model(models, vs, args)
            print(
                f"\nModel only, one 640x360 luma frame -> 1920x1080, median of {args.calls} calls; "
                f"{args.repeat} rounds: median (min-max). {head}\n"
            )
            print("| tier | model | asked | ran | ms per frame | vs onnxruntime fp32 |")
            print("|---|---|---|---|---:|---:|")
            for r in rows:
                print(
                    f"| {r['tier']} | {r['model']} | {r['variant']} | {r['ran']} | "
                    f"{spread(r['ms'], '.1f')} | {spread(r['ratio'])}x |"
                )
        if "e2e" in args.what:
            configs = [(f"{e}:{p}", ["--engine", e, "--precision", p]) for e, p in vs]
            rows = results["e2e"] = bench_e2e(models, configs, args, tmp)
            print(
                f"\nEnd to end, `vsr upscale` {args.frames} frames 640x360 -> 1920x1080, libx264 veryfast "
                f"CRF 18; fps with start-up (once started); {args.repeat} rounds: median (min-max). {head}\n"
            )
            print("| tier | model | asked | ran | fps | once started | vs onnxruntime fp32 |")
            print("|---|---|---|---|---:|---:|---:|")
            for r in rows:
                print(
                    f"| {r['tier']} | {r['model']} | {r['variant']} | {r['ran']} | {spread(r['fps'])} | "
                    f"{spread(r['fps_started'])} | {spread(r['ratio'])}x |"
                )
        if "threads" in args.what:
            configs = []
            for e, p in vs:
                for threads in ("0", "1", "2"):
                    configs.append(
                        (
                            f"{e}:{p} --threads {threads}",
                            ["--engine", e, "--precision", p, "--threads", threads],
                        )
                    )
                configs.append(
                    (
                        f"{e}:{p} --threads 0, x264 threads=2",
                        ["--engine", e, "--precision", p, "--codec-option", "threads=2"],
                    )
                )
            rows = results["threads"] = bench_e2e(models, configs, args, tmp)
            print(
                f"\nThreads, end to end as above ({args.frames} frames, 640x360 -> 1080p, veryfast); "
                f"ratio against the first row; {args.repeat} rounds. {head}\n"
            )
            print("| tier | configuration | ran | fps | once started | vs first row |")
            print("|---|---|---|---:|---:|---:|")
            for r in rows:
                print(
                    f"| {r['tier']} | {r['variant']} | {r['ran']} | {spread(r['fps'])} | "
                    f"{spread(r['fps_started'])} | {spread(r['ratio'])}x |"
                )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
