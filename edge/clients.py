"""gRPC channels from the edge to the services, one per address, opened once per process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
from opentelemetry import propagate

from edge.config import EdgeSettings
from edge.errors import APIError, from_grpc
from univence.accounts.v1 import accounts_pb2_grpc
from univence.common.v1 import common_pb2_grpc
from univence.media.v1 import media_pb2_grpc

T = TypeVar("T")


def trace_metadata() -> list[tuple[str, str]]:
    """W3C trace context of the current span, for the callee to continue the trace."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return list(carrier.items())


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
        self.accounts = accounts_pb2_grpc.AccountsServiceStub(self.channel(settings.accounts_address))
        self.media = media_pb2_grpc.MediaServiceStub(self.channel(settings.media_address))

    def channel(self, address: str) -> grpc.aio.Channel:
        if address not in self._channels:
            self._channels[address] = grpc.aio.insecure_channel(address, options=self._options)
        return self._channels[address]

    def modality_channel(self, name: str) -> grpc.aio.Channel:
        if name not in self.settings.modalities:
            raise APIError(503, f"the {name} service is not enabled on this deployment", "processing_error",
                           code="service_not_enabled")
        return self.channel(self.settings.modality_address(name))

    def info_stub(self, address: str) -> common_pb2_grpc.ServiceInfoServiceStub:
        return common_pb2_grpc.ServiceInfoServiceStub(self.channel(address))

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()


async def call(service: str, rpc: Callable[..., Awaitable[T]], request: Any, *,
               timeout: float | None = None, metadata: list[tuple[str, str]] | None = None) -> T:
    """One unary call with the trace context attached; a gRPC failure becomes the API's error."""
    try:
        return await rpc(request, timeout=timeout, metadata=[*trace_metadata(), *(metadata or ())])
    except grpc.aio.AioRpcError as exc:
        raise from_grpc(exc, service) from None


async def stream(service: str, rpc: Callable[..., Any], request: Any, *,
                 timeout: float | None = None) -> AsyncIterator[Any]:
    """A server-streaming call; cancelling the consumer cancels the call on the service."""
    call_ = rpc(request, timeout=timeout, metadata=trace_metadata())
    try:
        async for message in call_:
            yield message
    except grpc.aio.AioRpcError as exc:
        raise from_grpc(exc, service) from None
    finally:
        call_.cancel()
