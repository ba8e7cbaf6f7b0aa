"""The vision service for tests and benchmarks: the tiny profile on the CPU, started in this event loop
(`async with serve(settings_for()) as vision: await vision.stub.UpscaleImage(...)`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from services.common.testing import address_of, connected, tiny_settings
from services.vision.config import VisionSettings
from services.vision.server import definition
from services.vision.servicer import VisionServicer
from univence.common.v1 import common_pb2_grpc
from univence.vision.v1 import vision_pb2_grpc


@dataclass
class VisionService:
    """A running vision service: its stubs, and the servicer for looking inside."""

    stub: vision_pb2_grpc.VisionServiceStub
    info: common_pb2_grpc.ServiceInfoServiceStub
    servicer: VisionServicer
    settings: VisionSettings
    address: str


def settings_for(**overrides: Any) -> VisionSettings:
    """Tiny-profile settings on a free port, with `overrides`."""
    return tiny_settings(VisionSettings, **overrides)


@contextlib.asynccontextmanager
async def serve(settings: VisionSettings, *, wait_loaded: bool = True) -> AsyncIterator[VisionService]:
    """The real aio gRPC server in this event loop, and a channel to it."""
    service = definition(settings)
    async with connected(service, settings, wait_loaded=wait_loaded) as (runtime, channel):
        yield VisionService(vision_pb2_grpc.VisionServiceStub(channel), common_pb2_grpc.ServiceInfoServiceStub(channel),
                            service.services[0].servicer, settings, address_of(runtime))
