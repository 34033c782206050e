"""Hostile HTTP clients for the live preview, on loopback only, bounded in count and time.

Used by tests/test_preview_hostile.py and scripts/bench/bench_preview_hostile.py against a
running `vsr live --preview`. Each kind is what a crowded or careless network does to a
small HTTP server:

- `flood`: many connections at once, each asking for the MJPEG stream and never reading it
  (concurrent viewers and slow readers together);
- `slowloris`: requests sent a byte at a time, never finished;
- `malformed`: garbage, oversized and wrong-method requests, each on a new connection, whose
  answers are collected (they should be 4xx, never a hang or a reset before the answer);
- `reconnect`: a client that reconnects `rate` times a second for a single frame, hanging up
  mid-response every other time;
- `watch`: a well-behaved viewer counting the JPEG frames it gets.

`run_preview` is the whole experiment, shared by the test and the benchmark: a real-time
MPEG-TS sender on UDP loopback, `vsr live --preview` on it, one normal viewer, the hostile
clients (or, for the side-by-side baseline, none) for the run's middle, and the vsr process's
threads, descriptors and memory sampled throughout.

Everything here refuses non-loopback hosts: it is a test tool, not a load generator.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..paths import ROOT

#: The real-time MPEG-TS test sender (`python scripts/media/send_test_stream.py --help`).
SENDER = ROOT / "scripts" / "media" / "send_test_stream.py"

#: Requests `malformed` sends, in turn (each on its own connection).
MALFORMED = (
    b"\x00\x01\x02garbage\r\n\r\n",
    b"GET\r\n\r\n",
    b"GET / HTTP/9.9\r\n\r\n",
    b"GET noslash HTTP/1.1\r\n\r\n",
    b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
    b"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
    b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + b"X-Pad: " + b"b" * 20000 + b"\r\n\r\n",
    b"GET /../../etc/passwd HTTP/1.1\r\n\r\n",
    b"\r\n\r\n",
)


@dataclass
class HostileReport:
    """What the hostile clients saw, by kind."""

    flood_connected: int = 0
    flood_statuses: Counter[int] = field(default_factory=Counter)  # first status line seen
    slowloris: int = 0
    malformed_statuses: Counter[int] = field(default_factory=Counter)  # 0: no answer
    reconnects: int = 0
    reconnect_statuses: Counter[int] = field(default_factory=Counter)


def _loopback(host: str) -> None:
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"hostile clients only run against loopback, not {host}")


def _status(data: bytes) -> int:
    """The status code of a response's first line (0 when there is none)."""
    parts = data.split(b"\r\n", 1)[0].split(b" ")
    return int(parts[1]) if len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1].isdigit() else 0


def _read_status(sock: socket.socket, timeout: float) -> int:
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n" not in data and len(data) < 4096:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    return _status(data)


def flood(host: str, port: int, count: int, seconds: float, report: HostileReport) -> None:
    """`count` connections at once, each asking for the stream and reading only the status
    line of the answer (a 503, or a 200 then nothing more), held for `seconds`."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.settimeout(2)
            try:
                s.connect((host, port))
                s.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: x\r\n\r\n")
            except OSError:
                s.close()
                continue
            socks.append(s)
        report.flood_connected = len(socks)
        for s in socks:  # 503s come at once; a served one sends its head (then is never read)
            report.flood_statuses[_read_status(s, 0.05)] += 1
        time.sleep(max(0.0, seconds))
    finally:
        for s in socks:
            s.close()


def slowloris(host: str, port: int, count: int, seconds: float, report: HostileReport) -> None:
    """`count` connections sending their request a byte every 0.5 s, never finishing it."""
    request = b"GET /stream.mjpg HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"z" * 1000
    socks: list[socket.socket] = []
    end = time.monotonic() + seconds
    try:
        for _ in range(count):
            s = socket.socket()
            s.settimeout(2)
            with contextlib.suppress(OSError):
                s.connect((host, port))
                socks.append(s)
        report.slowloris = len(socks)
        i = 0
        while time.monotonic() < end and i < len(request):
            for s in list(socks):
                try:
                    s.send(request[i : i + 1])
                except OSError:  # the server gave up on it (408): open another
                    socks.remove(s)
                    s.close()
                    n = socket.socket()
                    n.settimeout(2)
                    with contextlib.suppress(OSError):
                        n.connect((host, port))
                        socks.append(n)
            i += 1
            time.sleep(0.5)
    finally:
        for s in socks:
            s.close()


def malformed(host: str, port: int, seconds: float, report: HostileReport, rate: float = 20) -> None:
    """The `MALFORMED` requests in turn, `rate` a second, each answer's status recorded."""
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        with socket.socket() as s:
            s.settimeout(2)
            try:
                s.connect((host, port))
                s.sendall(MALFORMED[i % len(MALFORMED)])
                s.shutdown(socket.SHUT_WR)
                report.malformed_statuses[_read_status(s, 4)] += 1
            except OSError:
                report.malformed_statuses[0] += 1
        i += 1
        time.sleep(1 / rate)


def reconnect(host: str, port: int, seconds: float, report: HostileReport, rate: float = 100) -> None:
    """A client reconnecting `rate` times a second for one frame, hanging up mid-response
    every other time (with a reset: SO_LINGER 0)."""
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        t0 = time.monotonic()
        s = socket.socket()
        s.settimeout(2)
        try:
            s.connect((host, port))
            s.sendall(b"GET /frame.jpg HTTP/1.1\r\nHost: x\r\n\r\n")
            if i % 2:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            else:
                report.reconnect_statuses[_read_status(s, 2)] += 1
        except OSError:
            report.reconnect_statuses[0] += 1
        finally:
            s.close()
        report.reconnects += 1
        i += 1
        time.sleep(max(0.0, 1 / rate - (time.monotonic() - t0)))


def watch(host: str, port: int, seconds: float, times: list[float], path: str = "/stream.mjpg") -> None:
    """A normal viewer: read the MJPEG stream for `seconds`, appending the arrival time of
    every whole JPEG to `times`; reconnects if the server answers 503 or hangs up."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        with socket.socket() as s:
            s.settimeout(2)
            try:
                s.connect((host, port))
                s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                buf = b""
                while time.monotonic() < end:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    buf += chunk
                    while (j := buf.find(b"\xff\xd9")) >= 0:
                        times.append(time.monotonic())
                        buf = buf[j + 2 :]
            except OSError:
                pass
        time.sleep(0.1)


def run_hostile(
    host: str,
    port: int,
    seconds: float,
    *,
    flood_count: int = 500,
    slowloris_count: int = 20,
    reconnect_rate: float = 100,
) -> HostileReport:
    """Every kind at once for about `seconds` (each in its own thread), then their report."""
    _loopback(host)
    report = HostileReport()
    kinds = [
        threading.Thread(target=flood, args=(host, port, flood_count, seconds, report)),
        threading.Thread(target=slowloris, args=(host, port, slowloris_count, seconds, report)),
        threading.Thread(target=malformed, args=(host, port, seconds, report)),
        threading.Thread(target=reconnect, args=(host, port, seconds, report, reconnect_rate)),
    ]
    for t in kinds:
        t.start()
    for t in kinds:
        t.join(seconds + 30)
    return report


@dataclass(frozen=True)
class ProcessSample:
    """A process's threads, open descriptors and resident memory at one moment (Linux /proc).

    `names` counts its threads by name (`comm`: "python" for Python's own threads and most
    libraries' pools, FFmpeg names some, "udp-rx" for instance), to tell where threads came from.
    """

    threads: int
    fds: int
    rss_kib: int
    names: Counter[str]


def process_sample(pid: int) -> ProcessSample:
    """`pid`'s threads, descriptors and RSS now.

    Raises:
        OSError: the process has ended (or /proc is not there).
    """
    status = Path(f"/proc/{pid}/status").read_text()
    fds = len(list(Path(f"/proc/{pid}/fd").iterdir()))
    names: Counter[str] = Counter()
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            names[(task / "comm").read_text().strip()] += 1

    def field_(name: str) -> int:
        m = re.search(rf"^{name}:\s+(\d+)", status, re.MULTILINE)
        return int(m.group(1)) if m else 0

    return ProcessSample(field_("Threads"), fds, field_("VmRSS"), names)


@dataclass
class PreviewRun:
    """One `run_preview`: what vsr said and did, what the viewer got, what the clients saw.

    Attributes:
        returncode: vsr's exit status (-9: it did not end in time and was killed).
        stderr: vsr's whole stderr (its log lines and `--stats json` records).
        report: what the hostile clients saw (None in a run without them).
        viewer_frames: the monotonic arrival time of each JPEG the normal viewer got.
        window: monotonic start and end of the hostile clients (or of the quiet stretch that
            stands for them in a run without).
        base: vsr's process before the hostile clients started.
        samples: vsr's process every 0.1 s while they ran.
    """

    returncode: int
    stderr: str
    report: HostileReport | None
    viewer_frames: list[float]
    window: tuple[float, float]
    base: ProcessSample | None
    samples: list[ProcessSample]

    @property
    def done(self) -> dict[str, Any] | None:
        """vsr's final `done` record, or None when it wrote none."""
        records = [json.loads(x) for x in self.stderr.splitlines() if x.startswith('{"event": "done"')]
        return records[-1] if records else None

    @property
    def steady_drop_pct(self) -> float | None:
        """Frames dropped after start-up (vsr's `steady` figure), in percent of those that came."""
        steady = (self.done or {}).get("steady")
        if not steady or not steady["frames_in"]:
            return None
        return 100.0 * float(steady["dropped"]) / float(steady["frames_in"])

    @property
    def viewer_frames_during(self) -> int:
        """JPEGs the normal viewer got while the hostile clients ran."""
        t0, t1 = self.window
        return sum(t0 <= t <= t1 for t in self.viewer_frames)


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_preview(
    *,
    seconds: float = 12,
    hostile: bool = True,
    hostile_seconds: float = 6,
    settle: float = 2.0,
    size: str = "96x64",
    fps: int = 25,
    vsr_args: Sequence[str] = (),
    timeout: float = 60,
) -> PreviewRun:
    """`vsr live --preview --duration seconds` on a real-time UDP stream on loopback, with one
    normal viewer from `settle` s after the preview starts, and the hostile clients (`hostile`)
    or a quiet stretch for `hostile_seconds` from 0.5 s later; vsr's process is sampled before
    and during them.

    Args:
        seconds: vsr's `--duration`.
        hostile: run the hostile clients; False for the baseline run without them.
        hostile_seconds: how long they run (at most `seconds - settle - 1`).
        settle: seconds after the preview starts before the base sample and the viewer.
        size, fps: the sender's picture size ("WxH") and rate.
        vsr_args: more of `vsr live`'s options (`--engine onnxruntime`, `--model M`).
        timeout: seconds vsr may take to end after its duration, before it is killed.
    """
    port = _free_udp_port()
    sender = subprocess.Popen(
        [
            "sh",
            "-c",
            'sleep 1; exec "$0" "$@"',  # vsr binds the port first, as a receiver on a network does
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
    cmd = [sys.executable, "-m", "vsr", "live", f"udp://127.0.0.1:{port}", "--preview", "--preview-port", "0"]
    cmd += ["--duration", str(seconds), "--stats", "json", *vsr_args]
    vsr = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    frames: list[float] = []
    samples: list[ProcessSample] = []
    report = None
    base = None
    window = (0.0, 0.0)
    try:
        assert vsr.stderr is not None
        preview = None
        deadline = time.monotonic() + 60
        while preview is None and time.monotonic() < deadline:
            line = vsr.stderr.readline()
            if not line:
                break
            lines.append(line)
            m = re.search(r"preview at http://127\.0\.0\.1:(\d+)/", line)
            preview = int(m.group(1)) if m else None
        if preview is None:
            vsr.kill()
            return PreviewRun(vsr.wait(), "".join(lines) + vsr.stderr.read(), None, [], window, None, [])
        # the rest of stderr, drained so that vsr never blocks on it
        drain = threading.Thread(target=lambda: lines.extend(vsr.stderr))  # type: ignore[arg-type]
        drain.start()
        time.sleep(settle)
        with contextlib.suppress(OSError):
            base = process_sample(vsr.pid)
        viewer = threading.Thread(target=watch, args=("127.0.0.1", preview, hostile_seconds + 1.5, frames))
        viewer.start()
        time.sleep(0.5)
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                try:
                    samples.append(process_sample(vsr.pid))
                except OSError:
                    return
                done.wait(0.1)

        sampler = threading.Thread(target=sample)
        sampler.start()
        t0 = time.monotonic()
        if hostile:
            report = run_hostile("127.0.0.1", preview, hostile_seconds)
        else:
            time.sleep(hostile_seconds)
        window = (t0, time.monotonic())
        done.set()
        sampler.join()
        viewer.join()
        with contextlib.suppress(subprocess.TimeoutExpired):
            vsr.wait(timeout=seconds + timeout)
        drain.join(30)
    finally:
        if vsr.poll() is None:
            vsr.kill()
            vsr.wait()
        sender.kill()
        sender.wait()
    return PreviewRun(vsr.returncode, "".join(lines), report, frames, window, base, samples)
