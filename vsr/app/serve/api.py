"""The job service's HTTP API (FastAPI): routes, the token, limits, and errors as one line.

Every error a client can cause is a JSON object `{"error": "...", "hint": "..."}` with a
4xx status: the exception's own message, the same line the CLI prints. Nothing a client
sends produces a traceback in a response; an unexpected failure is a 500 that says only
"internal error" (the log has the rest).

Status codes: 400 malformed JSON; 401 no or wrong token; 403 a path or URL the service does
not allow; 404 no such job; 409 the output is busy or exists, or the job is not in a state
for this; 413 body too large; 422 a bad option or field; 503 stopping, not ready, queue full.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ...errors import VsrError
from ...version import __version__
from .confine import Refused
from .page import compare_page, index_page
from .service import Conflict, Draining, NotFound, QueueFull, Service
from .store import OutputBusy, Status

log = logging.getLogger(__name__)

#: Exception types and the status each maps to (first match wins; the rest of VsrError: 422).
STATUS_OF: tuple[tuple[type[BaseException], int], ...] = (
    (Refused, 403),
    (NotFound, 404),
    (OutputBusy, 409),
    (Conflict, 409),
    (Draining, 503),
    (QueueFull, 503),
)


class JobRequest(BaseModel):
    """`POST /v1/jobs`: paths relative to the service's root (or a URL with --allow-urls)."""

    model_config = ConfigDict(extra="forbid")

    input: str = Field(max_length=4096, description="input path relative to the root, or a URL")
    output: str | None = Field(
        default=None,
        max_length=4096,
        description="output path relative to the root (default: NAME_x3.EXT beside the input)",
    )
    options: dict[str, Any] = Field(
        default_factory=dict, max_length=32, description="vsr upscale options by long name with underscores"
    )


def error(
    status: int, message: str, hint: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {"error": message}
    if hint:
        body["hint"] = hint
    return JSONResponse(body, status_code=status, headers=headers)


def create_app(service: Service) -> FastAPI:
    """The ASGI app over `service`."""
    app = FastAPI(
        title="vsr",
        version=__version__,
        description="Video super-resolution jobs: submit, follow, cancel, download.",
    )
    token = service.options.token

    @app.middleware("http")
    async def authorize(request: Request, call_next: Any) -> Response:
        if token and request.url.path != "/healthz":
            given = request.headers.get("authorization", "")
            expected = f"Bearer {token}"
            if not hmac.compare_digest(given.encode(), expected.encode()):
                if request.url.path == "/" and request.method == "GET":
                    # The page itself holds no data: it asks for the token and sends it with
                    # every call it makes. Served with 401 all the same.
                    return HTMLResponse(index_page(needs_token=True), status_code=401)
                return error(
                    401,
                    "a bearer token is required" if not given else "wrong token",
                    hint="send 'Authorization: Bearer TOKEN'",
                    headers={"WWW-Authenticate": "Bearer"},
                )
        response: Response = await call_next(request)
        return response

    @app.exception_handler(VsrError)
    async def vsr_error(request: Request, exc: VsrError) -> JSONResponse:
        status = next((code for kind, code in STATUS_OF if isinstance(exc, kind)), 422)
        return error(status, str(exc), exc.hint)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_error(exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return error(500, "internal error")

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """The process answers."""
        return {"status": "ok", "version": __version__}

    @app.get("/readyz", tags=["health"])
    def readyz() -> JSONResponse:
        """Ready to run jobs: the default model loads, on a GPU where --require-gpu asks."""
        ready, reason = service.readiness()
        return JSONResponse({"ready": ready, "reason": reason}, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["health"])
    def metrics() -> Response:
        """Prometheus text format."""
        return Response(service.metrics(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.post("/v1/jobs", status_code=201, tags=["jobs"])
    def submit(body: JobRequest) -> JSONResponse:
        """Queue a job; 201 with the job."""
        job = service.submit(body.input, body.output, body.options)
        return JSONResponse(service.record(job), status_code=201, headers={"Location": f"/v1/jobs/{job.id}"})

    @app.get("/v1/jobs", tags=["jobs"])
    def jobs(status: str | None = None, limit: int = 100) -> dict[str, Any]:
        """Jobs, newest first; `status` filters (queued, running, done, failed, cancelled)."""
        try:
            wanted = Status(status) if status else None
        except ValueError:
            raise _unprocessable(
                f"unknown status {status!r}: one of " + ", ".join(s.value for s in Status)
            ) from None
        if not 1 <= limit <= 1000:
            raise _unprocessable("limit must be 1 to 1000")
        return {"jobs": [service.record(j) for j in service.store.jobs(wanted, limit)]}

    @app.get("/v1/jobs/{job_id}", tags=["jobs"])
    def job(job_id: str) -> dict[str, Any]:
        return service.record(service.get(job_id))

    @app.delete("/v1/jobs/{job_id}", tags=["jobs"])
    def cancel(job_id: str) -> dict[str, Any]:
        """Cancel a queued or running job (a running job's partial output is removed)."""
        return service.record(service.cancel(job_id))

    @app.get("/v1/jobs/{job_id}/output", tags=["jobs"])
    def output(job_id: str) -> FileResponse:
        """A finished job's output file."""
        path = service.output_path(job_id)
        return FileResponse(path, filename=path.name)

    @app.get("/v1/jobs/{job_id}/compare", tags=["jobs"], response_class=HTMLResponse)
    def compare(job_id: str) -> HTMLResponse:
        """Before/after of a finished job: a frame of its input, bicubic, against the same frame
        of its output (`vsr compare`'s page)."""
        job = service.get(job_id)
        path = service.output_path(job_id)
        return HTMLResponse(compare_page(service.paths.root, job.input, path, job.options.get("start")))

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(index_page(needs_token=bool(token)))

    return app


class _Unprocessable(VsrError):
    pass


def _unprocessable(message: str) -> VsrError:
    return _Unprocessable(message)


def _validation_error(exc: RequestValidationError) -> JSONResponse:
    """One line for the first problem: malformed JSON is a 400, the rest a 422."""
    errors = exc.errors()
    first = errors[0] if errors else {}
    kind = first.get("type", "")
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    if kind == "json_invalid":
        detail = first.get("ctx", {}).get("error", "")
        return error(400, f"malformed JSON{': ' + str(detail) if detail else ''}")
    if kind == "extra_forbidden":
        return error(422, f"unknown field '{where}'", hint="fields: input, output, options")
    if kind == "missing":
        return error(422, f"missing field '{where}'" if where else "a JSON object is required")
    message = str(first.get("msg", "invalid request"))
    return error(422, f"{where}: {message}" if where else message)


#: What a refused body may still send before the 413 goes out (see `BodyLimit`): a client
#: sending a little too much gets its answer; one sending far too much, or slowly, is cut off.
DRAIN_BYTES = 1024 * 1024
DRAIN_SECONDS = 2.0


class BodyLimit:
    """ASGI middleware: a request body over `limit` bytes is a 413, whether it says its length
    or streams it (chunked), and the app never sees it.

    Why buffer: bodies here are small JSON (a job), so reading one whole before the app runs
    costs at most `limit` bytes per request, and a body that grows past it is refused
    before any handler has started a response.

    Why drain before answering: the server closes the connection with the 413, and a close
    with unread request bytes resets it, which can destroy the 413 before the client reads it
    (a client that sends its whole body first, as most do, then saw a reset instead of the
    reason). So the rest of a refused body is read and thrown away first, within
    `DRAIN_BYTES` and `DRAIN_SECONDS`; a client that asked `Expect: 100-continue` has sent
    nothing yet and is answered at once.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            if length.isdigit() and headers.get(b"expect", b"").lower() != b"100-continue":
                await _drain(receive, int(length))
            await _send_413(send, self.limit)
            return
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.limit:
                if message.get("more_body", False):
                    await _drain(receive, DRAIN_BYTES)
                await _send_413(send, self.limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _drain(receive: Receive, expected: int) -> None:
    """Read and drop what remains of a request body, up to `expected` bytes, `DRAIN_BYTES`
    and `DRAIN_SECONDS`, whichever comes first."""
    if expected > DRAIN_BYTES:
        return  # far too much: not worth reading; the client may see a reset
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DRAIN_SECONDS
    read = 0
    while read < expected:
        left = deadline - loop.time()
        if left <= 0:
            return
        try:
            message = await asyncio.wait_for(receive(), left)
        except TimeoutError:
            return
        if message["type"] != "http.request":
            return
        read += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


async def _send_413(send: Send, limit: int) -> None:
    body = json.dumps({"error": f"request body too large (over {limit} bytes)"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
