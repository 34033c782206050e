#!/usr/bin/env python3
"""Live benchmark: which input sizes `vsr live` sustains in real time on this machine.

For each input size, a real-time MPEG-TS stream (scripts/send_test_stream.py) is sent over
UDP on loopback at --fps, `vsr live` upscales it for --seconds (recording to a file, as a
user would), and its final statistics are collected: frames out per second, the share of
frames dropped at the input to keep up, and latency from arrival to encoded output
(p50/p95/p99). The first 2 s (stream probing, model warm-up) are left out of the fps and
drop figures; a size runs "in real time" when under 2% of frames are dropped after that.

    python scripts/bench_live.py                          # 160x90 ... 640x360 at 25 fps, x3, CPU
    python scripts/bench_live.py --sizes 1280x720 --device cuda --fps 30 --json out.json

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

ROOT = Path(__file__).resolve().parent.parent
WARMUP = 2.0  # seconds of each run left out of the steady-state figures


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_one(size: str, fps: int, seconds: float, device: str, model: str | None, batch: int,
            max_latency: float, preset: str, workdir: Path) -> dict[str, object]:
    port = free_port()
    sender = subprocess.Popen(
        ["sh", "-c", 'sleep 1.5; exec "$0" "$@"', sys.executable, str(ROOT / "scripts" / "send_test_stream.py"),
         f"udp://127.0.0.1:{port}?pkt_size=1316", str(seconds + 4), "--size", size, "--fps", str(fps)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cmd = [sys.executable, "-m", "vsr", "live", f"udp://127.0.0.1:{port}", str(workdir / f"{size}.ts"),
           "-y", "--duration", str(seconds), "--stats", "json", "--device", device,
           "--batch", str(batch), "--max-latency", str(max_latency), "--preset", preset]
    if model:
        cmd += ["--model", model]
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=seconds + 120)
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
    return {"size": size, "fps_in": round(frames_in / span, 1),
            "fps_out": round((rec["frames"] - base["frames"]) / span, 1),
            "dropped_pct": round(100 * (rec["dropped"] - base["dropped"]) / frames_in, 1),
            "startup_dropped": base["dropped"],
            "latency_ms": rec["latency_ms"], "provider": rec["provider"],
            "output": rec["output_size"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", nargs="*", default=["160x90", "320x180", "480x270", "640x360"])
    ap.add_argument("--fps", type=int, default=25)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--model")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--max-latency", type=float, default=500, help="ms")
    ap.add_argument("--preset", default="veryfast")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            rows.append(run_one(size, args.fps, args.seconds, args.device, args.model, args.batch,
                                args.max_latency, args.preset, Path(tmp)))
            print(f"{size}: {rows[-1]}", file=sys.stderr, flush=True)
    print(f"`vsr live`, {args.fps} fps input over UDP loopback, {args.seconds:.0f} s per size, model "
          f"{args.model or 'espcn_x3'}, libx264 {args.preset}; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs\n")
    print("| input | output | provider | fps in | fps out | dropped (steady) | latency p50 | p95 | p99 | real time |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['size']} | - | - | - | - | - | - | - | - | error: {r['error']} |")
            continue
        lat = r["latency_ms"]
        ok = "yes" if float(r["dropped_pct"]) < 2 else "no"  # type: ignore[arg-type]
        out = "x".join(map(str, r["output"]))  # type: ignore[call-overload]
        print(f"| {r['size']} | {out} | {str(r['provider']).replace('ExecutionProvider', '')} | "
              f"{r['fps_in']} | {r['fps_out']} | {r['dropped_pct']}% | {lat['p50']:.0f} ms | "  # type: ignore[index]
              f"{lat['p95']:.0f} ms | {lat['p99']:.0f} ms | {ok} |")  # type: ignore[index]
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
