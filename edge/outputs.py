"""What modality routers share after the work: storing outputs in media (owner = the caller) and
saying which model profile answered."""

from __future__ import annotations

from fastapi import Request

from edge.auth import Principal
from edge.clients import call
from edge.routers.media import media_url
from univence.media.v1 import media_pb2

KINDS = {"image": media_pb2.MEDIA_KIND_IMAGE, "video": media_pb2.MEDIA_KIND_VIDEO, "audio": media_pb2.MEDIA_KIND_AUDIO}
PROFILE_HEADER = "x-univence-profile"


async def store_output(request: Request, principal: Principal, data: bytes, mime_type: str, *,
                       width: int = 0, height: int = 0) -> tuple[str, str]:
    """Stores one output file in media and returns (media_id, public URL)."""
    kind = KINDS[mime_type.split("/", 1)[0]]
    response = await call("media", request.app.state.clients.media.CreateMedia, media_pb2.CreateMediaRequest(
        owner_id=principal.user_id, kind=kind, mime_type=mime_type, data=data, width=width, height=height),
        timeout=60)
    media_id = response.media.media_id
    return media_id, media_url(request, media_id)


async def mark_profile(request: Request, service: str) -> None:
    """Adds `x-univence-profile: full|tiny` to the response (tiny models give noise, and say so)."""
    profile = await request.app.state.catalog.profile(request, service)
    if profile:
        request.state.extra_headers = {**getattr(request.state, "extra_headers", {}), PROFILE_HEADER: profile}
