"""Logging and OpenTelemetry for every Univence process (the services and the edge): one log format,
one tracer provider per process, and the W3C trace context carried in gRPC metadata from the edge to
the services, so a request is one trace across processes."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

log = logging.getLogger(__name__)
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str) -> None:
    """The process's root logger: LOG_FORMAT at `level` (a name such as "info")."""
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT)


def setup_tracing(service_name: str, exporter: str) -> None:
    """Installs a tracer provider that names the process; `exporter` is none, console or otlp
    (OTEL_EXPORTER_OTLP_ENDPOINT). A second call in the same process keeps the first provider (tests
    run several servers in one process)."""
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    span_exporter = _exporter(exporter)
    if span_exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(span_exporter))
    trace.set_tracer_provider(provider)


def _exporter(kind: str) -> SpanExporter | None:
    if kind == "console":
        return ConsoleSpanExporter()
    if kind == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        except ImportError:
            log.error("otel_exporter=otlp needs opentelemetry-exporter-otlp; spans are not exported")
            return None
        return OTLPSpanExporter()
    return None


TRACE_CONTEXT = "traceparent"  # W3C Trace Context: the key a caller's trace context comes under


def makes_span(exporting: bool, keys: Iterable[str]) -> bool:
    """Whether a request (an HTTP request at the edge, an RPC at a service) gets a span of its own: only where
    spans are exported, or where the caller traces (its trace context, under `keys`, is for the span to
    continue). A span that went nowhere was a fifth of the edge middleware's time, ~60 µs of a service's RPC."""
    return exporting or TRACE_CONTEXT in keys


def inject_metadata(extra: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """gRPC metadata that carries the current trace context (traceparent, tracestate) to the callee. With
    no context at all (no span, no caller's trace context, no baggage: the edge's common case without an
    exporter) the propagators have nothing to write, and are not run (2 µs a call in a loop)."""
    carrier: dict[str, str] = dict(extra or {})
    if context.get_current():
        propagate.inject(carrier)
    return list(carrier.items())


def extract_context(metadata: Iterable[tuple[str, str | bytes]] | None):
    """The trace context a caller sent in gRPC metadata or HTTP headers."""
    carrier = {k: v for k, v in (metadata or ()) if isinstance(v, str)}
    return propagate.extract(carrier)
