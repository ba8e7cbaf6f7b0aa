"""GET /v1/media/{id}: public, cached, ranged and transcodable; and the caller's media listings."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Annotated, Literal

import grpc
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse

from edge.auth import Principal, require_principal
from edge.clients import trace_metadata
from edge.errors import APIError, from_grpc
from edge.protocol.common import COMMON_ERRORS, error_responses
from edge.protocol.media import MediaList, MediaObject
from univence.common.v1 import common_pb2
from univence.media.v1 import media_pb2

router = APIRouter(tags=["media"])
MEDIA_ID = re.compile(r"^[A-Za-z0-9_-]{22,64}$")
CACHE_CONTROL = "public, max-age=3600"
BUFFER_BELOW_BYTES = 1024 * 1024
FORMATS = {"png": common_pb2.IMAGE_FORMAT_PNG, "jpeg": common_pb2.IMAGE_FORMAT_JPEG,
           "jpg": common_pb2.IMAGE_FORMAT_JPEG, "webp": common_pb2.IMAGE_FORMAT_WEBP}
KINDS = {media_pb2.MEDIA_KIND_IMAGE: "image", media_pb2.MEDIA_KIND_VIDEO: "video",
         media_pb2.MEDIA_KIND_AUDIO: "audio"}


def media_url(request: Request, media_id: str) -> str:
    base = request.app.state.clients.settings.public_base_url or str(request.base_url)
    return f"{base.rstrip('/')}/v1/media/{media_id}"


def _not_found(media_id: str) -> APIError:
    return APIError(404, f"No media file with id '{media_id}'", param="mediaFileId", code="not_found")


def parse_range(header: str) -> tuple[int | None, int | None] | None:
    """`bytes=a-b`, `bytes=a-` or `bytes=-n` → (start, end inclusive) with None for open ends;
    None for anything else (several ranges, other units), which is served whole as RFC 9110 allows."""
    match = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", header)
    if not match or (not match[1] and not match[2]):
        return None
    start = int(match[1]) if match[1] else None
    end = int(match[2]) if match[2] else None
    if start is not None and end is not None and end < start:
        return None
    return start, end


@router.get("/v1/media/{media_id}", summary="Get a media file by id (public; HEAD works too)",
                  responses={**error_responses(400, 404), 206: {"description": "Partial content"},
                             304: {"description": "Not modified"}, 416: {"description": "Range not satisfiable"}},
                  response_class=Response)
async def get_media(media_id: str, request: Request,
                    format: Annotated[str | None, Query(description="Transcode an image: webp, jpeg or png")] = None,
                    ) -> Response:
    if not MEDIA_ID.match(media_id):
        raise _not_found(media_id)
    if format is not None and format.lower() not in FORMATS:
        raise APIError(400, f"format must be one of webp, jpeg, png (got '{format}')", param="format")
    stub = request.app.state.clients.media
    image_format = FORMATS[format.lower()] if format else common_pb2.IMAGE_FORMAT_UNSPECIFIED
    wanted = parse_range(request.headers.get("range", ""))

    meta = None
    if wanted is not None and wanted[0] is None:  # a suffix range needs the size first
        meta = await _metadata(stub, media_id, image_format)
        size = meta.size_bytes
        wanted = (max(0, size - (wanted[1] or 0)), size - 1)
    offset, length = 0, 0
    if wanted is not None:
        offset = wanted[0] or 0
        length = 0 if wanted[1] is None else wanted[1] - offset + 1

    call = stub.GetMedia(media_pb2.GetMediaRequest(
        media_id=media_id, format=image_format, offset=offset, length=length,
        metadata_only=request.method == "HEAD"), timeout=60, metadata=trace_metadata())
    try:
        first = await call.read()
    except grpc.aio.AioRpcError as exc:
        call.cancel()
        error = from_grpc(exc, "media")
        if error.status == 404:
            raise _not_found(media_id) from None
        if error.param == "range" and meta is None:
            meta = await _metadata(stub, media_id, image_format)
            return Response(status_code=416, headers={"Content-Range": f"bytes */{meta.size_bytes}"})
        raise error from None
    media = first.media
    etag = f'"{media.sha256[:40]}"'
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL, "Vary": "User-Agent", "Accept-Ranges": "bytes"}
    if _etag_matches(request.headers.get("if-none-match", ""), etag):
        call.cancel()
        return Response(status_code=304, headers=headers)
    status, body_length = 200, media.size_bytes
    if wanted is not None:
        end = media.size_bytes - 1 if length == 0 else min(offset + length, media.size_bytes) - 1
        body_length = end - offset + 1
        status = 206
        headers["Content-Range"] = f"bytes {offset}-{end}/{media.size_bytes}"
    headers["Content-Length"] = str(body_length)
    if request.method == "HEAD":
        call.cancel()
        return Response(status_code=status, headers=headers, media_type=media.mime_type)
    if body_length <= BUFFER_BELOW_BYTES:  # small files: one plain response, no streaming machinery
        body = b"".join([chunk async for chunk in _chunks(call)])
        return Response(body, status_code=status, headers=headers, media_type=media.mime_type)
    return StreamingResponse(_chunks(call), status_code=status, headers=headers, media_type=media.mime_type)


router.add_api_route("/v1/media/{media_id}", get_media, methods=["HEAD"], include_in_schema=False)


async def _metadata(stub, media_id: str, image_format: int) -> media_pb2.Media:
    call = stub.GetMedia(media_pb2.GetMediaRequest(media_id=media_id, format=image_format, metadata_only=True),
                         timeout=60, metadata=trace_metadata())
    try:
        return (await call.read()).media
    except grpc.aio.AioRpcError as exc:
        error = from_grpc(exc, "media")
        raise (_not_found(media_id) if error.status == 404 else error) from None
    finally:
        call.cancel()


def _etag_matches(header: str, etag: str) -> bool:
    candidates = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return etag in candidates or "*" in candidates


async def _chunks(call) -> AsyncIterator[bytes]:
    """The rest of the stream after the metadata (read() only: grpc forbids mixing it with iteration)."""
    try:
        while (message := await call.read()) is not grpc.aio.EOF:
            yield message.chunk
    finally:
        call.cancel()


@router.get("/v1/images/user-videos", response_model=MediaList, summary="List the caller's videos",
            responses=COMMON_ERRORS)
async def user_videos(
    request: Request,
    principal: Annotated[Principal, Depends(require_principal)],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    sort_by: Annotated[Literal["newest", "oldest", "createdAt", "created_at"], Query(alias="sortBy")] = "newest",
    sort_order: Annotated[Literal["asc", "desc"], Query(alias="sortOrder")] = "desc",
) -> MediaList:
    oldest_first = (sort_by == "oldest") != (sort_order == "asc")
    order = media_pb2.SORT_ORDER_OLDEST_FIRST if oldest_first else media_pb2.SORT_ORDER_NEWEST_FIRST
    try:
        page = await request.app.state.clients.media.ListMedia(media_pb2.ListMediaRequest(
            owner_id=principal.user_id, kind=media_pb2.MEDIA_KIND_VIDEO, order=order, page_size=limit,
            offset=offset), timeout=30, metadata=trace_metadata())
    except grpc.aio.AioRpcError as exc:
        raise from_grpc(exc, "media") from None
    data = [MediaObject(id=m.media_id, url=media_url(request, m.media_id), mime_type=m.mime_type,
                        kind=KINDS.get(m.kind, "unknown"), size_bytes=m.size_bytes, width=m.width or None,
                        height=m.height or None, created=m.create_time.seconds) for m in page.media]
    return MediaList(data=data, total=page.total_size, limit=limit, offset=offset,
                     has_more=offset + len(data) < page.total_size)
