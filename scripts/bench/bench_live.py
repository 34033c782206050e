#!/usr/bin/env python3
"""Live benchmark: which input sizes `vsr live` sustains in real time on this machine.

For each input size, a real-time MPEG-TS stream (scripts/media/send_test_stream.py) is sent over
UDP (or TCP, --proto tcp; with interleaved AAC, --audio) on loopback at --fps, `vsr live`
upscales it for --seconds (recording to a file, as a user would), and its final statistics
are collected: frames out per second, the share of frames dropped at the input to keep up
(over the whole run, and in the steady state: vsr's own `steady` figure, from 2 s after the
first upscaled frame, so that the benchmark and `vsr live`'s hint judge alike),
latency from arrival to encoded output (p50/p95/p99), and how far the recording's first
video frame is from its first audio packet. A size runs "in real time" when under 2% of
frames are dropped in the steady state.

    python scripts/bench/bench_live.py                          # 160x90 ... 640x360 at 25 fps, x3, CPU
    python scripts/bench/bench_live.py --sizes 160x90 --proto tcp --audio --seconds 9
    python scripts/bench/bench_live.py --sizes 1280x720 --device cuda --fps 30 --json out.json
    python scripts/bench/bench_live.py --tiers all --int8     # the largest live input per model tier
    python scripts/bench/bench_live.py --tiers fast --sizes 320x180 480x270 640x360 \
        --engines onnxruntime:fp32,openvino:bf16 --repeat 2    # CPU engines side by side, twice

The sender runs on the same machine and takes some CPU itself (about 5% of a core at 640x360).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from vsr.lab.recording import first_times
from vsr.paths import ROOT

SENDER = ROOT / "scripts" / "media" / "send_test_stream.py"  # the stream the benchmark sends
WARMUP = 2.0  # seconds of each run left out of the steady-state figures


Row = dict[str, Any]  # one run's figures, as the --json file holds them


def real_time(row: Row) -> bool:
    """Under 2% of frames dropped in the steady state (and the run worked)."""
    return "fps_out" in row and float(row["dropped_pct"]) < 2


def models_to_run(args: argparse.Namespace) -> list[tuple[str, str | None]]:
    """(label, --model value) for each model the benchmark runs: --model, or each --tiers tier."""
    if not args.tiers:
        return [(args.model or "default", args.model)]
    from vsr.errors import VsrError
    from vsr.model.registry import bundled_models, tier_defaults

    try:
        tiers = tier_defaults(args.tiers, args.scale)
    except VsrError as exc:
        raise SystemExit(f"bench_live: --tiers: {exc} ({exc.hint})") from None
    out: list[tuple[str, str | None]] = []
    for t, m in tiers:
        if m is None:
            print(f"bench_live: no bundled {t} model at x{args.scale}: skipped", file=sys.stderr)
            continue
        out.append((f"{t} ({m.name})", str(m.path)))
        if args.int8:
            q = next((b for b in bundled_models() if b.name == f"{m.name}_int8"), None)
            if q is not None:
                out.append((f"{t} int8 ({q.name})", str(q.path)))
    if not out:
        raise SystemExit(f"bench_live: no bundled model for --tiers {args.tiers} at x{args.scale}")
    return out


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_one(
    size: str,
    fps: int,
    seconds: float,
    device: str,
    model: str | None,
    batch: int,
    max_latency: float,
    preset: str,
    workdir: Path,
    proto: str = "udp",
    audio: bool = False,
    extra: tuple[str, ...] = (),
) -> Row:
    port = free_port()
    if proto == "tcp":  # vsr listens; the sender retries until it can connect
        url_in, url_send, delay = f"tcp://127.0.0.1:{port}?listen=1", f"tcp://127.0.0.1:{port}", 0.0
    else:  # vsr binds first; what is sent before is lost, as on a network
        url_in, url_send, delay = f"udp://127.0.0.1:{port}", f"udp://127.0.0.1:{port}?pkt_size=1316", 1.5
    sender = subprocess.Popen(
        [
            "sh",
            "-c",
            f'sleep {delay}; exec "$0" "$@"',
            sys.executable,
            str(SENDER),
            url_send,
            str(seconds + 4),
            "--size",
            size,
            "--fps",
            str(fps),
            "--connect-wait",
            "60",
        ]
        + (["--audio"] if audio else []),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    recording = workdir / f"{size}.mkv"
    cmd = [
        sys.executable,
        "-m",
        "vsr",
        "live",
        url_in,
        str(recording),
        "-y",
        "--duration",
        str(seconds),
        "--stats",
        "json",
        "--device",
        device,
        "--batch",
        str(batch),
        "--max-latency",
        str(max_latency),
        "--preset",
        preset,
    ]
    if model:
        cmd += ["--model", model]
    cmd += list(extra)
    try:
        proc = subprocess.run(
            cmd, check=False, cwd=ROOT, capture_output=True, text=True, timeout=seconds + 120
        )
    finally:
        sender.kill()
        sender.wait()
    records = [json.loads(x) for x in proc.stderr.splitlines() if x.startswith("{")]
    done = [r for r in records if r.get("event") == "done"]
    if proc.returncode != 0 or not done:
        return {"size": size, "error": proc.stderr.strip().splitlines()[-1:] or ["no output"]}
    rec = done[-1]
    # Steady state: from the first progress line after WARMUP s to the end. The start always
    # drops the frames that queued up while the stream was probed and the model warmed up.
    after = [r for r in records if r.get("event") == "progress" and r["elapsed"] >= WARMUP]
    base = after[0] if after else {"elapsed": 0.0, "frames": 0, "frames_in": 0, "dropped": 0}
    span = max(1e-6, rec["seconds"] - base["elapsed"])
    frames_in = max(1, int(rec["frames_in"]) - int(base["frames_in"]))
    steady = rec.get("steady")  # None: the run ended before its steady state began
    first = first_times(recording)
    av_start = round(1000 * (first["video"] - first["audio"])) if len(first) == 2 else None
    return {
        "size": size,
        "fps_in": round(frames_in / span, 1),
        "frames_in_total": rec["frames_in"],
        "dropped_total": rec["dropped"],
        "dropped_total_pct": round(100 * rec["dropped"] / max(1, rec["frames_in"]), 1),
        "av_start_ms": av_start,
        "fps_out": round((rec["frames"] - base["frames"]) / span, 1),
        "dropped_pct": round(100 * steady["dropped"] / max(1, steady["frames_in"]), 1)
        if steady
        else round(100 * (rec["dropped"] - base["dropped"]) / frames_in, 1),
        "startup_dropped": base["dropped"],
        "latency_ms": rec["latency_ms"],
        "provider": f"{rec['provider']} {rec.get('precision', '')}".strip(),
        "output": rec["output_size"],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", nargs="*", default=["160x90", "320x180", "480x270", "640x360"])
    ap.add_argument("--fps", type=int, default=25)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--model")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--proto", choices=["udp", "tcp"], default="udp")
    ap.add_argument("--audio", action="store_true", help="interleave AAC, as real streams do")
    ap.add_argument("--max-latency", type=float, default=500, help="ms")
    ap.add_argument("--preset", default="veryfast")
    ap.add_argument("--json", type=Path)
    ap.add_argument(
        "--tiers",
        default="",
        help="run every size for each of these tiers' bundled x3 models instead of "
        "--model (comma-separated fast,balanced,quality, or 'all'); sizes "
        "above a tier's first miss are skipped unless --all-sizes",
    )
    ap.add_argument("--scale", type=int, default=3, help="scale of the --tiers models (default 3)")
    ap.add_argument(
        "--int8",
        action="store_true",
        help="with --tiers: also each tier's bundled int8 variant, where there is one",
    )
    ap.add_argument("--all-sizes", action="store_true", help="with --tiers: run every size")
    ap.add_argument(
        "--engines",
        default="",
        help="comma-separated ENGINE:PRECISION pairs (e.g. onnxruntime:fp32,openvino:bf16,"
        "auto:auto): each model runs once per pair, the pairs one after another "
        "at each size, so load on the machine hits them alike",
    )
    ap.add_argument("--repeat", type=int, default=1, help="run everything N times (the spread)")
    args = ap.parse_args()
    models = models_to_run(args)
    engines = [tuple(e.split(":", 1)) for e in args.engines.split(",") if e] or [("", "")]
    runs: list[tuple[str, str | None, tuple[str, ...]]] = [
        (f"{label}{' ' + e + ' ' + p if e else ''}", model, ("--engine", e, "--precision", p) if e else ())
        for label, model in models
        for e, p in engines
    ]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            missed = {label: False for label, _, _ in runs}
            for size in args.sizes:
                for label, model, extra in runs:
                    if missed[label] and len(runs) > 1 and not args.all_sizes:
                        rows.append({"model": label, "size": size, "skipped": True})
                        continue
                    r = run_one(
                        size,
                        args.fps,
                        args.seconds,
                        args.device,
                        model,
                        args.batch,
                        args.max_latency,
                        args.preset,
                        Path(tmp),
                        args.proto,
                        args.audio,
                        extra,
                    )
                    r["model"] = label
                    rows.append(r)
                    missed[label] = missed[label] or not real_time(r)
                    print(f"{label} {size}: {r}", file=sys.stderr, flush=True)
    from vsr.model import cpu

    print(
        f"`vsr live`, {args.fps} fps input{' with AAC' if args.audio else ''} over "
        f"{args.proto.upper()} loopback, {args.seconds:.0f} s per size, "
        f"libx264 {args.preset}; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs; real time = under 2% of frames dropped in the steady state\n"
        f"CPU: {cpu.describe()}\n"
    )
    print(
        "| model | input | output | provider | fps in | fps out | dropped (all) | dropped (steady) "
        "| latency p50 | p95 | p99 | video - audio start | real time |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if r.get("skipped"):
            print(
                f"| {r['model']} | {r['size']} | - | - | - | - | - | - | - | - | - | - | "
                "skipped (a smaller size missed) |"
            )
            continue
        if "error" in r:
            print(
                f"| {r['model']} | {r['size']} | - | - | - | - | - | - | - | - | - | - | "
                f"error: {r['error']} |"
            )
            continue
        lat = r["latency_ms"]
        ok = "yes" if real_time(r) else "no"
        out = "x".join(map(str, r["output"]))
        print(
            f"| {r['model']} | {r['size']} | {out} | {str(r['provider']).replace('ExecutionProvider', '')} | "
            f"{r['fps_in']} | {r['fps_out']} | {r['dropped_total']}/{r['frames_in_total']} "
            f"({r['dropped_total_pct']}%) | {r['dropped_pct']}% | {lat['p50']:.0f} ms | "
            f"{lat['p95']:.0f} ms | {lat['p99']:.0f} ms | "
            f"{'-' if r['av_start_ms'] is None else str(r['av_start_ms']) + ' ms'} | {ok} |"
        )
    print()
    for label, _, _ in runs:
        fit = [r["size"] for r in rows if r["model"] == label and real_time(r)]
        print(
            f"- {label}: largest input in real time at {args.fps} fps: "
            f"{fit[-1] if fit else 'none of ' + ', '.join(args.sizes)}"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
