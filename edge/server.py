"""Runs the edge with uvicorn (`univence serve edge` or `python -m edge`)."""

from __future__ import annotations

import logging

import uvicorn

from edge.config import EdgeSettings


def main() -> None:
    settings = EdgeSettings()
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run("edge.app:create_app", factory=True, host=settings.host, port=settings.port,
                workers=settings.workers, log_level=settings.log_level.lower(), access_log=False,
                timeout_graceful_shutdown=30, lifespan="on")
