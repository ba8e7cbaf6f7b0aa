"""The FastAPI application: the endpoint groups' routers, the shared middleware, the error envelope
handlers, and the per-process objects (gRPC clients, authenticator, rate limiter, meter, service
catalog) on app.state, which endpoints receive as dependencies (edge.auth.Caller, edge.serving.Serve…)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import APIRouter, FastAPI
from prometheus_client import start_http_server

from edge.auth import Authenticator
from edge.catalog import ServiceCatalog
from edge.clients import ServiceClients
from edge.config import EdgeSettings
from edge.endpoints.account.router import router as account
from edge.endpoints.chat.router import router as chat
from edge.endpoints.health.router import router as health
from edge.endpoints.images.router import router as images
from edge.endpoints.media.router import router as media
from edge.endpoints.models.router import router as models
from edge.endpoints.vision.router import router as vision
from edge.errors import ErrorResponse, error_responses, install_error_handlers
from edge.metering import Meter
from edge.middleware import EdgeMiddleware
from edge.ratelimit import AuthFailureLimiter, RateLimiter
from univence.telemetry import setup_tracing

log = logging.getLogger(__name__)
DESCRIPTION = """OpenAI-compatible API for image generation and editing, LLM chat with vision, voice cloning,
music, image-to-video, segmentation, upscaling and background removal.

Authenticate with `X-API-Key: sk-…`, `Authorization: Bearer sk-…` or `Authorization: Bearer <JWT>`.
Errors always have the shape `{"error": {"message", "type", "param", "code"}}`."""
# Every endpoint group, in the order of the OpenAPI document.
ROUTERS: tuple[APIRouter, ...] = (account, chat, health, images, vision, media, models)


def api_document(app: FastAPI, settings: EdgeSettings) -> dict:
    """The OpenAPI document FastAPI generates, with what it says the API does not do taken out: the API
    never answers 422 (a request that fails validation gets a 400 in the error envelope, edge.errors), so
    every operation's 422 becomes that 400 and FastAPI's validation-error schemas go; and the session
    cookie's scheme names the cookie this edge sets (edge.auth declares the schemes)."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    document = FastAPI.openapi(app)
    invalid = error_responses(400)[400]
    for item in document.get("paths", {}).values():
        for operation in item.values():
            responses = operation.get("responses", {})
            if responses.pop("422", None) is not None and "400" not in responses:
                responses["400"] = {"description": invalid["description"], "content": {"application/json": {
                    "schema": {"$ref": f"#/components/schemas/{ErrorResponse.__name__}"}}}}
    components = document.get("components", {})
    schemas = components.get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    cookie = components.get("securitySchemes", {}).get("SessionCookie")
    if cookie is not None:
        cookie["name"] = settings.session_cookie
    app.openapi_schema = document
    return document


def serve_metrics(settings: EdgeSettings):
    """Prometheus /metrics on `metrics_port` (a port of its own, as every service has; never the API's), or
    None when it is 0 or already taken (with several workers, the first one serves its own metrics)."""
    if not settings.metrics_port:
        return None
    try:
        server, _ = start_http_server(settings.metrics_port, addr=settings.host)
    except OSError as exc:
        log.warning("metrics not served on %s:%s: %s", settings.host, settings.metrics_port, exc)
        return None
    return server


def create_app(settings: EdgeSettings | None = None) -> FastAPI:
    settings = settings or EdgeSettings()
    setup_tracing("univence-edge", settings.otel_exporter)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        clients = ServiceClients(settings)
        app.state.clients = clients
        app.state.authenticator = Authenticator(clients, settings.auth_cache_seconds)
        app.state.rate_limiter = RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)
        app.state.auth_failures = AuthFailureLimiter(settings.auth_failures_per_minute,
                                                     settings.auth_failures_burst)
        app.state.meter = Meter(clients)
        app.state.catalog = ServiceCatalog(clients)
        log.info("edge ready: accounts at %s, media at %s, modalities %s", settings.accounts_address,
                 settings.media_address, settings.modalities or "none")
        metrics = serve_metrics(settings)
        try:
            yield
        finally:
            if metrics is not None:
                metrics.shutdown()
                metrics.server_close()
        await app.state.meter.drain()
        await clients.close()

    app = FastAPI(title="Univence API", version="1.0.0", description=DESCRIPTION, lifespan=lifespan)
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.add_middleware(EdgeMiddleware, settings=settings)
    app.openapi = lambda: api_document(app, settings)  # type: ignore[method-assign]
    return app
