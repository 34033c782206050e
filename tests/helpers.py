"""Helpers the test files share: where things are, the numpy fake upscaler, reading what a
run wrote, running vsr's CLI (in this process, as a real one, or as a child whose stderr is
read as it comes) and the project's scripts, memory readings, and looking for leftovers. One
definition each, imported as `from helpers import ...`. Media made by code (`synth_video`,
`pattern`, ...) comes from `vsr.lab.media`, which the scripts share."""

from __future__ import annotations

import hashlib
import io
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol, TypedDict

import av
import cv2
import numpy as np
import numpy.typing as npt
import pytest

from vsr.app.cli import main
from vsr.lab.media import pattern
from vsr.paths import MODELS
from vsr.paths import ROOT as ROOT  # (as ROOT: the tests import these two from here)
from vsr.paths import SHARED_DATA as SHARED_DATA

MODEL_X3 = MODELS / "espcn_x3.onnx"
ZOO_MODEL = SHARED_DATA / "reference" / "super_resolution.onnx"


def make_png(path: Path, w: int = 40, h: int = 30) -> Path:
    """A w x h PNG of the test pattern's first frame at `path`."""
    assert cv2.imwrite(str(path), pattern(0, w, h))
    return path


def needs(path: Path) -> pytest.MarkDecorator:
    """Skip unless `path` (usually under ../shared) exists."""
    return pytest.mark.skipif(not path.exists(), reason=f"{path} not present")


class FakeUpscaler:
    """Nearest-neighbour numpy 'model': fast and exact, with optional delay or failure."""

    provider = "fake"

    def __init__(self, scale: int = 2, delay: float = 0.0, fail_at: int | None = None) -> None:
        self.scale = scale
        self.delay = delay
        self.fail_at = fail_at
        self.calls = 0
        self.frames = 0

    def __call__(self, y: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        self.calls += 1
        if self.fail_at is not None and self.frames + len(y) > self.fail_at:
            raise RuntimeError(f"fake model failure at frame {self.fail_at}")
        self.frames += len(y)
        if self.delay:
            time.sleep(self.delay)
        return np.repeat(np.repeat(y, self.scale, axis=1), self.scale, axis=2)


def onnx_model(graph: Any) -> Any:
    """A test graph as a model onnxruntime loads: opset 13 at IR version 8. onnx writes its own
    newest IR version by default (1.23: IR 14), which can be newer than the installed
    onnxruntime reads (1.31: up to 13); the bundled models are IR 8 too."""
    from onnx import helper

    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def damage_middle(clean: Path, damaged: Path, flips: int = 60, span: int = 6000) -> Path:
    """Write `damaged`: `clean` with `flips` bytes inverted in the `span` bytes after its middle
    (seeded: the same bytes every run)."""
    data = bytearray(clean.read_bytes())
    rng = np.random.default_rng(1)
    for i in rng.integers(len(data) // 2, len(data) // 2 + span, flips):
        data[i] ^= 0xFF
    damaged.write_bytes(bytes(data))
    return damaged


class Timed(Protocol):
    """A decoded frame or a demuxed packet: what carries a pts in its time base."""

    @property
    def pts(self) -> int | None: ...
    @property
    def time_base(self) -> Fraction | None: ...


def pts_of(item: Timed) -> int:
    """`item.pts`, which every frame decoded and packet demuxed from the tests' files has
    (PyAV types it `int | None`)."""
    assert item.pts is not None, f"{item} has no pts"
    return item.pts


def time_of(item: Timed) -> Fraction:
    """When `item` is, in seconds (exact): its pts in its time base."""
    assert item.time_base is not None, f"{item} has no time base"
    return pts_of(item) * item.time_base


class Lasting(Timed, Protocol):
    """A packet: it also has a duration, in its time base."""

    @property
    def duration(self) -> int | None: ...


def end_of(item: Lasting) -> Fraction:
    """When `item` ends, in seconds (exact): its pts plus its duration, in its time base."""
    assert item.time_base is not None and item.duration is not None, f"{item} has no duration"
    return (pts_of(item) + item.duration) * item.time_base


def read_image(path: Path, flags: int = cv2.IMREAD_COLOR) -> npt.NDArray[Any]:
    """`cv2.imread` of an image that must be there (cv2 returns None where it cannot read it)."""
    img = cv2.imread(str(path), flags)
    assert img is not None, f"cannot read {path}"
    return img


class VideoStats(TypedDict):
    times: list[float]  # each frame's pts in seconds
    sizes: set[tuple[int, int]]  # (width, height) of the frames
    audio_streams: int


def video_stats(path: Path) -> VideoStats:
    """Decode a file and return frame pts (seconds), sizes and audio packet count."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        times = []
        sizes = set()
        for f in c.decode(v):
            times.append(float(time_of(f)))
            sizes.add((f.width, f.height))
    with av.open(str(path)) as c:
        audio = sum(1 for s in c.streams if s.type == "audio")
    return {"times": times, "sizes": sizes, "audio_streams": audio}


def run_cli(*args: object) -> tuple[int, str]:
    """Run `vsr ARGS...` in this process; (exit status, what it wrote to stderr)."""
    err = io.StringIO()
    status = main([str(a) for a in args], stderr=err)
    return int(status), err.getvalue()


def run_process(
    *args: object, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `python -m vsr ARGS...` as a real process from the checkout; `env` adds variables
    to this process's environment."""
    return subprocess.run(
        [sys.executable, "-m", "vsr", *map(str, args)],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env} if env else None,
    )


def run_on_terminal(*args: object, timeout: float = 120) -> tuple[int, bytes]:
    """Run `python -m vsr ARGS...` on a terminal (a pty of 40x100 as its stdin, stdout and
    stderr); (exit status, everything it wrote there)."""
    pty = pytest.importorskip("pty")  # and with it fcntl and termios: POSIX only
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "vsr", *map(str, args)],
        cwd=ROOT,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        close_fds=True,
    )
    os.close(slave)
    out = b""
    try:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(master)
    return proc.wait(timeout=timeout), out


def run_script(script: str, *args: object, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run one of the project's scripts by its path, `python scripts/SCRIPT ARGS...`, from the
    checkout (e.g. `run_script("models/eval.py", "--sets", folder)`)."""
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / script), *map(str, args)],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def load_script(script: str) -> Any:
    """One of the project's scripts (`scripts/SCRIPT`) imported as a module, for tests of its
    functions."""
    import importlib.util

    path = ROOT / "scripts" / script
    spec = importlib.util.spec_from_file_location(f"script_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def script_main(script: str, *args: object) -> tuple[int, str, str]:
    """Run one of the project's scripts' `main(argv)` in this process: (exit status, stdout,
    stderr). For scripts whose start-up dominates a short run (train.py imports torch: ~5 s
    per process), where the test checks what the script computes, not how it exits."""
    import contextlib
    import io

    module = load_script(script)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = module.main([str(a) for a in args])
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if exc.code is not None and not isinstance(exc.code, int):
                err.write(f"{exc.code}\n")
    return int(status or 0), out.getvalue(), err.getvalue()


#: Runs the CLI in a fresh interpreter and prints its own peak RSS (KiB on Linux) last.
_PEAK_RSS = """\
import io, resource, sys
from vsr.app.cli import main
err = io.StringIO()
status = main(sys.argv[1:], stderr=err)
sys.stderr.write(err.getvalue())
print(status, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_rss_kib(*args: object, timeout: float = 120) -> int:
    """`vsr ARGS...` in a fresh interpreter, which must succeed; its peak RSS in KiB (Linux)."""
    proc = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS, *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    status, rss = proc.stdout.split()[-2:]
    assert status == "0", proc.stderr
    return int(rss)


def rss_kib(pid: int | None = None) -> int:
    """The resident memory (VmRSS, KiB) of process `pid`, or of this one; 0 once it is gone."""
    status = Path(f"/proc/{pid if pid is not None else 'self'}/status")
    try:
        lines = status.read_text().splitlines()
    except FileNotFoundError:
        return 0
    for line in lines:
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def listing(folder: Path) -> list[str]:
    """Every entry in `folder`, hidden temporary files included."""
    return sorted(p.name for p in folder.iterdir())


def leftovers(folder: Path) -> list[str]:
    """vsr's temporary files (`.NAME.vsr-XXXX.partial.EXT`) left in `folder`: none, ever."""
    return sorted(p.name for p in folder.iterdir() if ".partial" in p.name)


def assert_user_error(status: int, err: str, expected: int = 2, *, mentions: str = "") -> str:
    """A user error: the documented status, one 'vsr: ' line (+ optional 'hint: '), no traceback."""
    assert status == expected, err
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert 1 <= len(lines) <= 2, err
    assert lines[0].startswith("vsr: "), err
    if len(lines) == 2:
        assert lines[1].startswith("hint: "), err
    assert mentions.lower() in lines[0].lower(), err
    return lines[0]


def free_tcp_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    """A real `vsr serve` process on loopback, and a real HTTP client for it (http.client).

    `request()` returns (status, parsed JSON or raw bytes, headers); `wait()` polls a job
    until it ends. The process is stopped (SIGKILL) by `stop()` if it is still running.
    """

    def __init__(
        self,
        root: Path,
        *args: object,
        token: str | None = None,
        env: dict[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        self.root = root
        self.port = port or free_tcp_port()
        self.token = token
        self.log = root.parent / f"serve-{self.port}.log"
        self._log = open(self.log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vsr",
                "serve",
                "--root",
                str(root),
                "--port",
                str(self.port),
                *map(str, args),
            ],
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"vsr serve exited {self.proc.returncode}: {self.output()}")
            try:
                if self.request("GET", "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"vsr serve did not answer: {self.output()}")
            time.sleep(0.1)

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log.read_text(errors="replace")

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        token: str | None = None,
        timeout: float = 30,
    ) -> tuple[int, Any, dict[str, str]]:
        import http.client
        import json

        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            h = dict(headers or {})
            bearer = token if token is not None else self.token
            if bearer:
                h["Authorization"] = f"Bearer {bearer}"
            data = raw
            if body is not None:
                data = json.dumps(body).encode()
                h["Content-Type"] = "application/json"
            conn.request(method, path, body=data, headers=h)
            r = conn.getresponse()
            payload = r.read()
            got = {k.lower(): v for k, v in r.getheaders()}
            if got.get("content-type", "").startswith("application/json"):
                return r.status, json.loads(payload), got
            return r.status, payload, got
        finally:
            conn.close()

    def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        status, job, _ = self.request("POST", "/v1/jobs", body)
        assert status == 201, (status, job)
        return dict(job)

    def job(self, job_id: str) -> dict[str, Any]:
        status, job, _ = self.request("GET", f"/v1/jobs/{job_id}")
        assert status == 200, (status, job)
        return dict(job)

    def wait(
        self,
        job_id: str,
        until: tuple[str, ...] = ("done", "failed", "cancelled"),
        timeout: float = 120,
        frames: int = 0,
    ) -> dict[str, Any]:
        """Poll until the job's status is one of `until` (and, for running, `frames` done)."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job["status"] in until and (job["progress"].get("frames") or 0) >= frames:
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} still {job['status']} after {timeout}s: {self.output()}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self._log.close()


def decoded(path: Path) -> tuple[list[npt.NDArray[Any]], list[int]]:
    """Every video frame of `path` as its planes stacked (exact pixels), and their pts."""
    frames, pts = [], []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            frames.append(np.asarray(f.to_ndarray()).copy())
            pts.append(int(f.pts) if f.pts is not None else -1)
    return frames, pts


class Vsr:
    """A `python -m vsr` child whose stderr lines are collected by a thread as they come."""

    def __init__(self, *args: object, stdin: int = subprocess.DEVNULL) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vsr", *map(str, args)],
            cwd=ROOT,
            stdin=stdin,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, name="test-stderr-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._queue.put(line)
        self._queue.put(None)

    def wait_line(self, predicate: Callable[[str], bool], timeout: float = 30.0) -> str:
        """The first stderr line satisfying `predicate`; fails (killing the child) on timeout or EOF."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                line = self._queue.get(timeout=max(0.01, left))
            except queue.Empty:
                self.kill()
                pytest.fail(f"no matching stderr line within {timeout}s; got {self.lines}")
            if line is None:
                self.proc.wait(timeout=10)
                pytest.fail(
                    f"vsr ended (status {self.proc.returncode}) before the expected line; "
                    f"stderr: {self.lines}"
                )
            self.lines.append(line)
            if predicate(line):
                return line

    def wait_exit(self, timeout: float) -> int:
        """The exit status, after which the whole stderr is in `self.lines`; fails on timeout."""
        try:
            status = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"vsr still running {timeout}s after the signal; stderr: {self.lines}")
        self._reader.join(timeout=5)
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.lines.append(line)
        return status

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    @property
    def stderr(self) -> str:
        return "".join(self.lines)


# -- vsr live over loopback (test_live, test_live_output) ------------------------------

SENDER = ROOT / "scripts" / "media" / "send_test_stream.py"


def free_udp_port() -> int:
    """A UDP port on loopback that nothing is bound to now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_bound(port: int, process: subprocess.Popen[str], timeout: float = 60) -> None:
    """Wait until a UDP socket is bound to `port` on this machine (Linux's /proc/net/udp; where
    it cannot be read, three seconds), so that a sender started now is heard from its first
    packet however long the `process` binding it takes to start."""
    tables = [Path("/proc/net/udp"), Path("/proc/net/udp6")]
    if not tables[0].exists():
        time.sleep(3)
        return
    local = f":{port:04X}"  # rows: "sl local_address:port rem_address:port ...", in hex
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if any(
            line.split()[1].endswith(local)
            for t in tables
            if t.exists()
            for line in t.read_text().splitlines()[1:]
        ):
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing bound UDP port {port} within {timeout} s")


def start_sender(
    port: int,
    seconds: float,
    size: str = "96x64",
    fps: int = 25,
    audio: bool = False,
    delay: float = 1.0,
    tcp: bool = False,
    extra: tuple[str, ...] = (),
) -> subprocess.Popen[bytes]:
    """Start sending a real-time MPEG-TS stream to udp://127.0.0.1:port after `delay` s
    (vsr binds the port first; UDP packets sent before that are lost, as on a real network),
    or to tcp://127.0.0.1:port, retrying until vsr listens there. `extra`: more of the
    sender's options (--audio-codec, --start)."""
    url = f"tcp://127.0.0.1:{port}" if tcp else f"udp://127.0.0.1:{port}?pkt_size=1316"
    cmd = [
        sys.executable,
        str(SENDER),
        url,
        str(seconds),
        "--size",
        size,
        "--fps",
        str(fps),
        "--connect-wait",
        "30",
        *(["--audio"] if audio else []),
        *extra,
    ]
    return subprocess.Popen(
        ["sh", "-c", f'sleep {delay}; exec "$0" "$@"', *cmd],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def start_receiver(url: str) -> tuple[threading.Thread, list[tuple[int, int]]]:
    """Decode a stream vsr sends to `url` in a thread; returns it and the frame sizes seen."""
    import av

    received: list[tuple[int, int]] = []

    def receive() -> None:
        try:
            with av.open(url, timeout=(20, 5)) as c:
                for f in c.decode(video=0):
                    received.append((f.width, f.height))
        except av.error.FFmpegError:
            pass  # the stream ended or never came: the test's assertions say which

    rx = threading.Thread(target=receive)
    rx.start()
    time.sleep(0.5)  # listening before vsr starts sending
    return rx, received


def start_vsr(*argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "vsr", "live", *argv],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def done_record(stderr: str) -> dict[str, Any]:
    lines: list[dict[str, Any]] = [json.loads(x) for x in stderr.splitlines() if x.startswith("{")]
    done = [x for x in lines if x.get("event") == "done"]
    assert done, stderr
    return done[-1]


def finish_with(proc: subprocess.Popen[Any], sender: subprocess.Popen[bytes]) -> tuple[Any, Any]:
    """`proc`'s (stdout, stderr) once it ends by itself (within 60 s, else it is killed), then
    the sender it was reading is stopped."""
    try:
        return proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        sender.kill()
        sender.wait()


def stop_both(vsr: subprocess.Popen[str], sender: subprocess.Popen[bytes]) -> tuple[int, str]:
    _, err = finish_with(vsr, sender)
    return vsr.returncode, err


# -- scale-out (test_scaleout, test_scaleout_ray, test_scaleout_real, test_scaleout_reaper) ---

#: x264 options for a keyframe every 12 frames, so a clip really splits into segments
GOP12 = {"g": "12", "keyint_min": "12", "sc_threshold": "0"}
# --device cpu: segments equal one machine bit for bit only where every batch size gives the
# same pixels (float16 on a GPU picks its kernels per shape).
LOSSLESS = ["--crf", "0", "--preset", "ultrafast", "--device", "cpu"]


def video_pts(path: Path) -> list[float]:
    """The video packets' times in seconds, sorted (presentation order)."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        return sorted(float(time_of(p)) for p in c.demux(v) if p.size)


def frame_hashes(path: Path) -> list[str]:
    """A SHA-1 of each decoded video frame's pixels, in order."""
    with av.open(str(path)) as c:
        return [hashlib.sha1(f.to_ndarray().tobytes()).hexdigest() for f in c.decode(video=0)]


def audio_packets(path: Path) -> list[tuple[Fraction | None, bytes]]:
    """The first audio stream's packets as (time in seconds, bytes); [] without audio."""
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return []
        return [
            (p.pts * p.time_base if p.pts is not None else None, bytes(p))
            for p in c.demux(c.streams.audio[0])
            if p.size
        ]


def upscale_lossless(src: Path, out: Path, *extra: object) -> None:
    """`vsr upscale SRC OUT` losslessly on the CPU (LOSSLESS) in this process, which succeeds."""
    status, err = run_cli("upscale", src, out, *LOSSLESS, "-q", *extra)
    assert status == 0, err
