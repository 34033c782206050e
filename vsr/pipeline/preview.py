"""Live preview over HTTP: a page and an MJPEG stream of the newest upscaled frame.

Runs its own server thread ("vsr-preview") plus a pool of worker threads, one per viewer
served at once, at most `HttpLimits.max_clients` of them (`preview_http`: the bounds hostile
clients meet). The sink
only hands over its newest frame (`publish`), which never blocks and never queues: a slow or
absent viewer cannot slow the pipeline. JPEG encoding happens in the viewers' threads, only
for frames someone is watching. Binds to 127.0.0.1 unless told otherwise, so a preview is
not exposed to the network by accident. Works on headless servers (any browser, or curl).
"""

from __future__ import annotations

import logging
import threading
import time
from http import HTTPStatus

import cv2
import numpy as np
import numpy.typing as npt

from ..errors import UsageError
from .preview_http import Connection, Handler, HttpCounters, HttpLimits, HttpServer, Request

log = logging.getLogger(__name__)

PAGE = b"""<!doctype html><html><head><title>vsr live preview</title>
<style>body{margin:0;background:#111;color:#ccc;font:14px sans-serif}img{max-width:100%;display:block}
button{margin:6px;font:inherit}</style></head><body>
<button id="mode" type="button">split view: bicubic | vsr</button><span id="what">vsr</span>
<img id="view" src="/stream.mjpg" alt="vsr live preview">
<script>
const img = document.getElementById("view"), btn = document.getElementById("mode"),
      what = document.getElementById("what");
let split = new URLSearchParams(location.search).get("split") === "1";
function show() {
  img.src = split ? "/split.mjpg" : "/stream.mjpg";
  btn.textContent = split ? "vsr only" : "split view: bicubic | vsr";
  what.textContent = split ? "left: bicubic, right: vsr" : "vsr";
}
btn.onclick = () => { split = !split; show(); };
show();
</script></body></html>"""
BOUNDARY = "vsrframe"


class PreviewServer:
    """Serve `/` (page), `/stream.mjpg` (multipart MJPEG), `/frame.jpg` (newest frame), and
    the split view: `/split.mjpg` and `/split.jpg`, the left half bicubic and the right half
    vsr, of the same frame (the page's toggle switches between them).

    Each frame is JPEG-encoded once, by the first viewer that wants it, and shared with the
    others: more viewers cost sockets, not encodes (CPU the pipeline needs to keep up).

    Args:
        host: address to bind (127.0.0.1 by default: local only).
        port: TCP port; 0 picks a free one (see `url`).
        max_fps: frames per second sent to each viewer at most.
        limits: what clients can make the server hold (viewers at once, request size and
            time, write time); `preview_http.HttpLimits`' defaults when None.

    Raises:
        UsageError: the address cannot be bound.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8080,
        max_fps: float = 15.0,
        limits: HttpLimits | None = None,
    ) -> None:
        self._cond = threading.Condition()
        self._frame: npt.NDArray[np.uint8] | None = None
        self._before: npt.NDArray[np.uint8] | None = None
        self._seq = 0
        self._split_viewers = 0
        self._closed = False
        self._encode_lock = threading.Lock()
        self._encoded: dict[bool, tuple[int, bytes]] = {}  # split? -> (seq, JPEG)
        self.max_fps = max_fps
        try:
            self._server = HttpServer(host, port, _make_handler(self), limits)
        except OSError as exc:
            raise UsageError(
                f"cannot start the preview on {host}:{port}: {exc.strerror or exc}",
                hint="pick another --preview-port",
            ) from exc
        host_, port_ = self._server.address
        self.host, self.port = str(host_), int(port_)
        log.warning("preview at %s", self.url)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    @property
    def counters(self) -> HttpCounters:
        """What the HTTP server did: connections served, turned away, timed out, ..."""
        return self._server.counters

    @property
    def connections(self) -> int:
        """Connections being served now."""
        return self._server.active

    def publish(self, bgr: npt.NDArray[np.uint8], before: npt.NDArray[np.uint8] | None = None) -> None:
        """Offer the newest frame, and its bicubic version for the split view when someone
        watches that (`split_viewers`); called by the compose stage, never blocks."""
        with self._cond:
            self._frame = bgr
            self._before = before
            self._seq += 1
            self._cond.notify_all()

    @property
    def split_viewers(self) -> int:
        """How many viewers watch the split view (the bicubic half is only made for them)."""
        return self._split_viewers

    def _watch_split(self, delta: int) -> None:
        with self._cond:
            self._split_viewers += delta

    def latest_split(self) -> npt.NDArray[np.uint8] | None:
        with self._cond:
            return split_view(self._before, self._frame)

    @property
    def closed(self) -> bool:
        return self._closed

    def latest(self) -> npt.NDArray[np.uint8] | None:
        with self._cond:
            return self._frame

    def newest(self, split: bool = False) -> tuple[int, npt.NDArray[np.uint8] | None]:
        """The newest frame (or split view) with its sequence number, without waiting."""
        with self._cond:
            return self._seq, split_view(self._before, self._frame) if split else self._frame

    def wait_frame(
        self, after: int, timeout: float, split: bool = False
    ) -> tuple[int, npt.NDArray[np.uint8] | None]:
        """The next frame newer than sequence number `after` (or None on timeout/close); with
        `split`, the split view of it (None while no bicubic half has arrived yet)."""
        with self._cond:
            self._cond.wait_for(lambda: self._seq > after or self._closed, timeout)
            if self._closed or self._seq <= after:
                return after, None
            return self._seq, split_view(self._before, self._frame) if split else self._frame

    def jpeg(self, seq: int, frame: npt.NDArray[np.uint8], split: bool = False) -> bytes:
        """`frame` (sequence number `seq`) as JPEG, encoded once for every viewer."""
        with self._encode_lock:
            cached = self._encoded.get(split)
            if cached is not None and cached[0] == seq:
                return cached[1]
            data = _jpeg(frame)
            self._encoded[split] = (seq, data)
            return data

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._server.close()


def split_view(
    before: npt.NDArray[np.uint8] | None, after: npt.NDArray[np.uint8] | None
) -> npt.NDArray[np.uint8] | None:
    """The left half of `before` (bicubic) and the right half of `after` (vsr), one picture,
    with a thin line where they meet: the same place in both, so the eye compares like with
    like."""
    if before is None or after is None or before.shape != after.shape:
        return None
    out = after.copy()
    w = out.shape[1]
    out[:, : w // 2] = before[:, : w // 2]
    out[:, w // 2 - 1 : w // 2 + 1] = (0, 215, 255)
    return out


def _jpeg(bgr: npt.NDArray[np.uint8]) -> bytes:
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return buf.tobytes() if ok else b""


def _make_handler(server: PreviewServer) -> Handler:
    def single(conn: Connection, head_only: bool, split: bool) -> None:
        """One JPEG: the newest frame, or (split) the newest split view, waiting up to 5 s
        for the first bicubic half to be made once someone asks for it."""
        if split:
            server._watch_split(1)  # the next frames carry a bicubic half
            try:
                deadline = time.monotonic() + 5
                seq, frame = server.newest(split=True)
                while frame is None and time.monotonic() < deadline and not server.closed:
                    server.wait_frame(0, timeout=0.5)
                    seq, frame = server.newest(split=True)
            finally:
                server._watch_split(-1)
        else:
            seq, frame = server.newest()
        if frame is None:
            conn.respond(HTTPStatus.SERVICE_UNAVAILABLE, "text/plain", b"no frame yet\n", head_only=head_only)
        else:
            conn.respond(HTTPStatus.OK, "image/jpeg", server.jpeg(seq, frame, split), head_only=head_only)

    def stream(conn: Connection, head_only: bool, split: bool) -> None:
        conn.send_head(HTTPStatus.OK, f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        if head_only:
            return
        seq = 0
        min_gap = 1.0 / server.max_fps
        last = 0.0
        while True:
            seq, frame = server.wait_frame(seq, timeout=1.0, split=split)
            if frame is None:
                if server.closed:
                    return
                continue
            now = time.monotonic()
            if now - last < min_gap:
                time.sleep(min_gap - (now - last))
            last = time.monotonic()
            data = server.jpeg(seq, frame, split)
            conn.send(
                f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n\r\n".encode()
                + data
                + b"\r\n"
            )

    def handle(conn: Connection, request: Request) -> None:
        head_only = request.method == "HEAD"
        path = request.path
        if path == "/":
            conn.respond(HTTPStatus.OK, "text/html; charset=utf-8", PAGE, head_only=head_only)
        elif path in ("/frame.jpg", "/split.jpg"):
            single(conn, head_only, split=path == "/split.jpg")
        elif path == "/stream.mjpg":
            stream(conn, head_only, split=False)
        elif path == "/split.mjpg":
            server._watch_split(1)
            try:
                stream(conn, head_only, split=True)
            finally:
                server._watch_split(-1)
        else:
            conn.respond(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n", head_only=head_only)

    return handle
