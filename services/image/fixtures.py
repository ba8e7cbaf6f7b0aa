"""The image service for tests and benchmarks: the tiny profile on the CPU, started in this event loop
(`async with serve(settings_for()) as image: await image.stub.GenerateImages(...)`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from services.common.testing import RunningModality, serve_modality, tiny_settings
from services.image.config import ImageSettings
from services.image.server import definition
from services.image.servicer import ImageServicer
from univence.image.v1 import image_pb2_grpc

# A running image service: `stub` (ImageServiceStub), `info` (ServiceInfoServiceStub), `servicer` (to look
# inside), `settings`, `address`.
ImageService = RunningModality[image_pb2_grpc.ImageServiceStub, ImageServicer, ImageSettings]


def settings_for(**overrides: Any) -> ImageSettings:
    """Tiny-profile settings on a free port, with `overrides`."""
    return tiny_settings(ImageSettings, **overrides)


@contextlib.asynccontextmanager
async def serve(settings: ImageSettings, *, wait_loaded: bool = True) -> AsyncIterator[ImageService]:
    """The real aio gRPC server in this event loop, and a channel to it."""
    async with serve_modality(definition(settings), settings, image_pb2_grpc.ImageServiceStub,
                              wait_loaded=wait_loaded) as service:
        yield service
