"""The image service for tests and benchmarks: the tiny profile on the CPU, started in this event loop
(`async with serve(settings_for()) as image: await image.stub.GenerateImages(...)`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from services.common.testing import address_of, connected, tiny_settings
from services.image.config import ImageSettings
from services.image.server import definition
from services.image.servicer import ImageServicer
from univence.common.v1 import common_pb2_grpc
from univence.image.v1 import image_pb2_grpc


@dataclass
class ImageService:
    """A running image service: its stubs, and the servicer for looking inside."""

    stub: image_pb2_grpc.ImageServiceStub
    info: common_pb2_grpc.ServiceInfoServiceStub
    servicer: ImageServicer
    settings: ImageSettings
    address: str


def settings_for(**overrides: Any) -> ImageSettings:
    """Tiny-profile settings on a free port, with `overrides`."""
    return tiny_settings(ImageSettings, **overrides)


@contextlib.asynccontextmanager
async def serve(settings: ImageSettings, *, wait_loaded: bool = True) -> AsyncIterator[ImageService]:
    """The real aio gRPC server in this event loop, and a channel to it."""
    service = definition(settings)
    async with connected(service, settings, wait_loaded=wait_loaded) as (runtime, channel):
        yield ImageService(image_pb2_grpc.ImageServiceStub(channel), common_pb2_grpc.ServiceInfoServiceStub(channel),
                           service.services[0].servicer, settings, address_of(runtime))
