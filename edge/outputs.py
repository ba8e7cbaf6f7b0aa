"""Where a modality's outputs go: stored in the media service (owner = the caller) and served from
its public link, GET /v1/media/{id}."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from edge.auth import Principal
from edge.clients import ServiceClients, call
from univence.media.v1 import media_pb2

KINDS = {"image": media_pb2.MEDIA_KIND_IMAGE, "video": media_pb2.MEDIA_KIND_VIDEO, "audio": media_pb2.MEDIA_KIND_AUDIO}


def media_url(request: Request, media_id: str) -> str:
    """The public link of a media file: the configured public base URL, else the request's own."""
    base = request.app.state.clients.settings.public_base_url or str(request.base_url)
    return f"{base.rstrip('/')}/v1/media/{media_id}"


@dataclass(frozen=True)
class Stored:
    media_id: str
    url: str


@dataclass(frozen=True)
class Outputs:
    """Stores one request's outputs for its caller."""

    request: Request
    principal: Principal
    clients: ServiceClients

    async def store(self, data: bytes, mime_type: str, *, width: int = 0, height: int = 0) -> Stored:
        kind = KINDS[mime_type.split("/", 1)[0]]
        response = await call("media", self.clients.media.CreateMedia, media_pb2.CreateMediaRequest(
            owner_id=self.principal.user_id, kind=kind, mime_type=mime_type, data=data, width=width,
            height=height), timeout=60)
        media_id = response.media.media_id
        return Stored(media_id, media_url(self.request, media_id))
