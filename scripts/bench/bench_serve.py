#!/usr/bin/env python3
"""The job service's overhead: N files through `vsr serve --jobs 1` against the same files
through `vsr upscale`, one process after another, measured side by side in one run.

    serve:    the clock runs from the first POST to the last job done (the server was started
              and had loaded its model before: a service starts once, then takes jobs);
    upscale:  the clock runs over N `vsr upscale` processes in turn (each starts Python,
              loads the model and runs), what a pipeline without the service does.

Rounds alternate (upscale, serve, upscale, serve, ...) so that a machine that slows down
mid-run weighs on both; the ratio is of the medians. Same options both ways (the service's
defaults are the CLI's options).

    python scripts/bench/bench_serve.py                        # 6 files, 320x180, 120 frames
    python scripts/bench/bench_serve.py --files 10 --size 640x360 --frames 150 --rounds 3
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from vsr.lab.media import synth_video
from vsr.paths import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def call(port: int, method: str, path: str, body: object = None) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
        r = conn.getresponse()
        return r.status, json.loads(r.read() or b"{}")
    finally:
        conn.close()


def run_upscale(clips: list[Path], out: Path, options: list[str]) -> float:
    t0 = time.monotonic()
    for clip in clips:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "vsr",
                "upscale",
                str(clip),
                str(out / f"{clip.stem}_cli.mp4"),
                "-y",
                "--progress",
                "none",
                *options,
            ],
            check=True,
            cwd=ROOT,
        )
    return time.monotonic() - t0


def run_serve(root: Path, clips: list[Path], port: int, tag: str) -> float:
    t0 = time.monotonic()
    ids = []
    for clip in clips:
        status, job = call(
            port,
            "POST",
            "/v1/jobs",
            {
                "input": f"in/{clip.name}",
                "output": f"out/{clip.stem}_{tag}.mp4",
                "options": {"overwrite": True},
            },
        )
        assert status == 201, job
        ids.append(job["id"])
    pending = set(ids)
    while pending:
        for job_id in list(pending):
            status, job = call(port, "GET", f"/v1/jobs/{job_id}")
            if job["status"] in ("done", "failed", "cancelled"):
                assert job["status"] == "done", job
                pending.discard(job_id)
        time.sleep(0.02)
    return time.monotonic() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=6)
    ap.add_argument("--size", default="320x180")
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--options", default="--preset veryfast", help="vsr upscale options for both ways")
    args = ap.parse_args()
    w, h = map(int, args.size.split("x"))
    options = args.options.split()
    work = Path(tempfile.mkdtemp(prefix="vsr-bench-serve-"))
    try:
        root = work / "root"
        (root / "in").mkdir(parents=True)
        (root / "out").mkdir()
        clips = [
            synth_video(root / "in" / f"clip{i}.mp4", n=args.frames, size=(w, h)) for i in range(args.files)
        ]
        port = free_port()
        log = open(work / "serve.log", "wb")  # noqa: SIM115 - closed below
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vsr",
                "serve",
                "--root",
                str(root),
                "--port",
                str(port),
                "--jobs",
                "1",
                *options,
            ],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if call(port, "GET", "/readyz")[0] == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("vsr serve did not become ready: " + (work / "serve.log").read_text())
                time.sleep(0.1)
            run_serve(root, clips[:1], port, "warm")  # the first job pays the encoder's first start
            cli, srv = [], []
            for r in range(args.rounds):
                cli.append(run_upscale(clips, root / "out", options))
                srv.append(run_serve(root, clips, port, f"r{r}"))
                print(
                    f"round {r + 1}: vsr upscale x{args.files} {cli[-1]:.2f} s, "
                    f"vsr serve --jobs 1 {srv[-1]:.2f} s"
                )
        finally:
            server.terminate()
            server.wait(timeout=60)
            log.close()
        c, s = statistics.median(cli), statistics.median(srv)
        flags = sorted(
            set(
                re.findall(
                    r"\b(avx2|avx512f|avx512_vnni|avx_vnni|avx512_bf16|amx_bf16)\b",
                    Path("/proc/cpuinfo").read_text(),
                )
            )
        )
        cpu = re.sub(
            r"\s+",
            " ",
            next(
                (
                    line.split(":", 1)[1]
                    for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")
                ),
                platform.processor(),
            ),
        ).strip()
        print(
            f"\n{args.files} files {w}x{h}, {args.frames} frames, options {' '.join(options)}; "
            f"{cpu}, {len(os.sched_getaffinity(0))} cores, flags: {', '.join(flags) or 'none'}"
        )
        print("| way | median s | runs |\n|---|---:|---|")
        print(
            f"| vsr upscale, {args.files} processes in turn | {c:.2f} | "
            f"{', '.join(f'{x:.2f}' for x in cli)} |"
        )
        print(f"| vsr serve --jobs 1 | {s:.2f} | {', '.join(f'{x:.2f}' for x in srv)} |")
        print(f"service / CLI: {s / c:.3f} (overhead {100 * (s / c - 1):+.1f}%)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
