"""Runs the edge with uvicorn (`univence serve edge` or `python -m edge`)."""

from __future__ import annotations

import uvicorn

from edge.config import EdgeSettings
from edge.http_protocol import EdgeHTTPProtocol
from univence.telemetry import configure_logging


def main() -> None:
    settings = EdgeSettings()
    configure_logging(settings.log_level)
    uvicorn.run("edge.app:create_app", factory=True, host=settings.host, port=settings.port,
                workers=settings.workers, log_level=settings.log_level.lower(), access_log=False,
                timeout_graceful_shutdown=30, lifespan="on", http=EdgeHTTPProtocol)
