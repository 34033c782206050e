#!/usr/bin/env python3
"""Does the live preview cost frames under hostile clients? Drop rates side by side.

Runs `vsr live --preview` on a real-time MPEG-TS stream over UDP loopback
(scripts/media/send_test_stream.py) with one normal viewer, alternately without and with the
hostile clients of `vsr.lab.hostile` (500 concurrent connections that never read, slowloris,
malformed requests, a client reconnecting 100 times a second) for the run's middle, and
prints each run's steady-state drop rate (vsr's own `steady` figure), the frames the normal
viewer got, the vsr process's threads and descriptors (before -> peak) and peak RSS, the load
average, and the difference of the means. The clients run on the same machine and take CPU of
their own, which the difference includes. The run itself is `vsr.lab.hostile.run_preview`,
which tests/test_preview_hostile.py runs too.

    python scripts/bench/bench_preview_hostile.py                   # 160x90, 2 pairs of 15 s
    python scripts/bench/bench_preview_hostile.py --size 320x180 --repeat 3 --seconds 20
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from typing import Any

from vsr.lab.hostile import run_preview


def run_one(size: str, fps: int, seconds: float, hostile: bool, model: str | None) -> dict[str, Any]:
    run = run_preview(
        seconds=seconds,
        hostile=hostile,
        hostile_seconds=seconds - 5,
        settle=2.5,
        size=size,
        fps=fps,
        vsr_args=("--model", model) if model else (),
    )
    done, pct = run.done, run.steady_drop_pct
    if run.returncode != 0 or not done:
        return {"hostile": hostile, "error": run.stderr[-500:]}
    steady = done["steady"] or {"frames_in": 0, "dropped": 0}
    peak = max(run.samples, key=lambda x: x.threads) if run.samples else None
    return {
        "hostile": hostile,
        "frames_in": steady["frames_in"],
        "dropped": steady["dropped"],
        "dropped_pct": round(pct or 0.0, 2),
        "viewer_frames": len(run.viewer_frames),
        "traceback": "Traceback" in run.stderr,
        "turned_away": run.report.flood_statuses[503] if run.report else 0,
        "reconnects": run.report.reconnects if run.report else 0,
        "threads": f"{run.base.threads if run.base else '?'} -> {peak.threads if peak else '?'}",
        "fds": f"{run.base.fds if run.base else '?'} -> {max((x.fds for x in run.samples), default='?')}",
        "rss_mib": round(max((x.rss_kib for x in run.samples), default=0) / 1024),
        "load": round(os.getloadavg()[0], 1),
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
        "turned away (503) | reconnects | traceback | threads | fds | peak RSS MiB | load |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {'yes' if r['hostile'] else 'no'} | error: {r['error']!r} |")
            continue
        print(
            f"| {'yes' if r['hostile'] else 'no'} | {r['frames_in']} | {r['dropped']} | "
            f"{r['dropped_pct']} | {r['viewer_frames']} | {r['turned_away']} | {r['reconnects']} "
            f"| {r['traceback']} | {r['threads']} | {r['fds']} | {r['rss_mib']} | {r['load']} |"
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
