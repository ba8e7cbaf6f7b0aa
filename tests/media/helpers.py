"""Small helpers for the media tests: a running service, images, and reading GetMedia streams."""

from __future__ import annotations

import contextlib
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
from PIL import Image

from services.media.config import MediaSettings
from services.media.server import definition
from services.media.servicer import MediaServicer
from tests.support.runtime import running_service
from univence.media.v1 import media_pb2, media_pb2_grpc

IMAGE = media_pb2.MEDIA_KIND_IMAGE
VIDEO = media_pb2.MEDIA_KIND_VIDEO
AUDIO = media_pb2.MEDIA_KIND_AUDIO


@dataclass
class Media:
    """A running media service: the client stub, and the servicer for looking inside."""

    stub: media_pb2_grpc.MediaServiceStub
    servicer: MediaServicer
    settings: MediaSettings


def settings_for(tmp_path, **overrides) -> MediaSettings:
    # Small chunks, so a few-KiB file already streams as several messages.
    values = {"host": "127.0.0.1", "port": 0, "metrics_port": 0, "root": str(tmp_path / "media"),
              "chunk_bytes": 1024, "max_upload_mb": 1, **overrides}
    return MediaSettings(**values)


@contextlib.asynccontextmanager
async def serve(settings: MediaSettings) -> AsyncIterator[Media]:
    """The real aio gRPC server in this event loop, and a channel to it."""
    service = definition(settings)
    async with running_service(service, settings) as runtime, \
            grpc.aio.insecure_channel(f"127.0.0.1:{runtime.port}") as channel:
        yield Media(media_pb2_grpc.MediaServiceStub(channel), service.services[0].servicer, settings)


def png(width: int = 40, height: int = 30, mode: str = "RGBA", color=(200, 30, 30, 128)) -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height), color).save(out, format="PNG")
    return out.getvalue()


async def create(stub: media_pb2_grpc.MediaServiceStub, data: bytes, *, owner: str = "user-1",
                 kind: int = IMAGE, mime: str = "image/png", **fields) -> media_pb2.Media:
    response = await stub.CreateMedia(media_pb2.CreateMediaRequest(
        owner_id=owner, kind=kind, mime_type=mime, data=data, **fields))
    return response.media


async def get(stub: media_pb2_grpc.MediaServiceStub, media_id: str,
              **fields) -> tuple[media_pb2.Media, bytes, int]:
    """(metadata, bytes, number of chunks) of a GetMedia stream."""
    meta, chunks = None, []
    async for message in stub.GetMedia(media_pb2.GetMediaRequest(media_id=media_id, **fields)):
        if message.WhichOneof("payload") == "media":
            assert meta is None and not chunks, "metadata must come first, once"
            meta = message.media
        else:
            assert meta is not None
            chunks.append(message.chunk)
    assert meta is not None
    return meta, b"".join(chunks), len(chunks)
