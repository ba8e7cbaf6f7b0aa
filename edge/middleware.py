"""One pure-ASGI middleware for what every request shares: a request id, maintenance mode, the body
size limit, the body digest an Idempotency-Key needs, extra response headers, and HTTP metrics."""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import re
import time
from collections.abc import Callable, Iterator

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind
from prometheus_client import Counter, Histogram
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edge import jsonbody
from edge.config import EdgeSettings
from edge.errors import HTTP_METHODS, APIError
from univence.telemetry import TRACE_CONTEXT, makes_span

REQUESTS = Counter("univence_edge_requests_total", "HTTP requests, by route and status.",
                   ["method", "route", "status"])
LATENCY = Histogram("univence_edge_request_seconds", "HTTP request time to the last byte, by route.",
                    ["method", "route"],
                    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60))
# Paths that answer even in maintenance mode.
ALWAYS_OPEN = ("/healthz", "/readyz")
_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# The request headers the middleware reads (only those are decoded; a traced request decodes them all).
_READ = frozenset((b"x-request-id", b"content-length", b"transfer-encoding", b"idempotency-key", b"content-type",
                   TRACE_CONTEXT.encode()))
tracer = trace.get_tracer("univence.edge")


class _RouteMetrics:
    """The HTTP metrics of a request, labelled by its route's template (never its path: ids would make a
    series each) and a known method (any other is OTHER: a client can send any token as a method). Each
    label set's series are looked up once, not on every request."""

    def __init__(self) -> None:
        self._series: dict[tuple[str, str, int], tuple] = {}

    def observe(self, scope: Scope, status: int, seconds: float) -> None:
        method = scope["method"] if scope["method"] in HTTP_METHODS else "OTHER"
        template = getattr(scope.get("route"), "path", "unmatched")
        key = (method, template, status)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = (REQUESTS.labels(method, template, str(status)),
                                          LATENCY.labels(method, template))
        series[0].inc()
        series[1].observe(seconds)


def _request_id() -> str:
    """A request id of 96 random bits. It names a request in logs and answers and guards nothing, so it is
    drawn from the process's seeded generator (reseeded in a forked worker) rather than the system's: no
    system call on every request."""
    return f"req_{random.getrandbits(96):024x}"


def add_response_headers(request: Request, headers: dict[str, str]) -> None:
    """Headers the middleware adds to this request's response, whatever answers it (an error too)."""
    request.state.extra_headers = {**getattr(request.state, "extra_headers", {}), **headers}


def after_response(request: Request, start: Callable[[], None]) -> None:
    """Calls `start` once this request's response has gone out (the middleware's last step, however the
    request ended), for work the answer does not wait for (storing an output it carries itself): started
    before, it took the loop from the answer it was not needed for. Called at once where the request has
    ended already, or where no EdgeMiddleware is in front of it."""
    pending = getattr(request.state, "after_response", None)
    if pending is None:
        start()
    else:
        pending.append(start)


class Maintenance:
    """Maintenance is on when configured, or while the maintenance file exists (checked once a second),
    so an operator can switch it with `univence maintenance on|off` without restarting anything."""

    def __init__(self, settings: EdgeSettings):
        self._forced = settings.maintenance
        self._file = settings.maintenance_file
        self._checked_at = 0.0
        self._on = False

    def on(self) -> bool:
        if self._forced:
            return True
        now = time.monotonic()
        if now - self._checked_at > 1.0:
            self._on = bool(self._file) and os.path.exists(self._file)
            self._checked_at = now
        return self._on


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, settings: EdgeSettings):
        self.app = app
        self.max_body = settings.max_body_mb * 1024 * 1024
        self.maintenance = Maintenance(settings)
        # A server span per request only where spans go somewhere: with no exporter it was a fifth of the
        # middleware's time for nothing. Without it, a caller's own trace context still reaches the services.
        self.tracing = settings.otel_exporter != "none"
        self._metrics = _RouteMetrics()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Every request passes here, the cheapest (GET /v1/media/{id}) too: on 2 shared cores each step of
        # this path costs a few times what it does in a loop, so the common case takes the fewest.
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k in _READ}
        client_id = headers.get("x-request-id")
        request_id = client_id if client_id and _CLIENT_REQUEST_ID.match(client_id) else _request_id()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["after_response"] = []  # see after_response
        request_id_header = (b"x-request-id", request_id.encode())
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                extra = state.get("extra_headers")
                message = {**message, "headers": [*message.get("headers", ()), request_id_header,
                                                  *((k.encode(), v.encode()) for k, v in (extra or {}).items())]}
            await send(message)

        try:
            if makes_span(self.tracing, headers):
                every = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}  # the propagators'
                with self._traced(scope, every, request_id):
                    await self._handle(scope, receive, send_with_headers, headers, state)
            else:
                await self._handle(scope, receive, send_with_headers, headers, state)
        finally:
            for start in state.pop("after_response"):
                start()
            self._metrics.observe(scope, status, time.perf_counter() - started)

    @contextlib.contextmanager
    def _traced(self, scope: Scope, headers: dict[str, str], request_id: str) -> Iterator[None]:
        """The request's server span (a child of the caller's trace context, if it sent one); without an
        exporter, the caller's trace context only, so the services' spans still join the caller's trace."""
        if self.tracing:
            with tracer.start_as_current_span(
                    f"{scope['method']} {scope['path']}", context=propagate.extract(headers), kind=SpanKind.SERVER,
                    attributes={"http.request.method": scope["method"], "url.path": scope["path"],
                                "univence.request_id": request_id}):
                yield
        else:
            token = otel_context.attach(propagate.extract(headers))
            try:
                yield
            finally:
                otel_context.detach(token)

    async def _handle(self, scope: Scope, receive: Receive, send_with_headers: Send, headers: dict[str, str],
                      state: dict) -> None:
        if self.maintenance.on() and not scope["path"].startswith(ALWAYS_OPEN):
            await _send_error(send_with_headers, 503, "The API is under maintenance; retry later.",
                              "maintenance_mode", retry_after="60")
            return
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_body:
            await _send_error(send_with_headers, 413, f"Request body is larger than the "
                              f"{self.max_body // (1024 * 1024)} MiB limit", "invalid_request_error")
            return
        digest = "idempotency-key" in headers
        if digest or length or "transfer-encoding" in headers:  # without either header there is no body
            receive = self._receive(receive, state, digest)
        if scope["method"] in ("POST", "PUT", "PATCH") and jsonbody.is_json(headers.get("content-type", "")):
            try:
                receive = await _checked_json(receive)
            except (APIError, HTTPException) as exc:
                error = exc if isinstance(exc, APIError) else APIError(exc.status_code, str(exc.detail))
                await send_with_headers({"type": "http.response.start", "status": error.status,
                                         "headers": _json_headers(body := error.body())})
                await send_with_headers({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send_with_headers)

    def _receive(self, receive: Receive, state: dict, digest: bool) -> Receive:
        """Counts body bytes against the limit (chunked bodies have no Content-Length) and, for requests
        with an Idempotency-Key, hashes the body as it streams in."""
        hasher = hashlib.sha256() if digest else None
        seen = 0

        async def wrapped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                body = message.get("body", b"")
                seen += len(body)
                if seen > self.max_body:
                    raise HTTPException(413, f"Request body is larger than the "
                                             f"{self.max_body // (1024 * 1024)} MiB limit")
                if hasher is not None:
                    hasher.update(body)
                    if not message.get("more_body", False):
                        state["body_sha256"] = hasher.digest()
            return message

        return wrapped


async def _checked_json(receive: Receive) -> Receive:
    """Reads a JSON body whole and checks it (edge.jsonbody: depth, lone surrogates) before any endpoint
    sees it; the endpoint then receives it in one message, and anything after (a disconnect) as sent."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            pending: list[Message] = [message]
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            pending = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]
            jsonbody.check(pending[0]["body"])
            break

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay


def _json_headers(body: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]


async def _send_error(send: Send, status: int, message: str, type_: str, retry_after: str | None = None) -> None:
    body = APIError(status, message, type_).body()
    headers = _json_headers(body)
    if retry_after:
        headers.append((b"retry-after", retry_after.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
