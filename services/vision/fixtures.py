"""The vision service for tests and benchmarks: the tiny profile on the CPU, started in this event loop
(`async with serve(settings_for()) as vision: await vision.stub.UpscaleImage(...)`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from services.common.testing import RunningModality, serve_modality, tiny_settings
from services.vision.config import VisionSettings
from services.vision.server import definition
from services.vision.servicer import VisionServicer
from univence.vision.v1 import vision_pb2_grpc

# A running vision service: `stub` (VisionServiceStub), `info` (ServiceInfoServiceStub), `servicer` (to look
# inside), `settings`, `address`.
VisionService = RunningModality[vision_pb2_grpc.VisionServiceStub, VisionServicer, VisionSettings]


def settings_for(**overrides: Any) -> VisionSettings:
    """Tiny-profile settings on a free port, with `overrides`."""
    return tiny_settings(VisionSettings, **overrides)


@contextlib.asynccontextmanager
async def serve(settings: VisionSettings, *, wait_loaded: bool = True) -> AsyncIterator[VisionService]:
    """The real aio gRPC server in this event loop, and a channel to it."""
    async with serve_modality(definition(settings), settings, vision_pb2_grpc.VisionServiceStub,
                              wait_loaded=wait_loaded) as service:
        yield service
