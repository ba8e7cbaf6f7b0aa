"""Starting a service inside a test's (or a benchmark's) event loop: the real aio gRPC server on a free
port, and a channel to it. Each modality's fixtures.py builds its own starter on these."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import grpc

from services.common.config import ServiceSettings
from services.common.server import ServiceDefinition, ServiceRuntime
from univence.common.v1 import common_pb2_grpc

S = TypeVar("S", bound=ServiceSettings)
Stub = TypeVar("Stub")
Servicer = TypeVar("Servicer")
LOAD_TIMEOUT_S = 120


def tiny_settings(settings_class: type[S], **overrides: Any) -> S:
    """A modality's settings for tests: the tiny profile on the CPU, a free port, no metrics, no warm-up."""
    values = {"host": "127.0.0.1", "port": 0, "metrics_port": 0, "profile": "tiny", "device": "cpu",
              "warmup": False, "log_level": "WARNING", **overrides}
    return settings_class(**values)


@contextlib.asynccontextmanager
async def running_service(definition: ServiceDefinition, settings: ServiceSettings,
                          *, wait_loaded: bool = True) -> AsyncIterator[ServiceRuntime]:
    """Yields a started runtime (settings.port 0 picks a free port; runtime.port tells which); with
    `wait_loaded`, once its models are loaded (a failed load fails at once, with its reason)."""
    runtime = ServiceRuntime(definition, settings)
    await runtime.start()
    try:
        if wait_loaded:
            await asyncio.wait_for(runtime.wait_loaded(), LOAD_TIMEOUT_S)
        yield runtime
    finally:
        await runtime.stop(grace=1)


@contextlib.asynccontextmanager
async def connected(definition: ServiceDefinition, settings: ServiceSettings, *,
                    wait_loaded: bool = True) -> AsyncIterator[tuple[ServiceRuntime, grpc.aio.Channel]]:
    """running_service, and an insecure channel to it (closed before the service stops)."""
    async with running_service(definition, settings, wait_loaded=wait_loaded) as runtime, \
            grpc.aio.insecure_channel(address_of(runtime)) as channel:
        yield runtime, channel


def address_of(runtime: ServiceRuntime) -> str:
    return f"{runtime.settings.host}:{runtime.port}"


@dataclass
class RunningModality(Generic[Stub, Servicer, S]):
    """A modality service running for a test: its own stub, the ServiceInfo stub, the servicer for
    looking inside, its settings and where it listens."""

    stub: Stub
    info: common_pb2_grpc.ServiceInfoServiceStub
    servicer: Servicer
    settings: S
    address: str


@contextlib.asynccontextmanager
async def serve_modality(definition: ServiceDefinition, settings: S, stub: Callable[[grpc.aio.Channel], Stub], *,
                         wait_loaded: bool = True) -> AsyncIterator[RunningModality[Stub, Any, S]]:
    """`connected`, as a RunningModality (the definition's first gRPC service is the modality's own)."""
    async with connected(definition, settings, wait_loaded=wait_loaded) as (runtime, channel):
        yield RunningModality(stub(channel), common_pb2_grpc.ServiceInfoServiceStub(channel),
                              definition.services[0].servicer, settings, address_of(runtime))
