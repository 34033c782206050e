"""The live preview's HTTP server: a small, bounded one that hostile clients cannot wear down.

Runs an accept thread ("vsr-preview") and a pool of at most `HttpLimits.max_clients` worker
threads ("vsr-preview-client"), started as connections need them and kept until the server
closes: each serves one connection at a time, then takes the next. Why not `http.server`: it
printed a traceback for every viewer that left mid-response (660 in 9 s of hostile clients),
it accepts any number of connections (one thread and descriptor each), and it waits forever
for a request that never finishes (slowloris). Why a pool, not a thread per connection:
under the hostile clients the process once grew from 31 to 300+ threads with a thread per
connection, whose bound counted only the threads still serving (a connection's slot was freed
a moment before its thread ended). That growth was never seen again: 2026-12-08, quiet, the
hostile run (`vsr.lab.hostile.run_preview`) five times against each server, on onnxruntime and
on OpenVINO, stayed at 15-17 -> 47-49 threads with both. Whatever its cause, a pool's bound
holds by construction: a thread that is never started cannot pile up. Here everything a
client can make the server hold is bounded:

- connections served at once (`HttpLimits.max_clients`), and so the worker threads; the ones
  beyond are answered 503 by the accept thread itself, without a thread of their own
  (`_Lingering`);
- the request: its size (`request_bytes`) and the time to send all of it (`request_seconds`,
  whatever the pace of its bytes); past either, 431 or 408 and the connection closes;
- each response write (`send_seconds`): a viewer that stops reading is let go, and the kernel
  buffer it can fill is small (`send_buffer`);
- one request per connection (`Connection: close`): no keep-alive to hold.

A client that goes away is routine (`ClientGone`), logged at debug level only. Malformed
requests get a 400, other methods than GET/HEAD a 405.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import cast

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HttpLimits:
    """What one client, and all of them together, can make the preview hold.

    Attributes:
        max_clients: connections served at once (viewers and requests still arriving).
        request_bytes: the most a request (its line and headers) may be.
        request_seconds: time a client has to send its whole request (slowloris bound).
        send_seconds: time one response write may take before the viewer is let go.
        send_buffer: the socket's kernel send buffer (SO_SNDBUF), bytes.
        backlog: connections the kernel queues before the accept thread takes them.
    """

    max_clients: int = 32
    request_bytes: int = 8192
    request_seconds: float = 3.0
    send_seconds: float = 5.0
    send_buffer: int = 256 * 1024
    backlog: int = 128


@dataclass(frozen=True)
class Request:
    """A parsed request: its method and target path (the query string apart)."""

    method: str
    path: str
    query: str


class ClientGone(Exception):
    """The client closed, reset, or stopped reading its connection."""


class HttpError(Exception):
    """A request the server refuses, with the status and one line of text to answer."""

    def __init__(self, status: HTTPStatus, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


@dataclass
class HttpCounters:
    """What the server did, for tests and benchmarks (written under the server's lock)."""

    served: int = 0  # connections admitted (given to a worker thread)
    rejected: int = 0  # turned away with 503 (too many at once)
    bad: int = 0  # malformed or oversized requests (400/405/431)
    timed_out: int = 0  # requests not sent in time (408), viewers that stopped reading
    gone: int = 0  # clients that left mid-response
    peak: int = 0  # most connections served at once
    workers: int = 0  # worker threads started (at most max_clients, reused)
    status: dict[int, int] = field(default_factory=dict)  # responses sent, by status


class Connection:
    """One client's socket, owned by its thread: bounded reads and writes.

    Raises ClientGone from `send` (and `read_request`) when the client left or stopped
    reading."""

    def __init__(self, sock: socket.socket, limits: HttpLimits) -> None:
        self.sock = sock
        self.limits = limits
        self.status: int | None = None

    def read_request(self) -> Request:
        """Read and parse one request within the size and time limits.

        Raises:
            HttpError: malformed (400), too large (431), not in time (408), wrong method (405).
            ClientGone: the client closed before sending a whole request.
        """
        deadline = time.monotonic() + self.limits.request_seconds
        data = b""
        while b"\r\n\r\n" not in data and b"\n\n" not in data:
            if len(data) > self.limits.request_bytes:
                raise HttpError(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "request too large")
            left = deadline - time.monotonic()
            if left <= 0:
                raise HttpError(HTTPStatus.REQUEST_TIMEOUT, "request not sent in time")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(4096)
            except TimeoutError:
                raise HttpError(HTTPStatus.REQUEST_TIMEOUT, "request not sent in time") from None
            except OSError as exc:
                raise ClientGone(str(exc)) from exc
            if not chunk:
                raise ClientGone("closed before its request ended")
            data += chunk
        head = data.split(b"\r\n\r\n" if b"\r\n\r\n" in data else b"\n\n", 1)[0]
        if len(head) > self.limits.request_bytes:
            raise HttpError(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "request too large")
        return parse_request(head)

    def send(self, data: bytes) -> None:
        """Write all of `data` within `send_seconds`, or raise ClientGone."""
        self.sock.settimeout(self.limits.send_seconds)
        try:
            self.sock.sendall(data)
        except TimeoutError as exc:
            raise ClientGone("stopped reading") from exc
        except OSError as exc:  # BrokenPipeError, ConnectionResetError, ...
            raise ClientGone(str(exc)) from exc

    def respond(
        self,
        status: HTTPStatus,
        ctype: str,
        body: bytes,
        *,
        head_only: bool = False,
        extra: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """A whole response with a body of known length."""
        self.send_head(status, ctype, (("Content-Length", str(len(body))), *extra))
        if not head_only:
            self.send(body)

    def send_head(self, status: HTTPStatus, ctype: str, extra: tuple[tuple[str, str], ...] = ()) -> None:
        self.status = int(status)
        self.send(response_head(status, ctype, extra))


def response_head(status: HTTPStatus, ctype: str, extra: tuple[tuple[str, str], ...] = ()) -> bytes:
    lines = [
        f"HTTP/1.1 {int(status)} {status.phrase}",
        f"Content-Type: {ctype}",
        "Cache-Control: no-store",
        "Connection: close",
        *(f"{k}: {v}" for k, v in extra),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def error_response(status: HTTPStatus, text: str) -> bytes:
    body = f"{int(status)} {status.phrase}: {text}\n".encode("latin-1", "replace")
    return response_head(status, "text/plain; charset=utf-8", (("Content-Length", str(len(body))),)) + body


_TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def parse_request(head: bytes) -> Request:
    """The request line and header lines of one request (without the blank line).

    Raises:
        HttpError: 400 for anything that is not `METHOD /path HTTP/1.x` followed by
            `Name: value` lines; 405 for methods other than GET and HEAD.
    """
    lines = head.replace(b"\r\n", b"\n").split(b"\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not parts[0] or not set(parts[0]) <= _TOKEN:
        raise HttpError(HTTPStatus.BAD_REQUEST, "malformed request line")
    method, target, version = parts
    if version not in (b"HTTP/1.0", b"HTTP/1.1"):
        raise HttpError(HTTPStatus.BAD_REQUEST, "unsupported HTTP version")
    if not target.startswith(b"/") or any(c < 0x21 or c > 0x7E for c in target):
        raise HttpError(HTTPStatus.BAD_REQUEST, "malformed request target")
    for line in lines[1:]:
        name, colon, _ = line.partition(b":")
        if not colon or not name or not set(name) <= _TOKEN:
            raise HttpError(HTTPStatus.BAD_REQUEST, "malformed header line")
    if method not in (b"GET", b"HEAD"):
        raise HttpError(HTTPStatus.METHOD_NOT_ALLOWED, "only GET and HEAD")
    path, _, query = target.decode("ascii").partition("?")
    return Request(method.decode("ascii"), path, query)


Handler = Callable[[Connection, Request], None]


class HttpServer:
    """Accept connections on `host:port` and run `handler(connection, request)` for each, in
    one of at most `limits.max_clients` worker threads, within `limits`.

    Raises:
        OSError: the address cannot be bound (the caller turns it into a usage error).
    """

    def __init__(self, host: str, port: int, handler: Handler, limits: HttpLimits | None = None) -> None:
        self.limits = limits or HttpLimits()
        self.handler = handler
        self.counters = HttpCounters()
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._active: set[socket.socket] = set()  # admitted: being served, or waiting for a worker
        self._waiting: collections.deque[socket.socket] = collections.deque()
        self._workers: list[threading.Thread] = []
        self._idle = 0  # workers waiting for a connection
        self._closed = threading.Event()
        self._warned = False
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._listener.bind((host, port))
            self._listener.listen(self.limits.backlog)
            self._listener.setblocking(False)
        except OSError:
            self._listener.close()
            raise
        self.address = self._listener.getsockname()[:2]
        self._thread = threading.Thread(target=self._accept_loop, name="vsr-preview")
        self._thread.start()

    @property
    def active(self) -> int:
        """Connections being served now."""
        with self._lock:
            return len(self._active)

    def _accept_loop(self) -> None:
        """Accept, admit or turn away; and finish turning away (`_Lingering`) in between."""
        lingering = _Lingering()
        with selectors.DefaultSelector() as sel:
            sel.register(self._listener, selectors.EVENT_READ)
            try:
                while not self._closed.is_set():
                    for key, _ in sel.select(timeout=0.1):
                        if key.fileobj is self._listener:
                            self._accept(sel, lingering)
                        else:
                            lingering.read(sel, cast(socket.socket, key.fileobj))  # only sockets registered
                    lingering.expire(sel)
            finally:
                lingering.close_all(sel)

    def _accept(self, sel: selectors.BaseSelector, lingering: _Lingering) -> None:
        try:
            sock, _ = self._listener.accept()
        except (BlockingIOError, TimeoutError):
            return
        except OSError as exc:  # out of descriptors for a moment, say
            log.debug("preview: accept failed: %s", exc)
            self._closed.wait(0.05)
            return
        if self._admit(sock):
            return
        if not self._warned:
            self._warned = True
            log.warning(
                "preview: more than %d viewers at once; turning the others away (503)",
                self.limits.max_clients,
            )
        lingering.add(sel, sock, _BUSY)

    def _admit(self, sock: socket.socket) -> bool:
        """Hand `sock` to a worker (an idle one, or a new one while fewer than max_clients
        exist); False when the server is full."""
        sock.setblocking(True)
        with self._lock:
            if len(self._active) >= self.limits.max_clients or self._closed.is_set():
                self.counters.rejected += 1
                self._count(int(HTTPStatus.SERVICE_UNAVAILABLE))
                sock.setblocking(False)
                return False
            self._active.add(sock)
            self._waiting.append(sock)
            self.counters.served += 1
            self.counters.peak = max(self.counters.peak, len(self._active))
            self._work.notify()
            # A new worker only while fewer than max_clients exist (the bound, whatever the
            # timing) and fewer are idle than connections wait. None is needed beyond: with
            # max_clients workers, each admitted connection has one, free now or at its end.
            if len(self._workers) >= self.limits.max_clients or self._idle >= len(self._waiting):
                return True
            thread = threading.Thread(target=self._worker, name="vsr-preview-client")
            self._workers.append(thread)
            self.counters.workers += 1
        try:
            thread.start()
        except RuntimeError as exc:  # "can't start new thread": the others serve it, or none can
            log.debug("preview: cannot start a worker: %s", exc)
            with self._lock:
                self._workers.remove(thread)
                if not self._workers:
                    self._waiting.remove(sock)
                    self._active.discard(sock)
                    _close(sock)
        return True

    def _worker(self) -> None:
        """Serve admitted connections one after the other until the server closes."""
        while True:
            with self._lock:
                self._idle += 1
                try:
                    self._work.wait_for(lambda: self._waiting or self._closed.is_set())
                finally:
                    self._idle -= 1
                if not self._waiting:  # closed
                    return
                sock = self._waiting.popleft()
            self._serve(sock)

    def _count(self, status: int) -> None:
        self.counters.status[status] = self.counters.status.get(status, 0) + 1

    def _serve(self, sock: socket.socket) -> None:
        conn = Connection(sock, self.limits)
        try:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.limits.send_buffer)
            try:
                request = conn.read_request()
            except HttpError as exc:
                with self._lock:
                    if exc.status == HTTPStatus.REQUEST_TIMEOUT:
                        self.counters.timed_out += 1
                    else:
                        self.counters.bad += 1
                conn.status = int(exc.status)
                with contextlib.suppress(ClientGone):
                    conn.send(error_response(exc.status, exc.text))
                _drain(sock)
                return
            self.handler(conn, request)
        except ClientGone as exc:
            with self._lock:
                if "stopped reading" in str(exc):
                    self.counters.timed_out += 1
                else:
                    self.counters.gone += 1
            log.debug("preview: a viewer left: %s", exc)
        except Exception:  # a bug in a handler must not end the run, nor stay silent
            log.exception("preview: serving a request failed")
        finally:
            with self._lock:
                self._active.discard(sock)
                if conn.status is not None:
                    self._count(conn.status)
            _close(sock)

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self, timeout: float = 5.0) -> None:
        """Stop accepting, end every connection (their blocked reads and writes return at
        once) and wait for their threads."""
        self._closed.set()
        self._thread.join()
        self._listener.close()
        with self._lock:
            while self._waiting:  # admitted, not yet served: closed unserved
                sock = self._waiting.popleft()
                self._active.discard(sock)
                _close(sock)
            active = list(self._active)
            self._work.notify_all()
            workers = list(self._workers)
        for sock in active:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for thread in workers:
            thread.join(max(0.0, deadline - time.monotonic()))


_BUSY = error_response(HTTPStatus.SERVICE_UNAVAILABLE, "too many viewers; try again later")


class _Lingering:
    """Connections turned away, finished by the accept thread without a thread each: the
    answer is sent at once (non-blocking: a small one always fits the empty send buffer),
    then what the client still sends is read and dropped until it closes, for at most
    `seconds` and `limit` bytes. Why: closing with unread data resets the connection, and a
    reset can destroy the answer before the client reads it (20 of 115 turned-away requests
    saw no answer before this). At most `most` at once; beyond that, closed at once."""

    def __init__(self, seconds: float = 0.5, limit: int = 65536, most: int = 64) -> None:
        self.seconds, self.limit, self.most = seconds, limit, most
        self._socks: dict[socket.socket, tuple[float, int]] = {}  # -> (deadline, bytes left)

    def add(self, sel: selectors.BaseSelector, sock: socket.socket, answer: bytes) -> None:
        try:
            sock.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                sock.recv(self.limit)
            sock.send(answer)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            _close(sock)
            return
        if len(self._socks) >= self.most:
            _close(sock)
            return
        self._socks[sock] = (time.monotonic() + self.seconds, self.limit)
        sel.register(sock, selectors.EVENT_READ)

    def read(self, sel: selectors.BaseSelector, sock: socket.socket) -> None:
        deadline, left = self._socks[sock]
        try:
            chunk = sock.recv(min(left, 16384))
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk or len(chunk) >= left:
            self._drop(sel, sock)
        else:
            self._socks[sock] = (deadline, left - len(chunk))

    def expire(self, sel: selectors.BaseSelector) -> None:
        now = time.monotonic()
        for sock in [s for s, (deadline, _) in self._socks.items() if deadline <= now]:
            self._drop(sel, sock)

    def close_all(self, sel: selectors.BaseSelector) -> None:
        for sock in list(self._socks):
            self._drop(sel, sock)

    def _drop(self, sel: selectors.BaseSelector, sock: socket.socket) -> None:
        with contextlib.suppress(KeyError, ValueError):
            sel.unregister(sock)
        self._socks.pop(sock, None)
        _close(sock)


def _drain(sock: socket.socket, seconds: float = 0.5, limit: int = 65536) -> None:
    """Read (a bounded amount of) what the client is still sending before closing: a close
    with unread data resets the connection, which can destroy the error answer before the
    client reads it."""
    try:
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(seconds)
        deadline = time.monotonic() + seconds
        while limit > 0 and time.monotonic() < deadline:
            chunk = sock.recv(min(limit, 16384))
            if not chunk:
                return
            limit -= len(chunk)
    except OSError:
        pass


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()
