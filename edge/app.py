"""The FastAPI application: routers, the shared middleware, error envelope handlers, and the
per-process objects (gRPC clients, authenticator, rate limiter, meter) on app.state."""

from __future__ import annotations

import contextlib
import importlib
import logging
import pkgutil
from collections.abc import AsyncIterator

from fastapi import APIRouter, FastAPI
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from prometheus_client import make_asgi_app

import edge.routers
from edge.auth import Authenticator
from edge.clients import ServiceClients
from edge.config import EdgeSettings
from edge.errors import install_error_handlers
from edge.metering import Meter
from edge.middleware import EdgeMiddleware
from edge.ratelimit import RateLimiter
from edge.routers.models import ModelCatalog

log = logging.getLogger(__name__)
DESCRIPTION = """OpenAI-compatible API for image generation and editing, LLM chat with vision, voice cloning,
music, image-to-video, segmentation, upscaling and background removal.

Authenticate with `X-API-Key: sk-…`, `Authorization: Bearer sk-…` or `Authorization: Bearer <JWT>`.
Errors always have the shape `{"error": {"message", "type", "param", "code"}}`."""


def setup_tracing(exporter: str) -> None:
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    provider = TracerProvider(resource=Resource.create({"service.name": "univence-edge"}))
    if exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    elif exporter == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        except ImportError:
            log.error("otel_exporter=otlp needs opentelemetry-exporter-otlp; spans are not exported")
        else:
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)


def discover_routers() -> list[APIRouter]:
    """Every module in edge/routers/ contributes its `router`, so an endpoint group lands as one file."""
    found = []
    for module in sorted(pkgutil.iter_modules(edge.routers.__path__), key=lambda m: m.name):
        found.append(importlib.import_module(f"edge.routers.{module.name}").router)
    return found


def create_app(settings: EdgeSettings | None = None) -> FastAPI:
    settings = settings or EdgeSettings()
    setup_tracing(settings.otel_exporter)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        clients = ServiceClients(settings)
        app.state.clients = clients
        app.state.authenticator = Authenticator(clients, settings.auth_cache_seconds)
        app.state.rate_limiter = RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)
        app.state.meter = Meter(clients)
        app.state.catalog = ModelCatalog()
        log.info("edge ready: accounts at %s, media at %s, modalities %s", settings.accounts_address,
                 settings.media_address, settings.modalities or "none")
        yield
        await app.state.meter.drain()
        await clients.close()

    app = FastAPI(title="Univence API", version="1.0.0", description=DESCRIPTION, lifespan=lifespan)
    install_error_handlers(app)
    for router in discover_routers():
        app.include_router(router)
    app.mount("/metrics", make_asgi_app())
    app.add_middleware(EdgeMiddleware, settings=settings)
    return app
