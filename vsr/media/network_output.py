"""A network output (udp://, tcp://, rtmp://, srt://, ...) whose receiver may go away.

Used by the sink thread for every packet it writes (`NetworkLink.relay`), and by a thread
of its own ("vsr-output-reconnect") while a lost receiver is being reconnected. Two shapes:

- the network output is the output (`vsr live IN tcp://...`): the encoder belongs to its
  first container; packets go there until it fails, then to a reconnected container;
- the network output mirrors a local recording (`--record rec.mkv`): the recording owns the
  encoder and takes every packet; the network gets a copy of each while it is up.

When the receiver goes away (the write fails with a connection error: EPIPE, ECONNRESET,
...), or stays connected but stops reading (its kernel buffer fills and a write cannot make
progress for `LinkSpec.stall` seconds: FFmpeg's `rw_timeout` on stream protocols, which then
fails the write with ETIMEDOUT), what happens is decided here, once: with `reconnect`
seconds, the output is reopened with back-off while the stream goes on (its packets
meanwhile are not sent; a recording keeps them), and a reopened output starts at a keyframe
that is asked of the encoder at once (`wants_keyframe`); without, or when the receiver does
not come back in time, `OutputLost` ends the run with one line. A recording is then closed
properly by the pipeline (live outputs are kept whatever happened).

A lost connection is severed (`_Destination.sever`: its socket shut down) before its
container is closed. PyAV cannot interrupt an output's writes, and closing a container writes
its trailer (and RTMP's closing messages) while holding the GIL: to a receiver that stopped
reading, each of those writes waited out `rw_timeout`, freezing every thread and making a
`--duration 10` run last 13.2 s (measured, RTMP, `--stall-timeout 1.5`). Once shut down,
those writes fail at once.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import av

from ..errors import EncodeError, reason

log = logging.getLogger(__name__)

#: errno values that mean "the receiver went away" (or the network to it).
GONE = {
    errno.EPIPE,
    errno.ECONNRESET,
    errno.ECONNREFUSED,
    errno.ECONNABORTED,
    errno.ETIMEDOUT,
    errno.ENOTCONN,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.ENETDOWN,
    errno.EIO,
}
#: Seconds one reconnection attempt may take to connect (then it is tried again).
CONNECT_TIMEOUT = 2.0
#: Protocols whose writes wait for the receiver (a byte stream with flow control): a receiver
#: that stops reading blocks them, so they get a write timeout. (UDP never waits for one.)
STREAM_SCHEMES = {"tcp", "rtmp", "rtmps", "rtmpt", "rtmpts", "rtmpe", "rtmpte", "srt", "tls", "unix"}


def with_write_timeout(url: str, options: dict[str, str], stall: float) -> dict[str, str]:
    """`options` for opening a network output at `url`, with FFmpeg's `rw_timeout` (a write
    that cannot progress for `stall` seconds fails with ETIMEDOUT) on stream protocols, unless
    the user gave one."""
    scheme = url.split("://", 1)[0].lower()
    if scheme not in STREAM_SCHEMES or stall <= 0 or "rw_timeout" in options:
        return dict(options)
    return {**options, "rw_timeout": str(round(stall * 1_000_000))}


class OutputLost(EncodeError):
    """A network output's receiver went away and did not come back (exit 1)."""


def receiver_gone(exc: BaseException) -> bool:
    """Whether a write failure means the receiver (or the way to it) went away, rather than
    a packet the muxer refuses."""
    return isinstance(exc, ConnectionError) or getattr(exc, "errno", None) in GONE


@dataclass(frozen=True)
class LinkSpec:
    """Where a network output goes and how long it may be gone.

    Attributes:
        url: the output URL.
        format: its muxer (mpegts, flv, ...).
        options: muxer and protocol options.
        reconnect: seconds to keep reopening it after its receiver went away (0: none).
        recording: the local recording beside it, if any (named in the messages).
        stall: seconds a write may wait for a receiver that stopped reading (stream
            protocols; `with_write_timeout`).
    """

    url: str
    format: str | None
    options: dict[str, str]
    reconnect: float = 0.0
    recording: str | None = None
    stall: float = 5.0


#: Default ports of the stream protocols whose URLs may leave the port out.
_DEFAULT_PORTS = {"rtmp": 1935, "rtmpt": 80, "rtmps": 443, "rtmpts": 443, "rtmpe": 1935, "rtmpte": 80}


def open_fds() -> set[int]:
    """This process's open file descriptors (empty where /proc or /dev/fd is missing), less
    the one this call reads them through (else the next socket opened takes its number, and
    a difference of two calls misses it)."""
    for folder in ("/proc/self/fd", "/dev/fd"):
        try:
            own = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            continue
        try:
            return {int(name) for name in os.listdir(own) if name.isdigit()} - {own}
        finally:
            os.close(own)
    return set()


def receiver_sockets(url: str, fds: set[int]) -> list[int]:
    """Those of `fds` that are TCP connections to `url`'s port: the connection FFmpeg made
    for an output opened while they appeared (or, for the first output, the only one)."""
    parts = urlsplit(url)
    port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())
    if port is None:
        return []
    found = []
    for fd in sorted(fds):
        sock = _socket_on(fd)
        if sock is None:
            continue
        with sock:
            try:
                if sock.type == socket.SOCK_STREAM and sock.getpeername()[1] == port:
                    found.append(fd)
            except (OSError, IndexError, TypeError):  # not connected, or not an inet socket
                continue
    return found


def _socket_on(fd: int) -> socket.socket | None:
    """A socket object on a duplicate of `fd` (closing it leaves FFmpeg's descriptor open),
    or None when `fd` is closed or not a socket (the duplicate is closed again then)."""
    try:
        dup = os.dup(fd)
    except OSError:
        return None
    try:
        return socket.socket(fileno=dup)
    except OSError:
        os.close(dup)
        return None


class _Destination:
    """One opened network container and its streams, by the index of the stream of the
    primary output each mirrors, and the sockets of its connection (`receiver_sockets`)."""

    def __init__(self, container: Any, streams: dict[int, Any], started: bool, sockets: list[int]) -> None:
        self.container = container
        self.streams = streams
        self.started = started  # a reopened one waits for a video keyframe
        self.sockets = sockets

    def sever(self) -> None:
        """Shut the connection down, so that writes to it fail at once instead of waiting for
        a receiver that stopped reading (see the module docstring)."""
        for fd in self.sockets:
            sock = _socket_on(fd)
            if sock is None:
                continue
            with sock, contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.sockets = []

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.container.close()


class NetworkLink:
    """The network side of an output; owned by the sink thread once the run starts.

    Args:
        spec: where it goes and the reconnection budget.
        primary: the output container whose streams the packets belong to (the one with
            the encoder).
        video: the primary's video stream.
        mirror: the network output is a copy beside a recording (`primary` is the
            recording); False: the network output is the primary container itself.
        fds_before: not a mirror: the process's descriptors (`open_fds`) from before the
            primary was opened, so that its connection is the one that appeared since (None:
            not known, and then it cannot be shut down: see the module docstring). A mirror
            is opened here, and its connection found the same way.
    """

    def __init__(
        self,
        spec: LinkSpec,
        primary: Any,
        video: Any,
        *,
        mirror: bool,
        fds_before: set[int] | None = None,
    ) -> None:
        self.spec = spec
        self.primary = primary
        self.video_index = video.index
        self.mirror = mirror
        self.lost_at: float | None = None  # when the receiver went away (None: it is up)
        self.primary_lost = False  # the primary container itself failed (not a mirror)
        self.reconnects = 0
        self.skipped = 0  # packets not sent while the receiver was away
        self._keyframe = False
        self._ready: _Destination | None = None  # a reopened destination, from the thread
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._retired: list[_Destination] = []
        if mirror:
            fds_before = open_fds()
            container = self._connect(timeout=None)
            streams = self._map(container)
        else:
            container, streams = primary, {s.index: s for s in primary.streams}
        # Only descriptors that appeared while it opened: an input from the same server and
        # port (RTMP in and out of one media server) must never be shut down with it.
        sockets = receiver_sockets(spec.url, open_fds() - fds_before) if fds_before is not None else []
        self._dest: _Destination | None = _Destination(container, streams, True, sockets)

    # -- the sink thread --------------------------------------------------------------

    def relay(self, packets: Sequence[Any]) -> list[Any]:
        """Send `packets` (of the primary's streams) to the network; returns those the
        primary container must still take (a mirror's recording: all of them).

        Raises:
            OutputLost: the receiver went away and there is no reconnection (left).
            av.error.FFmpegError: the muxer refused a packet for another reason.
        """
        if not packets:
            return []
        self._check()
        dest = self._dest
        if dest is None:
            self.skipped += len(packets)
            return list(packets) if self.mirror else []
        for pk in packets:
            if not dest.started:
                if pk.stream.index != self.video_index or not pk.is_keyframe:
                    self.skipped += 1
                    continue
                dest.started = True
            target = dest.streams.get(pk.stream.index)
            if target is None:
                continue
            copy = _copy(pk) if self.mirror else pk  # else the primary never takes it
            copy.stream = target
            try:
                dest.container.mux_one(copy)
            except (av.error.FFmpegError, OSError) as exc:
                if not receiver_gone(exc):
                    raise
                self._lost(exc)
                break
        return list(packets) if self.mirror else []

    def wants_keyframe(self) -> bool:
        """Whether the next frame should be a keyframe (a reopened output starts on one);
        asking clears it."""
        if self._keyframe:
            self._keyframe = False
            return True
        return False

    def _check(self) -> None:
        """Take a reopened destination, or give up when the reconnection time is over."""
        if self.lost_at is None:
            return
        with self._lock:
            ready, self._ready = self._ready, None
        if ready is not None:
            away = time.monotonic() - self.lost_at
            log.warning(
                "output %s is back after %.1fs (%d packet(s) not sent meanwhile)",
                self.spec.url,
                away,
                self.skipped,
            )
            self._dest, self.lost_at = ready, None
            self.reconnects += 1
            self._keyframe = True
            return
        if time.monotonic() - self.lost_at >= self.spec.reconnect:
            raise self._gone(f"did not come back within {self.spec.reconnect:g}s")

    def _lost(self, exc: BaseException) -> None:
        """The receiver went away: reconnect in the background, or end the run."""
        why = reason(exc)
        dest = self._dest
        self._dest = None
        if dest is not None:
            dest.sever()
            if dest.container is self.primary:
                self.primary_lost = True  # closed at the end, quietly (it holds the encoder)
            else:
                self._retired.append(dest)
        if self.spec.reconnect <= 0:
            raise self._gone(why, hint=True)
        self.lost_at = time.monotonic()
        self.skipped = 0
        log.warning(
            "output %s went away (%s): reconnecting for up to %gs%s",
            self.spec.url,
            why,
            self.spec.reconnect,
            f"; {self.spec.recording!r} keeps recording" if self.spec.recording else "",
        )
        self._thread = threading.Thread(target=self._reconnect_loop, name="vsr-output-reconnect")
        self._thread.start()

    def _gone(self, why: str, hint: bool = False) -> OutputLost:
        kept = (
            f"; the recording {self.spec.recording!r} is complete up to here" if self.spec.recording else ""
        )
        advice = None
        if hint:
            advice = "pass --output-reconnect S to wait S seconds for it to come back"
            if not self.spec.recording:
                advice += ", and --record FILE to keep a local copy whatever happens"
        return OutputLost(f"output {self.spec.url!r} went away: {why}{kept}", hint=advice)

    # -- the reconnect thread ------------------------------------------------------------

    def _reconnect_loop(self) -> None:
        assert self.lost_at is not None
        deadline = self.lost_at + self.spec.reconnect
        delay = 0.25
        attempt = 0
        while not self._stop.is_set() and time.monotonic() < deadline:
            attempt += 1
            before = open_fds()
            try:
                container = self._connect(timeout=min(CONNECT_TIMEOUT, max(0.1, deadline - time.monotonic())))
            except (av.error.FFmpegError, OSError, ValueError) as exc:
                log.debug("output %s: attempt %d: %s", self.spec.url, attempt, reason(exc))
                self._stop.wait(min(delay, max(0.0, deadline - time.monotonic())))
                delay = min(delay * 2, 2.0)
                continue
            sockets = receiver_sockets(self.spec.url, open_fds() - before)
            dest = _Destination(container, self._map(container), False, sockets)
            with self._lock:
                if self._stop.is_set():
                    dest.close()
                else:
                    self._ready = dest
            return

    def _connect(self, timeout: float | None) -> Any:
        """Open the network container with streams like the primary's and write its header
        (which is when PyAV connects)."""
        spec = self.spec
        kwargs: dict[str, Any] = {} if timeout is None else {"timeout": (timeout, 10.0)}
        options = with_write_timeout(spec.url, spec.options, spec.stall)
        container = av.open(spec.url, "w", format=spec.format, options=options, **kwargs)
        try:
            for stream in self.primary.streams:
                if stream.type == "video" or stream.type == "audio":
                    container.add_stream_from_template(stream)
            container.start_encoding()
        except BaseException:
            with contextlib.suppress(Exception):
                container.close()
            raise
        return container

    def _map(self, container: Any) -> dict[int, Any]:
        """Primary stream index -> the network container's stream that mirrors it."""
        kept = [s for s in self.primary.streams if s.type in ("video", "audio")]
        if not self.mirror and container is self.primary:
            kept = list(self.primary.streams)
        return {p.index: n for p, n in zip(kept, container.streams, strict=False)}

    def close(self) -> None:
        """Stop reconnecting and close the network containers this link opened (not the
        primary: the output closes that)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            ready, self._ready = self._ready, None
        for dest in [self._dest, ready, *self._retired]:
            if dest is not None and dest.container is not self.primary:
                dest.close()
        self._dest = None
        self._retired = []


def _copy(pk: Any) -> Any:
    """A packet's copy, for a second container (muxing takes the packet's data away)."""
    copy = av.Packet(bytes(pk))
    copy.pts, copy.dts, copy.time_base = pk.pts, pk.dts, pk.time_base
    copy.duration = pk.duration
    copy.is_keyframe = pk.is_keyframe
    return copy
