"""The live preview under hostile clients on loopback: viewers that leave, too many viewers,
slow readers, slowloris, malformed requests and a client reconnecting 100 times a second.
Nothing prints a traceback, memory and descriptors stay bounded, a normal viewer still gets
frames, and the pipeline keeps up. (The drop rate against a run without hostile clients,
side by side: scripts/bench/bench_preview_hostile.py.)"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path

import numpy as np
import pytest
from test_live import free_port, start_sender, start_vsr

from vsr.lab.hostile import run_hostile, watch
from vsr.pipeline.preview import PreviewServer
from vsr.pipeline.preview_http import HttpError, HttpLimits, parse_request


def _status(sock: socket.socket, timeout: float = 5) -> int:
    sock.settimeout(timeout)
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    parts = data.split(b" ")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def _request(port: int, raw: bytes) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(raw)
        return _status(s)


@pytest.fixture
def preview() -> Iterator[PreviewServer]:
    """A preview with small limits, fed a new 48x64 frame every 20 ms by a thread."""
    server = PreviewServer(
        port=0,
        max_fps=50,
        limits=HttpLimits(max_clients=4, request_seconds=0.5, send_seconds=0.5, send_buffer=4096),
    )
    stop = threading.Event()

    def feed() -> None:
        rng = np.random.default_rng(0)
        while not stop.is_set():
            server.publish(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
            stop.wait(0.02)

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        yield server
    finally:
        stop.set()
        feeder.join()
        server.close()


def test_malformed_requests_are_refused_with_a_4xx_status() -> None:
    """Anything but `GET|HEAD /path HTTP/1.x` with `Name: value` headers is a 400 (a 405 for
    other methods), never an exception of another kind."""
    for head, status in [
        (b"garbage", 400),
        (b"GET /", 400),
        (b"GET / HTTP/2.0", 400),
        (b"GET x HTTP/1.1", 400),
        (b"GET / HTTP/1.1\r\nno colon", 400),
        (b"G\x00T / HTTP/1.1", 400),
        (b"POST / HTTP/1.1", 405),
    ]:
        with pytest.raises(HttpError) as info:
            parse_request(head)
        assert info.value.status == status, head
    req = parse_request(b"GET /frame.jpg?x=1 HTTP/1.1\r\nHost: a")
    assert (req.method, req.path, req.query) == ("GET", "/frame.jpg", "x=1")


def test_preview_caps_viewers_with_503_and_times_out_slow_clients(preview: PreviewServer) -> None:
    """Beyond max_clients connections the preview answers 503; a request never finished gets
    a 408 after request_seconds; a viewer that stops reading is let go after send_seconds;
    malformed and oversized requests get 400/431 on their own connection."""
    port = preview.port
    assert _request(port, b"GET /nothing HTTP/1.1\r\n\r\n") == HTTPStatus.NOT_FOUND
    assert _request(port, b"BREW / HTTP/1.1\r\n\r\n") == HTTPStatus.METHOD_NOT_ALLOWED
    assert _request(port, b"GET / HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n") == 431
    assert _idle(preview)
    slow = []
    for _ in range(4):  # the cap: four slowloris requests hold every slot
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET / HTTP/1.1\r\n")
        slow.append(s)
    time.sleep(0.1)
    assert _request(port, b"GET / HTTP/1.1\r\n\r\n") == HTTPStatus.SERVICE_UNAVAILABLE
    assert [_status(s) for s in slow] == [HTTPStatus.REQUEST_TIMEOUT] * 4
    for s in slow:
        s.close()
    assert _idle(preview)
    # a slow reader: asks for the stream, never reads; the server lets it go
    reader = socket.create_connection(("127.0.0.1", port), timeout=5)
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    reader.sendall(b"GET /stream.mjpg HTTP/1.1\r\n\r\n")
    assert _status(reader) == HTTPStatus.OK  # served, then never read again
    assert _idle(preview) and preview.counters.timed_out >= 5
    reader.close()
    assert _request(port, b"GET /frame.jpg HTTP/1.1\r\n\r\n") == HTTPStatus.OK


def test_viewers_that_leave_mid_response_are_routine(
    preview: PreviewServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Viewers hanging up (closing or resetting) mid-stream or mid-frame log nothing above
    debug level and leave no connection behind."""
    caplog.set_level(logging.DEBUG, logger="vsr")
    for i in range(40):
        while preview.connections >= 3:  # below the cap: this is about leaving, not crowding
            time.sleep(0.01)
        s = socket.create_connection(("127.0.0.1", preview.port), timeout=5)
        s.sendall(b"GET /stream.mjpg HTTP/1.1\r\n\r\n" if i % 2 else b"GET /frame.jpg HTTP/1.1\r\n\r\n")
        s.recv(100)
        if i % 3 == 0:  # a reset rather than a close
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
    assert _idle(preview)
    assert not [r for r in caplog.records if r.levelno > logging.DEBUG]
    assert not [r for r in caplog.records if r.exc_info]


def _idle(preview: PreviewServer, timeout: float = 10) -> bool:
    """Wait until the preview serves no connection."""
    deadline = time.monotonic() + timeout
    while preview.connections and time.monotonic() < deadline:
        time.sleep(0.02)
    return preview.connections == 0


def _fds_threads(pid: int) -> tuple[int, int]:
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    status = Path(f"/proc/{pid}/status").read_text()
    m = re.search(r"^Threads:\s+(\d+)", status, re.MULTILINE)
    assert m is not None, status
    threads = int(m.group(1))
    return fds, threads


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc")
@pytest.mark.xfail(
    reason="open bug (#33): on a quiet 2-core machine the vsr process's threads grow "
    "to 300+ under the hostile clients (31 before), past the 32-viewer cap; "
    "under heavy load it passed. Kept running so the figures show.",
    strict=False,
)
def test_live_preview_survives_hostile_clients(tmp_path: Path) -> None:
    """While `vsr live --preview` runs in real time, 500 concurrent connections, slow readers,
    slowloris, malformed requests and a client reconnecting 100 times a second: no traceback,
    descriptors and threads stay within the viewer cap, a normal viewer keeps getting JPEG
    frames, and the pipeline keeps up (within a loose bound here; the side-by-side drop rate
    is the benchmark's)."""
    port = free_port()
    sender = start_sender(port, 16)
    # onnxruntime: the threads and descriptors counted are the preview's, not an engine
    # pool's (OpenVINO's grew by hundreds of threads on a quiet run)
    vsr = start_vsr(
        f"udp://127.0.0.1:{port}",
        "--preview",
        "--preview-port",
        "0",
        "--duration",
        "12",
        "--stats",
        "json",
        "--engine",
        "onnxruntime",
    )
    try:
        assert vsr.stderr is not None
        preview_port = None
        deadline = time.monotonic() + 30
        while preview_port is None and time.monotonic() < deadline:
            m = re.search(r"preview at http://127\.0\.0\.1:(\d+)/", vsr.stderr.readline())
            preview_port = int(m.group(1)) if m else None
        assert preview_port, "no preview URL logged"
        lines: list[str] = []  # the rest of stderr, drained so that vsr never blocks on it
        stderr = vsr.stderr
        drain = threading.Thread(target=lambda: lines.extend(stderr))
        drain.start()
        time.sleep(1.5)
        base_fds, base_threads = _fds_threads(vsr.pid)
        frames: list[float] = []
        viewer = threading.Thread(target=watch, args=("127.0.0.1", preview_port, 8, frames))
        viewer.start()
        time.sleep(0.5)
        samples: list[tuple[int, int]] = []
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                try:
                    samples.append(_fds_threads(vsr.pid))
                except (OSError, AttributeError):
                    return
                done.wait(0.1)

        sampler = threading.Thread(target=sample)
        sampler.start()
        t0 = time.monotonic()
        report = run_hostile("127.0.0.1", preview_port, 6)
        t1 = time.monotonic()
        done.set()
        sampler.join()
        viewer.join()
        rc = vsr.wait(timeout=60)
        drain.join(30)
    finally:
        if vsr.poll() is None:
            vsr.kill()
        sender.kill()
        sender.wait()
    err = "".join(lines)
    assert rc == 0, err
    assert "Traceback" not in err and "Exception" not in err, err
    # the hostile clients got answers, and the over-cap ones a 503
    assert report.flood_connected == 500 and report.flood_statuses[503] >= 400, report
    assert set(report.malformed_statuses) <= {0, 400, 404, 405, 431, 503}, report
    # (no answer only when more than 64 turned-away connections were closing at once)
    assert report.malformed_statuses[0] <= 0.1 * report.malformed_statuses.total(), report
    assert report.reconnects >= 300, report
    # bounded: at most the viewer cap (32) more threads and descriptors than before, plus the
    # turned-away connections being closed (64 at most)
    assert max(t for _, t in samples) <= base_threads + 32 + 2, (base_threads, samples)
    assert max(f for f, _ in samples) <= base_fds + 32 + 64 + 4, (base_fds, samples)
    # the normal viewer kept getting frames while it all went on (15 fps at most)
    during = [t for t in frames if t0 <= t <= t1]
    assert len(during) >= 3 * (t1 - t0), (len(during), t1 - t0)
    done_rec = [json.loads(x) for x in lines if x.startswith('{"event": "done"')][-1]
    steady = done_rec["steady"]
    assert steady is not None and steady["frames_in"] > 100
    assert steady["dropped"] / steady["frames_in"] <= 0.10, done_rec  # 0 here on a quiet host
