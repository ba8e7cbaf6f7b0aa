"""Trace context through the edge's middleware: with an exporter, each request is a server span (a child
of the caller's trace); without one no span is made, and the caller's own trace context still reaches the
services (what a gRPC call from inside the request carries)."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from edge.config import EdgeSettings
from edge.middleware import EdgeMiddleware
from univence.telemetry import inject_metadata

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


async def carried(exporter: str, headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """The metadata a service call made while handling one request would carry."""
    seen: dict[str, str] = {}

    async def app(scope, receive, send):
        seen.update(inject_metadata())
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    middleware = EdgeMiddleware(app, EdgeSettings(otel_exporter=exporter, maintenance_file=""))
    scope = {"type": "http", "method": "GET", "path": "/healthz", "headers": headers, "query_string": b""}

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        pass

    await middleware(scope, receive, send)
    return seen


@pytest.fixture(scope="module", autouse=True)
def provider():
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(TracerProvider())


async def test_without_an_exporter_the_callers_trace_context_reaches_the_services():
    carried_context = await carried("none", [(b"traceparent", TRACEPARENT.encode())])
    assert carried_context["traceparent"] == TRACEPARENT  # no edge span in between
    assert "traceparent" not in await carried("none", [])


async def test_with_an_exporter_the_request_is_a_span_in_the_callers_trace():
    carried_context = await carried("console", [(b"traceparent", TRACEPARENT.encode())])
    trace_id, span_id = carried_context["traceparent"].split("-")[1:3]
    assert trace_id == TRACE_ID and span_id != "00f067aa0ba902b7"  # the edge's own span, a child
