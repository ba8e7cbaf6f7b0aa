"""Starts a service's real aio gRPC server in the test's event loop, on a free port."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from services.common.config import ServiceSettings
from services.common.server import ServiceDefinition, ServiceRuntime


@contextlib.asynccontextmanager
async def running_service(definition: ServiceDefinition, settings: ServiceSettings,
                          *, wait_loaded: bool = True) -> AsyncIterator[ServiceRuntime]:
    """Yields a started runtime (settings.port 0 picks a free port; runtime.port tells which); with
    `wait_loaded`, once its models are loaded (a failed load fails at once, with its reason)."""
    runtime = ServiceRuntime(definition, settings)
    await runtime.start()
    try:
        if wait_loaded:
            await asyncio.wait_for(runtime.wait_loaded(), 120)
        yield runtime
    finally:
        await runtime.stop(grace=1)
