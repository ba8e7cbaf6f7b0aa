"""GET /v1/media/{id}: public, cached, ranged and transcodable (the caller's video library, GET
/v1/images/user-videos, is the videos group's: edge.endpoints.videos)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import grpc
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from edge.endpoints.media.translate import (
    MEDIA_ID,
    etag_matches,
    image_format,
    not_found,
    parse_range,
)
from edge.errors import error_responses, from_grpc
from edge.routing import LeanRoute
from univence.media.v1 import media_pb2, media_pb2_grpc
from univence.telemetry import inject_metadata

router = APIRouter(tags=["media"], route_class=LeanRoute)
CACHE_CONTROL = "public, max-age=3600"
BUFFER_BELOW_BYTES = 1024 * 1024


@router.get("/v1/media/{media_id}", summary="Get a media file by id (public; HEAD works too)",
            responses={**error_responses(400, 404), 206: {"description": "Partial content"},
                       304: {"description": "Not modified"}, 416: {"description": "Range not satisfiable"}},
            response_class=Response)
async def get_media(media_id: str, request: Request,
                    format: Annotated[str | None, Query(description="Transcode an image: webp, jpeg or png")] = None,
                    ) -> Response:
    if not MEDIA_ID.match(media_id):
        raise not_found(media_id)
    # Public and the hottest read: no authentication, and the process's stub straight from app.state (one
    # dependency fewer to solve per request than edge.clients.Clients).
    stub = request.app.state.clients.media
    transcode = image_format(format)
    wanted = parse_range(request.headers.get("range", ""))

    meta = None
    if wanted is not None and wanted[0] is None:  # a suffix range needs the size first
        meta = await _metadata(stub, media_id, transcode)
        size = meta.size_bytes
        wanted = (max(0, size - (wanted[1] or 0)), size - 1)
    offset, length = 0, 0
    if wanted is not None:
        offset = wanted[0] or 0
        length = 0 if wanted[1] is None else wanted[1] - offset + 1

    stream = stub.GetMedia(media_pb2.GetMediaRequest(
        media_id=media_id, format=transcode, offset=offset, length=length,
        metadata_only=request.method == "HEAD"), timeout=60, metadata=inject_metadata())
    try:
        first = await stream.read()
    except grpc.aio.AioRpcError as exc:
        stream.cancel()
        error = from_grpc(exc, "media")
        if error.status == 404:
            raise not_found(media_id) from None
        if error.param == "range" and meta is None:
            meta = await _metadata(stub, media_id, transcode)
            return Response(status_code=416, headers={"Content-Range": f"bytes */{meta.size_bytes}"})
        raise error from None
    media = first.media
    etag = f'"{media.sha256[:40]}"'
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL, "Vary": "User-Agent", "Accept-Ranges": "bytes"}
    if etag_matches(request.headers.get("if-none-match", ""), etag):
        stream.cancel()
        return Response(status_code=304, headers=headers)
    status, body_length = 200, media.size_bytes
    if wanted is not None:
        end = media.size_bytes - 1 if length == 0 else min(offset + length, media.size_bytes) - 1
        body_length = end - offset + 1
        status = 206
        headers["Content-Range"] = f"bytes {offset}-{end}/{media.size_bytes}"
    headers["Content-Length"] = str(body_length)
    if request.method == "HEAD":
        stream.cancel()
        return Response(status_code=status, headers=headers, media_type=media.mime_type)
    if body_length <= BUFFER_BELOW_BYTES:  # small files: one plain response, no streaming machinery
        body = b"".join([chunk async for chunk in _chunks(stream)])
        return Response(body, status_code=status, headers=headers, media_type=media.mime_type)
    return StreamingResponse(_chunks(stream), status_code=status, headers=headers, media_type=media.mime_type)


router.add_api_route("/v1/media/{media_id}", get_media, methods=["HEAD"], include_in_schema=False)


async def _metadata(stub: media_pb2_grpc.MediaServiceStub, media_id: str, transcode: int) -> media_pb2.Media:
    stream = stub.GetMedia(media_pb2.GetMediaRequest(media_id=media_id, format=transcode, metadata_only=True),
                           timeout=60, metadata=inject_metadata())
    try:
        return (await stream.read()).media
    except grpc.aio.AioRpcError as exc:
        error = from_grpc(exc, "media")
        raise (not_found(media_id) if error.status == 404 else error) from None
    finally:
        stream.cancel()


async def _chunks(stream) -> AsyncIterator[bytes]:
    """The rest of the stream after the metadata (read() only: grpc forbids mixing it with iteration)."""
    try:
        while (message := await stream.read()) is not grpc.aio.EOF:
            yield message.chunk
    finally:
        stream.cancel()
