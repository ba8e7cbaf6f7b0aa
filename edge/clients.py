"""gRPC channels and stubs from the edge to the services: one channel per address and one stub per
service, made once per process (a stub per request cost a few microseconds each time for nothing)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import grpc
from fastapi import Depends, Request
from grpc_health.v1 import health_pb2_grpc

from edge.config import EdgeSettings
from edge.errors import APIError, from_grpc
from univence.accounts.v1 import accounts_pb2_grpc
from univence.common.v1 import common_pb2_grpc
from univence.media.v1 import media_pb2_grpc
from univence.telemetry import inject_metadata

T = TypeVar("T")
S = TypeVar("S")


class ServiceClients:
    """The stubs the edge calls. Channels are lazy: a service that is down fails its own calls only."""

    def __init__(self, settings: EdgeSettings):
        self.settings = settings
        size = settings.max_message_mb * 1024 * 1024
        self._options = [
            ("grpc.max_receive_message_length", size),
            ("grpc.max_send_message_length", size),
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.enable_retries", 1),
            # A service that restarts (or starts after the edge) is reached again within a second or
            # two, instead of after gRPC's default reconnect backoff of up to two minutes.
            ("grpc.initial_reconnect_backoff_ms", 200),
            ("grpc.min_reconnect_backoff_ms", 200),
            ("grpc.max_reconnect_backoff_ms", 2_000),
        ]
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._stubs: dict[tuple[str, type], Any] = {}
        self._addresses: dict[str, str] = {}
        self.accounts = accounts_pb2_grpc.AccountsServiceStub(self.channel(settings.accounts_address))
        self.media = media_pb2_grpc.MediaServiceStub(self.channel(settings.media_address))

    @property
    def timeout(self) -> float:
        """The deadline of a call to a modality service."""
        return self.settings.rpc_timeout_seconds

    def channel(self, address: str) -> grpc.aio.Channel:
        if address not in self._channels:
            self._channels[address] = grpc.aio.insecure_channel(address, options=self._options)
        return self._channels[address]

    def _stub(self, address: str, stub_class: type[S]) -> S:
        key = (address, stub_class)
        if key not in self._stubs:
            self._stubs[key] = stub_class(self.channel(address))
        return self._stubs[key]

    def enabled(self, modality: str) -> bool:
        return modality in self.settings.modalities

    def require(self, name: str) -> None:
        """503 for a modality service this deployment does not route to."""
        if not self.enabled(name):
            raise APIError(503, f"the {name} service is not enabled on this deployment", "processing_error",
                           code="service_not_enabled")

    def modality(self, name: str, stub_class: type[S]) -> S:
        """The stub of an enabled modality service; 503 for one this deployment does not route to."""
        self.require(name)
        return self._stub(self.address(name), stub_class)

    def address(self, modality: str) -> str:
        """Where a modality service is reached, found once per process: finding it reads the environment
        and the config file (univence.registry.address), which cost more than the rest of the stub lookup
        on every request."""
        found = self._addresses.get(modality)
        if found is None:
            found = self._addresses[modality] = self.settings.modality_address(modality)
        return found

    def info(self, modality: str) -> common_pb2_grpc.ServiceInfoServiceStub:
        return self._stub(self.address(modality), common_pb2_grpc.ServiceInfoServiceStub)

    def health(self, address: str) -> health_pb2_grpc.HealthStub:
        return self._stub(address, health_pb2_grpc.HealthStub)

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()


async def call(service: str, rpc: Callable[..., Awaitable[T]], request: Any, *,
               timeout: float | None = None, metadata: list[tuple[str, str]] | None = None) -> T:
    """One unary call with the trace context attached; a gRPC failure becomes the API's error."""
    try:
        return await rpc(request, timeout=timeout, metadata=inject_metadata(dict(metadata or ())))
    except grpc.aio.AioRpcError as exc:
        raise from_grpc(exc, service) from None


class ServiceStream:
    """A server-streaming call, started when it is made: gRPC sends the request from a task of its own, and
    what the service answers waits in the channel until it is read. So a flow can start the call and do
    something else (reserve credits) while the service works, with no task of its own to run the call.
    Its messages are read with `async for` / `anext`; a gRPC failure becomes the API's error; cancelling
    the reader cancels the call, and `aclose()` ends it (whoever makes one closes it)."""

    def __init__(self, service: str, rpc: Callable[..., Any], request: Any, timeout: float | None):
        self._service = service
        self.started = time.perf_counter()  # when the call was made (the service's time counts from here)
        self._call = rpc(request, timeout=timeout, metadata=inject_metadata())

    def __aiter__(self) -> ServiceStream:
        return self

    async def __anext__(self) -> Any:
        try:
            message = await self._call.read()
        except grpc.aio.AioRpcError as exc:
            raise from_grpc(exc, self._service) from None
        if message is grpc.aio.EOF:
            raise StopAsyncIteration
        return message

    async def aclose(self) -> None:
        self._call.cancel()


def stream(service: str, rpc: Callable[..., Any], request: Any, *, timeout: float | None = None) -> ServiceStream:
    """A server-streaming call to `service`, started (see ServiceStream)."""
    return ServiceStream(service, rpc, request, timeout)


async def get_clients(request: Request) -> ServiceClients:
    return request.app.state.clients


Clients = Annotated[ServiceClients, Depends(get_clients)]
