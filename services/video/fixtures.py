"""The video service for tests and benchmarks: the tiny profile on the CPU, started in this event loop
(`async with serve(settings_for()) as video: async for event in video.stub.GenerateVideo(...)`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from services.common.testing import RunningModality, serve_modality, tiny_settings
from services.video.config import VideoSettings
from services.video.server import definition
from services.video.servicer import VideoServicer
from univence.video.v1 import video_pb2_grpc

# A running video service: `stub` (VideoServiceStub), `info` (ServiceInfoServiceStub), `servicer` (to look
# inside: its queue), `settings`, `address`.
VideoService = RunningModality[video_pb2_grpc.VideoServiceStub, VideoServicer, VideoSettings]


def settings_for(**overrides: Any) -> VideoSettings:
    """Tiny-profile settings on a free port, with `overrides`."""
    return tiny_settings(VideoSettings, **overrides)


@contextlib.asynccontextmanager
async def serve(settings: VideoSettings, *, wait_loaded: bool = True) -> AsyncIterator[VideoService]:
    """The real aio gRPC server in this event loop, and a channel to it."""
    async with serve_modality(definition(settings), settings, video_pb2_grpc.VideoServiceStub,
                              wait_loaded=wait_loaded) as service:
        yield service
