"""The FastAPI application: the endpoint groups' routers, the shared middleware, the error envelope
handlers, and the per-process objects (gRPC clients, authenticator, rate limiter, meter, service
catalog) on app.state, which endpoints receive as dependencies (edge.auth.Caller, edge.serving.Serve…)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import AsyncIterator

from fastapi import APIRouter, FastAPI
from prometheus_client import start_http_server

from edge.admission import Admission
from edge.auth import Authenticator, document_security
from edge.catalog import ServiceCatalog
from edge.clients import ServiceClients
from edge.config import EdgeSettings
from edge.endpoints.account.router import router as account
from edge.endpoints.chat.router import router as chat
from edge.endpoints.health.router import router as health
from edge.endpoints.images.router import router as images
from edge.endpoints.media.lane import MediaLane
from edge.endpoints.media.router import GET_MEDIA_ROUTE
from edge.endpoints.media.router import router as media
from edge.endpoints.models.router import router as models
from edge.endpoints.videos.router import router as videos
from edge.endpoints.vision.router import router as vision
from edge.errors import ErrorResponse, error_responses, install_error_handlers
from edge.inputs import body_schemas
from edge.jobs import JobRunner
from edge.lane import RouteLane
from edge.leases import Leases
from edge.metering import Meter
from edge.middleware import EdgeMiddleware
from edge.outputs import BackgroundStores
from edge.ratelimit import AuthFailureLimiter, RateLimiter
from edge.serving import document_answers
from edge.settlement import Outbox, Settlements
from univence.telemetry import setup_tracing

log = logging.getLogger(__name__)
DESCRIPTION = """OpenAI-compatible API for image generation and editing, LLM chat with vision, voice cloning,
music, image-to-video, segmentation, upscaling and background removal.

Authenticate with `X-API-Key: sk-…`, `Authorization: Bearer sk-…` or `Authorization: Bearer <JWT>`.
Errors always have the shape `{"error": {"message", "type", "param", "code"}}`."""
# FastAPI's own OpenTelemetry spans, metrics and logs are off: edge.middleware already makes each request's
# server span (and the Prometheus metrics), and FastAPI's second server span plus one span per dependency,
# endpoint and serialization cost more per request than the whole middleware. (FastAPIs from before
# their native telemetry have no such option and make none.)
NO_FASTAPI_TELEMETRY = ({"telemetry": {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}}
                        if "telemetry" in inspect.signature(FastAPI.__init__).parameters else {})
# Every endpoint group, in the order requests are matched: each request tries the groups one after the
# other (FastAPI's included routers cost ~13 µs a group on 2 shared cores, ~150 µs for a media GET when
# media came seventh), so the hottest come first. No two groups' routes match the same request
# (tests/edge/test_errors.py checks), so the order decides nothing else.
ROUTERS: tuple[APIRouter, ...] = (media, chat, images, models, vision, videos, health, account)
# The OpenAPI document's sections (its tags), in the order a reader meets them.
TAGS = [
    {"name": "auth", "description": "JSON Web Tokens for an account's email and password, and their refresh "
                                    "(signing up, API keys and the account page are the site's: /signup, /account)"},
    {"name": "chat", "description": "Chat completions with vision, whole or streamed (premium)"},
    {"name": "images", "description": "Image generation and multi-image edits"},
    {"name": "vision", "description": "Segmentation, upscaling and background removal, for images and video"},
    {"name": "videos", "description": "Image to video, as a job or synchronously, and your video library"},
    {"name": "media", "description": "Generated files, by their unguessable ids"},
    {"name": "models", "description": "The models this deployment serves"},
    {"name": "health", "description": "Liveness and readiness"},
]


def api_document(app: FastAPI, settings: EdgeSettings) -> dict:
    """The OpenAPI document FastAPI generates, with what it says the API does not do taken out: the API
    never answers 422 (a request that fails validation gets a 400 in the error envelope, edge.errors), so
    every operation's 422 becomes that 400 and FastAPI's validation-error schemas go; the operations
    that authenticate list the security schemes (edge.auth.document_security; the session cookie's is the
    cookie this edge sets); and a model endpoint's success names the headers it carries
    (edge.serving.document_answers)."""
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
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    for name, schema in body_schemas().items():  # the bodies endpoints read themselves (edge.inputs.json_body)
        if schemas.setdefault(name, schema) != schema:
            raise RuntimeError(f"two schemas named {name} in the OpenAPI document: rename one of the models")
    document_security(document, app.routes, settings.session_cookie)
    document_answers(document, app.routes)
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
        # The keeper and the settlement outbox (edge.settlement): started first, so what an earlier run
        # left in the outbox is delivered at once; stopped after the meter's releases have gone out.
        settlements = Settlements(clients, Outbox(settings.outbox_path))
        settlements.start()
        # Credit leases (edge.leases): started after the keeper, which renews them.
        leases = Leases(clients, settlements, settings) if settings.credit_leases else None
        if leases is not None:
            await leases.start()
        app.state.meter = Meter(clients, settlements, leases)
        app.state.catalog = ServiceCatalog(clients)
        app.state.admission = Admission()  # calls in flight per modality, refused before Reserve when full
        app.state.background_stores = BackgroundStores()  # outputs answered before media had them (edge.outputs)
        app.state.jobs = JobRunner(clients, app.state.meter, settings)
        log.info("edge ready: accounts at %s, media at %s, modalities %s", settings.accounts_address,
                 settings.media_address, settings.modalities or "none")
        metrics = serve_metrics(settings)
        # Cached authentications are used only while this follows accounts' revocations (edge.auth).
        watcher = asyncio.create_task(app.state.authenticator.watch()) if settings.auth_cache_seconds > 0 else None
        try:
            yield
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            if metrics is not None:
                metrics.shutdown()
                metrics.server_close()
        await app.state.jobs.close()  # the jobs running here end failed and released, never left running
        await app.state.meter.drain()
        await app.state.background_stores.drain()
        if leases is not None:
            await leases.stop()  # its charges delivered and its leases returned before the keeper stops
        await settlements.stop()
        await clients.close()

    app = FastAPI(title="Univence API", version="1.0.0", description=DESCRIPTION, lifespan=lifespan,
                  openapi_tags=TAGS, **NO_FASTAPI_TELEMETRY)
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    # Inside EdgeMiddleware, below FastAPI: the media GET, and the lean routes at fixed paths of the routers
    # just included (at the root, with no dependencies of the inclusion's own: edge.lane).
    app.add_middleware(RouteLane, routers=ROUTERS)
    app.add_middleware(MediaLane, route=GET_MEDIA_ROUTE)
    app.add_middleware(EdgeMiddleware, settings=settings)
    app.openapi = lambda: api_document(app, settings)  # type: ignore[method-assign]
    return app
