"""The answer to GET or HEAD /v1/media/{id}, made once for both ways a request reaches it: FastAPI's route
(edge.endpoints.media.router) and the lane below FastAPI that serves the hot path
(edge.endpoints.media.lane). Whatever reaches it gets the same status, headers and body."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping

import grpc
from starlette.background import BackgroundTask
from starlette.responses import Response, StreamingResponse

from edge.endpoints.media.translate import (
    MEDIA_ID,
    etag_matches,
    image_format,
    not_found,
    parse_range,
)
from edge.errors import from_grpc
from univence.media.v1 import media_pb2, media_pb2_grpc
from univence.telemetry import inject_metadata

log = logging.getLogger(__name__)
BUFFER_BELOW_BYTES = 1024 * 1024
# The headers every answer about a file has besides its ETag, as the ASGI head carries them.
CACHING = [(b"cache-control", b"public, max-age=3600"), (b"vary", b"User-Agent"), (b"accept-ranges", b"bytes")]


class RawResponse(Response):
    """A whole response whose head is given as ASGI raw headers (lower-case names, bytes), as sent: what
    Starlette's Response would make of a headers dict, without making it on the hottest read (encoding
    each header and looking for Content-Length and Content-Type again)."""

    def __init__(self, status_code: int, raw_headers: list[tuple[bytes, bytes]], body: bytes = b"",
                 background: BackgroundTask | None = None) -> None:
        self.status_code = status_code
        self.raw_headers = raw_headers
        self.body = body
        self.background = background


async def media_response(stub: media_pb2_grpc.MediaServiceStub, media_id: str, *, method: str,
                         format: str | None, headers: Mapping[str, str]) -> Response:
    """The file (or its part, its transcoding, a 304 or a HEAD's headers) as one response, for a request
    with these (lower-case) headers; raises edge.errors.APIError for what the caller got wrong (an unknown
    id, a bad format)."""
    # 1. What is asked: a well-formed id, a transcoding, a byte range.
    if not MEDIA_ID.match(media_id):
        raise not_found(media_id)
    transcode = image_format(format)
    range_header = headers.get("range")
    wanted = parse_range(range_header) if range_header else None
    meta = None
    if wanted is not None and wanted[0] is None:  # a suffix range needs the size first
        meta = await _metadata(stub, media_id, transcode)
        size = meta.size_bytes
        wanted = (max(0, size - (wanted[1] or 0)), size - 1)
    offset, length = 0, 0
    if wanted is not None:
        offset = wanted[0] or 0
        length = 0 if wanted[1] is None else wanted[1] - offset + 1

    # 2. One stream from media: the file's metadata first, then its bytes (none for HEAD).
    stream = stub.GetMedia(media_pb2.GetMediaRequest(
        media_id=media_id, format=transcode, offset=offset, length=length,
        metadata_only=method == "HEAD"), timeout=60, metadata=inject_metadata())
    try:
        first = await stream.read()
    except grpc.aio.AioRpcError as exc:
        stream.cancel()
        error = from_grpc(exc, "media")
        if error.status == 404:
            raise not_found(media_id) from None
        if error.param == "range" and meta is None:
            meta = await _metadata(stub, media_id, transcode)
            return RawResponse(416, [(b"content-range", f"bytes */{meta.size_bytes}".encode()),
                                     (b"content-length", b"0")])
        raise error from None

    # 3. The cache's answer, when the client's copy is current.
    media = first.media
    etag = f'"{media.sha256[:40]}"'
    head = [(b"etag", etag.encode()), *CACHING]
    if_none_match = headers.get("if-none-match")
    if if_none_match and etag_matches(if_none_match, etag):
        stream.cancel()
        return RawResponse(304, head)

    # 4. The head of the whole file or of its range.
    status, body_length = 200, media.size_bytes
    if wanted is not None:
        end = media.size_bytes - 1 if length == 0 else min(offset + length, media.size_bytes) - 1
        body_length = end - offset + 1
        status = 206
        head.append((b"content-range", f"bytes {offset}-{end}/{media.size_bytes}".encode()))
    head += [(b"content-length", str(body_length).encode()), (b"content-type", media.mime_type.encode())]
    if method == "HEAD":
        stream.cancel()
        return RawResponse(status, head)

    # 5. The bytes: small files in one response, which leaves once its last byte is in (the stream's end,
    #    its status, is read after it has gone out: one wakeup less before the answer); larger ones streamed.
    if body_length <= BUFFER_BELOW_BYTES:
        body = await _read_bytes(stream, body_length)
        return RawResponse(status, head, body, background=BackgroundTask(_read_to_end, stream))
    answer = StreamingResponse(_chunks(stream), status_code=status)
    answer.raw_headers = head
    return answer


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


async def _read_bytes(stream, size: int) -> bytes:
    """The next `size` bytes of the stream's chunks (fewer if it ends first)."""
    chunks, read = [], 0
    while read < size and (message := await stream.read()) is not grpc.aio.EOF:
        chunks.append(message.chunk)
        read += len(message.chunk)
    return b"".join(chunks)


async def _read_to_end(stream) -> None:
    """The rest of a stream whose bytes have all been answered: its end, or the service's error, which the
    client cannot be told any more (it has every byte it was promised), so it is logged."""
    try:
        while await stream.read() is not grpc.aio.EOF:
            pass
    except grpc.aio.AioRpcError as exc:
        log.warning("media stream ended with %s after its bytes were served: %s", exc.code().name, exc.details())
    finally:
        stream.cancel()


async def _chunks(stream) -> AsyncIterator[bytes]:
    """The rest of the stream after the metadata (read() only: grpc forbids mixing it with iteration)."""
    try:
        while (message := await stream.read()) is not grpc.aio.EOF:
            yield message.chunk
    finally:
        stream.cancel()
