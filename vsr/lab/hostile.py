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

Everything here refuses non-loopback hosts: it is a test tool, not a load generator.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

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
