"""Runs the edge with uvicorn (`univence serve edge` or `python -m edge`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import uvicorn
from fastapi import FastAPI

from edge.app import create_app
from edge.config import EdgeSettings
from edge.http_protocol import EdgeHTTPProtocol
from univence.process import freeze_startup_heap
from univence.telemetry import configure_logging


def serving_app() -> FastAPI:
    """The app a served edge process runs: create_app's, with its startup heap frozen once the startup is done
    (univence.process). Tests build create_app's own, in processes that run many apps."""
    app = create_app()
    startup = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with startup(app):
            freeze_startup_heap()
            yield

    app.router.lifespan_context = lifespan
    return app


def main() -> None:
    settings = EdgeSettings()
    configure_logging(settings.log_level)
    uvicorn.run("edge.server:serving_app", factory=True, host=settings.host, port=settings.port,
                workers=settings.workers, log_level=settings.log_level.lower(), access_log=False,
                timeout_graceful_shutdown=30, lifespan="on", http=EdgeHTTPProtocol)
