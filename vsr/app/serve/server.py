"""`vsr serve`: the HTTP server (uvicorn) around one `Service`, and how it stops.

Limits a stranger cannot lift: at most `max_connections` open connections (more are closed
as they arrive), a request's head must arrive within `--header-timeout` seconds (a
slowloris client is cut off), bodies are capped (`BodyLimit`), an idle keep-alive connection
closes after 5 s, and at most `max_connections` requests run at once (uvicorn answers 503
beyond that).

Stopping: the first SIGTERM or SIGINT stops taking jobs (`/readyz` turns 503, a submit is a
503), lets the running jobs finish for up to `--grace` seconds while the API still answers,
puts the rest back in the queue, and then stops the server: exit status 0. A second signal
skips the wait (the running jobs are queued again at once).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
import threading
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from ...errors import UsageError
from .api import BodyLimit, create_app
from .service import ServeOptions, Service

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(options: ServeOptions) -> None:
    """A service reachable from other machines must have a token.

    Raises:
        UsageError: a non-loopback --host without --token-file or VSR_TOKEN.
    """
    if not is_loopback(options.host) and not options.token:
        raise UsageError(
            f"--host {options.host} would let anyone on the network run jobs: refusing without a token",
            hint="pass --token-file PATH or set VSR_TOKEN, or listen on 127.0.0.1",
        )


def _guarded_protocol(max_connections: int, header_timeout: float) -> type[H11Protocol]:
    class GuardedH11Protocol(H11Protocol):
        """uvicorn's HTTP/1.1 protocol with a connection cap and a deadline for the request head."""

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # as H11Protocol's own
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                transport.close()
                return
            self._head_timer = self.loop.call_later(header_timeout, self._head_deadline)

        def _head_deadline(self) -> None:
            if self.cycle is None and not self.transport.is_closing():
                self.transport.close()  # no whole request head in time: slowloris

        def connection_lost(self, exc: Exception | None) -> None:
            timer = getattr(self, "_head_timer", None)
            if timer is not None:
                timer.cancel()
            super().connection_lost(exc)

    return GuardedH11Protocol


class _Server(uvicorn.Server):
    """uvicorn's server, with vsr's drain on the first signal."""

    def __init__(self, config: uvicorn.Config, service: Service) -> None:
        super().__init__(config)
        self.service = service
        self._draining: threading.Thread | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Not uvicorn's: it would stop the server at once, and re-raise the signal after
        # shutdown (exit 143); a drained service exits 0.
        if self._draining is None:
            log.warning("received %s", signal.Signals(sig).name)
            self._draining = threading.Thread(target=self._drain, name="vsr-drain", daemon=True)
            self._draining.start()
        else:
            log.warning("second signal: queueing the running jobs again now")
            self.service.runner.drain(0)
            self.should_exit = True

    def _drain(self) -> None:
        try:
            self.service.drain()
        finally:
            self.should_exit = True


def serve(options: ServeOptions) -> int:
    """Run the service until a signal stops it; returns the exit status (0 after a drain)."""
    check_exposure(options)
    service = Service(options)
    try:
        service.start()
        app: Any = BodyLimit(create_app(service), options.max_body)
        config = uvicorn.Config(
            app,
            host=options.host,
            port=options.port,
            log_config=None,
            access_log=False,
            http=_guarded_protocol(options.max_connections, options.header_timeout),
            limit_concurrency=options.max_connections,
            timeout_keep_alive=5,
            timeout_graceful_shutdown=5,
            lifespan="off",
            server_header=False,
        )
        server = _Server(config, service)
        log.warning(
            "serving %s on http://%s:%d/ (%d job%s at once%s)",
            options.root,
            options.host,
            server.config.port,
            options.jobs,
            "" if options.jobs == 1 else "s",
            ", token required" if options.token else "",
        )
        server.run()
        if not server.started:
            raise UsageError(
                f"cannot listen on {options.host}:{options.port}",
                hint="is another service on that port? pick another with --port",
            )
        return 0
    finally:
        if service.runner.accepting:  # stopped by something other than a signal
            service.runner.drain(0)
        service.close()
