"""The MediaService servicer. Blocking work (files, SQL, hashing) runs in threads and Pillow on the
work queue, so the event loop only moves messages.

Writes go blob first, then index row; deletes go row first, then blob. A crash in between leaves at
most an unreferenced blob, never a row whose bytes are missing.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator

from services.common.database import now_us
from services.common.errors import invalid, not_found, too_large
from services.media.config import MediaSettings
from services.media.index import MediaIndex, MediaRecord
from services.media.jobs_servicer import JobsServicer
from services.media.paging import decode_page_token, next_page_token, page_size, query_fingerprint
from services.media.storage import BlobNotFound, BlobStore, read_all
from services.media.transcode import FORMAT_MIMES, Transcoder
from services.media.validation import (
    Kind,
    canonical_mime,
    check_media_id,
    check_owner,
    new_media_id,
    probe_image,
)
from univence.common.v1 import common_pb2
from univence.media.v1 import media_pb2, media_pb2_grpc

log = logging.getLogger(__name__)

class MediaServicer(JobsServicer, media_pb2_grpc.MediaServiceServicer):
    """Serves once `attach` has given it its store, index and transcoder (the runtime's readiness gate
    keeps RPCs out until the service's `load` has done that)."""

    store: BlobStore
    index: MediaIndex
    transcoder: Transcoder

    def __init__(self, settings: MediaSettings):
        self.settings = settings

    def attach(self, store: BlobStore, index: MediaIndex, transcoder: Transcoder) -> None:
        self.store, self.index, self.transcoder = store, index, transcoder

    async def CreateMedia(
        self, request: media_pb2.CreateMediaRequest, context
    ) -> media_pb2.CreateMediaResponse:
        owner = check_owner(request.owner_id)
        mime = canonical_mime(request.mime_type, request.kind)
        data = request.data
        if not data:
            raise invalid("data is empty", "data")
        if len(data) > self.settings.max_upload_bytes:
            raise too_large(f"the file is {len(data)} bytes; at most {self.settings.max_upload_mb} MiB", "data")
        if request.width < 0 or request.height < 0:
            raise invalid("width and height must not be negative", "width" if request.width < 0 else "height")
        record = await asyncio.to_thread(self._store, owner, request.kind, mime, data,
                                         request.width, request.height)
        return media_pb2.CreateMediaResponse(media=record.to_proto())

    def _store(self, owner: str, kind: int, mime: str, data: bytes, width: int, height: int) -> MediaRecord:
        if kind == Kind.MEDIA_KIND_IMAGE:
            size = probe_image(data, mime)  # the header's size wins over what the caller said
            width, height = size.width, size.height
        record = MediaRecord(
            media_id=new_media_id(), owner_id=owner, kind=kind, mime_type=mime, size_bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(), width=width, height=height, created_us=now_us(),
        )
        self.store.put(record.media_id, data)
        try:
            self.index.insert(record)
        except BaseException:
            self.store.delete(record.media_id)
            raise
        return record

    async def GetMedia(
        self, request: media_pb2.GetMediaRequest, context
    ) -> AsyncIterator[media_pb2.GetMediaResponse]:
        chunk = self.settings.chunk_bytes
        if request.format == common_pb2.IMAGE_FORMAT_UNSPECIFIED and not request.metadata_only:
            # The common case in one thread hop: index row, range, blob opened and first chunk read.
            check_media_id(request.media_id)
            opened = await asyncio.to_thread(
                self._open_original, request.media_id, request.offset, request.length, chunk)
            async for message in self._send_blob(*opened, chunk):
                yield message
            return
        record = await self._record(request.media_id)
        variant = None
        if request.format != common_pb2.IMAGE_FORMAT_UNSPECIFIED:
            target = _target_mime(request.format, record)
            if target != record.mime_type:
                variant = await self.transcoder.variant(
                    record.media_id, target, lambda: asyncio.to_thread(self._read_all, record.media_id))
                record = record.variant(target, len(variant.data), variant.sha256)
        start, end = _byte_range(request.offset, request.length, record.size_bytes)
        if request.metadata_only:
            yield media_pb2.GetMediaResponse(media=record.to_proto())
            return
        if variant is not None:
            yield media_pb2.GetMediaResponse(media=record.to_proto())
            for pos in range(start, end, chunk):
                yield media_pb2.GetMediaResponse(chunk=variant.data[pos:min(pos + chunk, end)])
            return
        reader, data = await asyncio.to_thread(self._open_and_read, record.media_id, start, end - start, chunk)
        async for message in self._send_blob(record, reader, data, end - start, chunk):
            yield message

    def _open_original(self, media_id: str, offset: int, length: int, chunk: int):
        """(record, reader, first chunk, bytes to send) for the stored file itself."""
        record = self.index.get(media_id)
        if record is None:
            raise not_found("no media file with this id", "media_id")
        start, end = _byte_range(offset, length, record.size_bytes)
        reader, data = self._open_and_read(media_id, start, end - start, chunk)
        return record, reader, data, end - start

    def _open_and_read(self, media_id: str, start: int, length: int, chunk: int):
        """The blob opened and its first chunk read before any message goes out, so a missing blob is
        an error status rather than a cut stream."""
        try:
            reader = self.store.open_range(media_id, start, length)
        except BlobNotFound:
            raise _missing_blob(media_id) from None
        try:
            return reader, reader.read(min(chunk, length))
        except BaseException:
            reader.close()
            raise

    async def _send_blob(self, record: MediaRecord, reader, data: bytes, remaining: int,
                         chunk: int) -> AsyncIterator[media_pb2.GetMediaResponse]:
        try:
            yield media_pb2.GetMediaResponse(media=record.to_proto())
            while data:
                yield media_pb2.GetMediaResponse(chunk=data)
                remaining -= len(data)
                if remaining <= 0:
                    break
                data = await asyncio.to_thread(reader.read, min(chunk, remaining))
        finally:
            reader.close()

    async def ListMedia(self, request: media_pb2.ListMediaRequest, context) -> media_pb2.ListMediaResponse:
        owner = check_owner(request.owner_id)
        if request.kind not in Kind.values():
            raise invalid(f"unknown kind {request.kind}", "kind")
        if request.order not in media_pb2.SortOrder.values():
            raise invalid(f"unknown order {request.order}", "order")
        size = page_size(request.page_size, request.offset)
        newest_first = request.order != media_pb2.SORT_ORDER_OLDEST_FIRST
        query = query_fingerprint(owner, request.kind, newest_first)
        offset = decode_page_token(request.page_token, query) if request.page_token else request.offset
        records, total = await asyncio.to_thread(
            self.index.list, owner, request.kind, newest_first=newest_first, limit=size, offset=offset)
        return media_pb2.ListMediaResponse(
            media=[r.to_proto() for r in records], total_size=total,
            next_page_token=next_page_token(offset, len(records), total, query))

    async def DeleteMedia(
        self, request: media_pb2.DeleteMediaRequest, context
    ) -> media_pb2.DeleteMediaResponse:
        if not await self.remove_media(check_media_id(request.media_id), request.owner_id or None):
            raise not_found("no media file with this id", "media_id")
        return media_pb2.DeleteMediaResponse()

    async def remove_media(self, media_id: str, owner_id: str | None) -> bool:
        """Deletes a file (only the owner's, when `owner_id` is given): its row, then its bytes (a file
        whose row is gone is never served, even if removing its bytes fails); False when none matched."""
        if not await asyncio.to_thread(self.index.delete, media_id, owner_id):
            return False
        self.transcoder.forget(media_id)
        await asyncio.to_thread(self.store.delete, media_id)
        return True

    def _read_all(self, media_id: str) -> bytes:
        try:
            return read_all(self.store, media_id)
        except BlobNotFound:
            raise _missing_blob(media_id) from None

    async def _record(self, media_id: str) -> MediaRecord:
        check_media_id(media_id)
        record = await asyncio.to_thread(self.index.get, media_id)
        if record is None:
            raise not_found("no media file with this id", "media_id")
        return record


def _missing_blob(media_id: str) -> Exception:
    log.error("media %s is in the index but its blob is missing", media_id)
    return not_found("the media file's bytes are missing", "media_id")


def _target_mime(image_format: int, record: MediaRecord) -> str:
    target = FORMAT_MIMES.get(image_format)
    if target is None:
        raise invalid(f"unknown format {image_format}", "format")
    if record.kind != Kind.MEDIA_KIND_IMAGE:
        raise invalid(f"only images can be transcoded; this file is {record.mime_type}", "format")
    return target


def _byte_range(offset: int, length: int, size: int) -> tuple[int, int]:
    """[start, end) of the requested bytes. A start at or past the end cannot be satisfied (HTTP 416);
    a length past the end is cut at the end, as HTTP does."""
    if offset < 0 or length < 0:
        raise invalid("offset and length must not be negative", "range")
    if offset >= size:
        raise invalid(f"offset {offset} is beyond the file's {size} bytes", "range")
    return offset, size if length == 0 else min(size, offset + length)
