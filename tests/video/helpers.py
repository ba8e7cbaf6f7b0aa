"""Helpers for the video tests: requests, running the stream, reading the MP4 back."""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass

import av
import grpc
import numpy as np
import pytest

from services.video.fixtures import VideoService
from tests.image.helpers import bomb_png, picture
from tests.support.grpc_errors import RpcErrorInfo, error_info
from univence.video.v1 import video_pb2 as pb

__all__ = ["bomb_png", "idle", "picture", "read_mp4", "refused", "request", "run"]
# A job that runs long enough to be cancelled or queued behind: its VAE encodes the 41-frame conditioning
# clip (about a second on the CPU, more under load) between "encoding prompt" and the first denoising step.
LONG = {"num_frames": 41, "num_inference_steps": 4}


def request(image: bytes | None = None, prompt: str = "the camera pans slowly", **fields) -> pb.GenerateVideoRequest:
    """A small valid request (9 frames, 2 steps, 480p) unless `fields` say otherwise."""
    values = {"num_frames": 9, "num_inference_steps": 2, "seed": 7, **fields}
    return pb.GenerateVideoRequest(image=picture(120, 80) if image is None else image, prompt=prompt, **values)


async def run(video: VideoService, req: pb.GenerateVideoRequest) -> tuple[list, pb.VideoResult]:
    """(the progress events, the result): every message but the last is progress."""
    events = [message async for message in video.stub.GenerateVideo(req)]
    assert all(e.HasField("progress") for e in events[:-1]) and events[-1].HasField("result")
    return [e.progress for e in events[:-1]], events[-1].result


async def refused(video: VideoService, req: pb.GenerateVideoRequest) -> RpcErrorInfo:
    """The call's error, which must come before any message."""
    messages = []
    with pytest.raises(grpc.RpcError) as caught:
        async for message in video.stub.GenerateVideo(req):
            messages.append(message)
    assert not messages, "a refused request must not get a first message"
    return error_info(caught.value)


async def idle(video: VideoService, within: float = 20.0) -> None:
    """Waits until the service's queue is empty (cancelled work threads have returned)."""
    queue = video.servicer.queue
    loop = asyncio.get_running_loop()
    end = loop.time() + within
    while queue.pending:
        assert loop.time() < end, f"the queue still holds {queue.pending} item(s)"
        await asyncio.sleep(0.05)


@dataclass
class Mp4:
    codec: str
    pix_fmt: str
    fps: float
    frames: list[np.ndarray]

    @property
    def size(self) -> tuple[int, int]:
        height, width = self.frames[0].shape[:2]
        return width, height


def read_mp4(data: bytes) -> Mp4:
    """The video decoded with PyAV: its codec, pixel format, rate and every frame (RGB)."""
    with av.open(io.BytesIO(data)) as container:
        assert container.format.name.startswith("mov,mp4"), container.format.name
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        return Mp4(stream.codec_context.name, stream.codec_context.pix_fmt, float(stream.average_rate), frames)
