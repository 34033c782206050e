"""The local Ray that `vsr upscale --segments` starts ends with its driver, even on kill -9.

Skipped when Ray is not installed, and where there is no /proc (the reaper is Linux-only)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import GOP12, ROOT

from vsr.lab.media import synth_video

pytest.importorskip("ray")
pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time) of a process, None once it is gone (a zombie counts as gone)."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    rest = data[data.rindex(b")") + 2 :].split()
    return None if rest[0] == b"Z" else (int(rest[1]), int(rest[19]))


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _descendants(root: int) -> dict[int, tuple[int, str]]:
    """pid -> (start time, command line) of every process below `root`."""
    table = {int(p): st for p in os.listdir("/proc") if p.isdigit() and (st := _stat(int(p)))}
    found: dict[int, tuple[int, str]] = {}
    todo = [root]
    while todo:
        parent = todo.pop()
        for pid, (ppid, start) in table.items():
            if ppid == parent and pid not in found:
                found[pid] = (start, _cmdline(pid))
                todo.append(pid)
    return found


@pytest.mark.slow
def test_killed_driver_leaves_no_ray_process(tmp_path: Path) -> None:
    """kill -9 of a `--segments` driver while its Ray actors work: within 10 s no process of
    that Ray session is left (before: the dashboard and runtime-env agents stayed for good,
    adopted by init)."""
    src = synth_video(tmp_path / "in.mp4", n=240, size=(160, 120), options=GOP12)
    driver = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vsr",
            "upscale",
            str(src),
            str(tmp_path / "out.mp4"),
            "--segments",
            "4",
            "--workers",
            "2",
            "--gpus-per-worker",
            "0",
            "--progress",
            "json",
            "--device",
            "cpu",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert driver.stderr is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # until the actors have written frames
            line = driver.stderr.readline()
            if not line:
                break
            rec = json.loads(line) if line.startswith("{") else {}
            if rec.get("segments") and rec.get("frames", 0) > 0:
                break
        ray_procs = _descendants(driver.pid)
        names = " ".join(cmd for _, cmd in ray_procs.values())
        assert "ray::SegmentWorker" in names and "raylet" in names, names
        session = next(
            part.split("=", 1)[1]
            for _, cmd in ray_procs.values()
            for part in cmd.split()
            if part.startswith(("--session_dir=", "--session-dir="))
        )
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            left = {
                pid: cmd
                for pid, (start, cmd) in ray_procs.items()
                if (st := _stat(pid)) is not None and st[1] == start
            }
            if not left:
                break
            time.sleep(0.25)
        assert not left, f"still running 10 s after kill -9: {left}"
        in_session = [p for p in os.listdir("/proc") if p.isdigit() and session in _cmdline(int(p))]
        assert not in_session, in_session
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
