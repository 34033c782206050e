#!/usr/bin/env python3
"""Live benchmark: a stream that switches resolution back and forth, against one that does not.

Adaptive streams ramp between 360p, 720p and 1080p every few seconds. Each part goes through
the model at its own size (`vsr.media.resolution`), so switching must cost no more than the
sizes themselves: this sends, side by side (one after the other, same machine), a real-time
stream that cycles through --sizes every --every seconds (small, large, middle, ...) and one
that stays at the largest size, to `vsr live` with a recording, and prints for each the share
of frames dropped after start-up (vsr's own `steady` figure), the frames out per second, and
the resident memory a third of the way in and at the end (flat memory: the two close).

    python scripts/bench/bench_switch.py                        # 160x90/320x180/480x270, fast tier
    python scripts/bench/bench_switch.py --sizes 640x360 1280x720 1920x1080 --device cuda

The sizes are 360p/720p/1080p divided by 4 by default: what the fast tier keeps up with on two
CPU cores (README "Performance").
"""

from __future__ import annotations

import argparse
import json
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from vsr.lab.live_sender import Part, Wire, prepare_clip, send
from vsr.paths import ROOT


def _rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


def run(parts: list[Part], args: argparse.Namespace, out: Path) -> dict[str, float]:
    """One `vsr live` run on the stream of `parts`; its figures."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    total = sum(p.seconds for p in parts)
    cmd = [
        sys.executable,
        "-m",
        "vsr",
        "live",
        f"udp://127.0.0.1:{port}",
        str(out),
        "-y",
        "--stats",
        "json",
        "--quality",
        args.quality,
        "--device",
        args.device,
        "--duration",
        str(total + 1.5),
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    samples: list[tuple[float, float]] = []

    def sample() -> None:
        t0 = time.monotonic()
        while proc.poll() is None:
            samples.append((time.monotonic() - t0, _rss_mib(proc.pid)))
            time.sleep(0.5)

    sampler = threading.Thread(target=sample)
    sampler.start()
    time.sleep(args.startup)  # vsr binds the port once the model is loaded
    send(parts, Wire(f"udp://127.0.0.1:{port}"))
    _, err = proc.communicate(timeout=total + 60)
    sampler.join()
    done = next(json.loads(x) for x in reversed(err.splitlines()) if x.startswith('{"event": "done"'))
    steady = done.get("steady") or {}
    span = samples[-1][0] if samples else 0.0
    third = max((r for t, r in samples if t <= span / 3), default=0.0)
    end = max((r for t, r in samples if t >= span * 0.8), default=0.0)
    return {
        "steady_dropped_pct": 100 * steady.get("dropped", 0) / max(1, steady.get("frames_in", 0)),
        "fps_out": done["frames"] / max(1e-9, done["seconds"]),
        "rss_third_mib": third,
        "rss_end_mib": end,
        "size_changes": done.get("size_changes", 0),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--sizes", nargs="+", default=["160x90", "320x180", "480x270"])
    ap.add_argument("--every", type=float, default=2.0, help="seconds per size")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--quality", default="fast")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--startup", type=float, default=4.0, help="seconds vsr gets to start")
    args = ap.parse_args()
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clips = [prepare_clip(None, folder / f"{w}x{h}.ts", (w, h), args.every) for w, h in sizes]
        order = [0, len(sizes) - 1, *range(1, len(sizes) - 1)]
        n = round(args.seconds / args.every)
        switching = [Part(clips[order[i % len(order)]], args.every) for i in range(n)]
        fixed = [Part(clips[-1], args.every) for _ in range(n)]
        rows = {
            "switching": run(switching, args, folder / "switch.mkv"),
            f"fixed {args.sizes[-1]}": run(fixed, args, folder / "fixed.mkv"),
        }
    print(
        f"machine: {platform.processor() or platform.machine()}, "
        f"{len(__import__('os').sched_getaffinity(0))} cores"
    )
    print(
        f"{'stream':<20} {'dropped %':>10} {'fps out':>8} "
        f"{'RSS 1/3 MiB':>12} {'RSS end MiB':>12} {'changes':>8}"
    )
    for name, r in rows.items():
        print(
            f"{name:<20} {r['steady_dropped_pct']:>10.1f} {r['fps_out']:>8.1f} {r['rss_third_mib']:>12.0f} "
            f"{r['rss_end_mib']:>12.0f} {r['size_changes']:>8.0f}"
        )
    a, b = rows["switching"], rows[f"fixed {args.sizes[-1]}"]
    print(
        f"fps out, switching / fixed: {a['fps_out'] / max(1e-9, b['fps_out']):.2f}; "
        f"RSS end / third, switching: {a['rss_end_mib'] / max(1e-9, a['rss_third_mib']):.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
