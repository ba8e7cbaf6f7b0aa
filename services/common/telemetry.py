"""OpenTelemetry: a tracer provider per process and W3C trace context carried in gRPC metadata."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

log = logging.getLogger(__name__)


def setup_tracing(service_name: str, exporter: str) -> None:
    """Installs a tracer provider that names the service; `exporter` is none, console or otlp."""
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return  # already set up in this process (tests start several servers)
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


def extract_context(metadata: Iterable[tuple[str, str | bytes]] | None):
    """The trace context a caller sent in gRPC metadata (traceparent, tracestate)."""
    carrier = {k: v for k, v in (metadata or ()) if isinstance(v, str)}
    return propagate.extract(carrier)


def inject_metadata(extra: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """gRPC metadata that carries the current trace context to the callee."""
    carrier: dict[str, str] = dict(extra or {})
    propagate.inject(carrier)
    return list(carrier.items())
