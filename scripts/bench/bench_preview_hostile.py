#!/usr/bin/env python3
"""Does the live preview cost frames under hostile clients? Drop rates side by side.

Runs `vsr live --preview` on a real-time MPEG-TS stream over UDP loopback
(scripts/media/send_test_stream.py) with one normal viewer, alternately without and with the
hostile clients of `vsr.lab.hostile` (500 concurrent connections that never read, slowloris,
malformed requests, a client reconnecting 100 times a second) for the run's middle, and
prints each run's steady-state drop rate (vsr's own `steady` figure), the frames the normal
viewer got, and the difference of the means. The clients run on the same machine and take
CPU of their own, which the difference includes.

    python scripts/bench/bench_preview_hostile.py                   # 160x90, 2 pairs of 15 s
    python scripts/bench/bench_preview_hostile.py --size 320x180 --repeat 3 --seconds 20
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import socket
import subprocess
import sys
import threading
import time
from typing import Any

from vsr.lab.hostile import run_hostile, watch
from vsr.paths import ROOT

SENDER = ROOT / "scripts" / "media" / "send_test_stream.py"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_one(size: str, fps: int, seconds: float, hostile: bool, model: str | None) -> dict[str, Any]:
    port = free_port()
    sender = subprocess.Popen(
        [
            "sh",
            "-c",
            'sleep 1.5; exec "$0" "$@"',
            sys.executable,
            str(SENDER),
            f"udp://127.0.0.1:{port}?pkt_size=1316",
            str(seconds + 6),
            "--size",
            size,
            "--fps",
            str(fps),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    cmd = [
        sys.executable,
        "-m",
        "vsr",
        "live",
        f"udp://127.0.0.1:{port}",
        "--preview",
        "--preview-port",
        "0",
        "--duration",
        str(seconds),
        "--stats",
        "json",
    ]
    if model:
        cmd += ["--model", model]
    vsr = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    report = None
    frames: list[float] = []
    try:
        assert vsr.stderr is not None
        preview = None
        while preview is None:
            line = vsr.stderr.readline()
            if not line:
                raise SystemExit("vsr ended before its preview started")
            m = re.search(r"preview at http://127\.0\.0\.1:(\d+)/", line)
            preview = int(m.group(1)) if m else None
        err = vsr.stderr
        drain = threading.Thread(target=lambda: lines.extend(err))
        drain.start()
        viewer = threading.Thread(target=watch, args=("127.0.0.1", preview, seconds - 1, frames))
        viewer.start()
        time.sleep(3)
        if hostile:
            report = run_hostile("127.0.0.1", preview, seconds - 5)
        viewer.join()
        vsr.wait(timeout=seconds + 60)
        drain.join(30)
    finally:
        if vsr.poll() is None:
            vsr.kill()
        sender.kill()
        sender.wait()
    done = [json.loads(x) for x in lines if x.startswith('{"event": "done"')]
    if vsr.returncode != 0 or not done:
        return {"hostile": hostile, "error": "".join(lines)[-500:]}
    steady = done[-1]["steady"] or {"frames_in": 0, "dropped": 0}
    return {
        "hostile": hostile,
        "frames_in": steady["frames_in"],
        "dropped": steady["dropped"],
        "dropped_pct": round(100 * steady["dropped"] / max(1, steady["frames_in"]), 2),
        "viewer_frames": len(frames),
        "traceback": "Traceback" in "".join(lines),
        "turned_away": report.flood_statuses[503] if report else 0,
        "reconnects": report.reconnects if report else 0,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="160x90")
    ap.add_argument("--fps", type=int, default=25)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--repeat", type=int, default=2, help="pairs of runs (without, with)")
    ap.add_argument("--model")
    args = ap.parse_args()
    rows = []
    for _ in range(args.repeat):
        for hostile in (False, True):
            row = run_one(args.size, args.fps, args.seconds, hostile, args.model)
            print(row, file=sys.stderr, flush=True)
            rows.append(row)
    print(
        f"`vsr live --preview`, {args.size} at {args.fps} fps over UDP loopback, {args.seconds:.0f} s "
        f"per run, one normal viewer; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs\n"
    )
    print(
        "| hostile clients | frames in (steady) | dropped | dropped % | viewer frames | "
        "turned away (503) | reconnects | traceback |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {'yes' if r['hostile'] else 'no'} | error: {r['error']!r} |")
            continue
        print(
            f"| {'yes' if r['hostile'] else 'no'} | {r['frames_in']} | {r['dropped']} | "
            f"{r['dropped_pct']} | {r['viewer_frames']} | {r['turned_away']} | {r['reconnects']} "
            f"| {r['traceback']} |"
        )
    ok = [r for r in rows if "error" not in r]
    with_ = [float(r["dropped_pct"]) for r in ok if r["hostile"]]
    without = [float(r["dropped_pct"]) for r in ok if not r["hostile"]]
    if with_ and without:
        diff = sum(with_) / len(with_) - sum(without) / len(without)
        print(
            f"\nmean steady drop rate: {sum(without) / len(without):.2f}% without, "
            f"{sum(with_) / len(with_):.2f}% with hostile clients: {diff:+.2f} points"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
