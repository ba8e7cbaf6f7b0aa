"""MediaService through real gRPC: create, get (ranges, metadata only, transcoding), delete, errors."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import re

import grpc
import pytest
from PIL import Image

from services.media import transcode as transcode_module
from services.media.transcode import TranscodeCache
from tests.media.helpers import AUDIO, VIDEO, create, get, png, serve, settings_for
from tests.support.grpc_errors import error_info
from univence.common.v1 import common_pb2
from univence.media.v1 import media_pb2

WEBP, JPEG, PNG = common_pb2.IMAGE_FORMAT_WEBP, common_pb2.IMAGE_FORMAT_JPEG, common_pb2.IMAGE_FORMAT_PNG
BLOB = os.urandom(5000)  # 5 chunks of 1 KiB in the test settings


async def expect_error(call, code: grpc.StatusCode, reason: str, param: str | None = None) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    info = error_info(caught.value)
    assert (info.code, info.reason) == (code, reason), info.message
    if param is not None:
        assert info.param == param


def not_found(call):
    return expect_error(call, grpc.StatusCode.NOT_FOUND, "NOT_FOUND")


def invalid(call, param: str | None = None):
    return expect_error(call, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST", param)


async def test_round_trip(media):
    created = await create(media.stub, BLOB, kind=VIDEO, mime="video/mp4", width=640, height=360)
    assert created.size_bytes == len(BLOB)
    assert created.sha256 == hashlib.sha256(BLOB).hexdigest()
    assert (created.width, created.height, created.owner_id) == (640, 360, "user-1")
    assert created.create_time.seconds > 0
    meta, data, chunks = await get(media.stub, created.media_id)
    assert meta == created
    assert data == BLOB and hashlib.sha256(data).hexdigest() == created.sha256
    assert chunks == 5


async def test_ids_are_distinct_unguessable_and_url_safe(media):
    ids = [(await create(media.stub, b"x", kind=AUDIO, mime="audio/wav")).media_id for _ in range(20)]
    assert len(set(ids)) == 20
    assert all(len(i) >= 32 and re.fullmatch(r"[A-Za-z0-9_-]+", i) for i in ids)


async def test_image_size_comes_from_the_image(media):
    created = await create(media.stub, png(40, 30), width=1, height=1)
    assert (created.width, created.height) == (40, 30)


async def test_mime_aliases_are_stored_canonically(media):
    buf = io.BytesIO()
    Image.new("RGB", (5, 5)).save(buf, format="JPEG")
    assert (await create(media.stub, buf.getvalue(), mime="IMAGE/JPG")).mime_type == "image/jpeg"
    assert (await create(media.stub, b"ID3", kind=AUDIO, mime="audio/mp3")).mime_type == "audio/mpeg"


async def test_range_reads(media):
    media_id = (await create(media.stub, BLOB, kind=AUDIO, mime="audio/mpeg")).media_id
    meta, data, _ = await get(media.stub, media_id, offset=1000, length=2500)
    assert data == BLOB[1000:3500]
    assert meta.size_bytes == len(BLOB), "the metadata gives the whole size (for Content-Range)"
    assert (await get(media.stub, media_id, offset=4000))[1] == BLOB[4000:]
    assert (await get(media.stub, media_id, offset=4999, length=100))[1] == BLOB[4999:]
    for offset, length in ((5000, 0), (9999, 1), (-1, 0), (0, -5)):
        await invalid(get(media.stub, media_id, offset=offset, length=length), "range")


async def test_metadata_only(media):
    created = await create(media.stub, BLOB, kind=VIDEO, mime="video/webm")
    messages = [m async for m in media.stub.GetMedia(
        media_pb2.GetMediaRequest(media_id=created.media_id, metadata_only=True))]
    assert len(messages) == 1 and messages[0].media == created


@pytest.mark.parametrize(("fmt", "mime", "pillow"), [(WEBP, "image/webp", "WEBP"), (JPEG, "image/jpeg", "JPEG")])
async def test_transcoding(media, fmt, mime, pillow):
    original = await create(media.stub, png(64, 48))
    meta, data, _ = await get(media.stub, original.media_id, format=fmt)
    assert meta.mime_type == mime
    assert meta.size_bytes == len(data) and meta.sha256 == hashlib.sha256(data).hexdigest()
    assert (meta.media_id, meta.width, meta.height) == (original.media_id, 64, 48)
    image = Image.open(io.BytesIO(data))
    image.load()
    assert (image.format, image.size) == (pillow, (64, 48))
    # Ranges and metadata_only apply to the variant.
    assert (await get(media.stub, original.media_id, format=fmt, offset=10, length=20))[1] == data[10:30]
    assert (await get(media.stub, original.media_id, format=fmt, metadata_only=True))[0] == meta


async def test_asking_for_the_original_format_sends_the_original(media):
    data = png()
    created = await create(media.stub, data)
    meta, body, _ = await get(media.stub, created.media_id, format=PNG)
    assert (meta, body) == (created, data)


async def test_cache_hits_return_identical_bytes_without_transcoding_again(media, monkeypatch):
    calls = []
    real = transcode_module.transcode
    monkeypatch.setattr(transcode_module, "transcode", lambda *a: calls.append(1) or real(*a))
    media_id = (await create(media.stub, png(200, 200, "RGB", (10, 120, 200)))).media_id
    results = await asyncio.gather(*(get(media.stub, media_id, format=WEBP) for _ in range(5)))
    assert len(calls) == 1, "concurrent requests share one transcode"
    again = await get(media.stub, media_id, format=WEBP)
    assert len(calls) == 1
    assert {r[1] for r in [*results, again]} == {again[1]}
    assert {r[0].sha256 for r in results} == {again[0].sha256}
    assert len(media.servicer.transcoder.cache) == 1


async def test_sliding_expiry_in_the_service(media, monkeypatch):
    now = [0.0]
    media.servicer.transcoder.cache = TranscodeCache(10**6, 3600, clock=lambda: now[0])
    calls = []
    real = transcode_module.transcode
    monkeypatch.setattr(transcode_module, "transcode", lambda *a: calls.append(1) or real(*a))
    media_id = (await create(media.stub, png())).media_id
    for minutes in (0, 59, 59, 59):  # each hit restarts the hour
        now[0] += minutes * 60
        await get(media.stub, media_id, format=JPEG)
    assert len(calls) == 1
    now[0] += 61 * 60
    await get(media.stub, media_id, format=JPEG)
    assert len(calls) == 2


async def test_transcoding_errors(media):
    video = (await create(media.stub, BLOB, kind=VIDEO, mime="video/mp4")).media_id
    await invalid(get(media.stub, video, format=WEBP), "format")
    image = (await create(media.stub, png())).media_id
    await invalid(get(media.stub, image, format=42), "format")


async def test_decompression_bombs_are_refused(tmp_path):
    async with serve(settings_for(tmp_path, max_transcode_pixels=100 * 100)) as media:
        media_id = (await create(media.stub, png(101, 100))).media_id
        await expect_error(get(media.stub, media_id, format=WEBP), grpc.StatusCode.INVALID_ARGUMENT,
                           "PAYLOAD_TOO_LARGE", "format")
        assert (await get(media.stub, media_id))[1], "the original is still served"


async def test_delete(media):
    created = await create(media.stub, png())
    await get(media.stub, created.media_id, format=WEBP)
    blob = media.servicer.store.path(created.media_id)
    assert blob.exists()
    await media.stub.DeleteMedia(media_pb2.DeleteMediaRequest(media_id=created.media_id))
    assert not blob.exists()
    assert len(media.servicer.transcoder.cache) == 0
    await not_found(get(media.stub, created.media_id))
    await not_found(get(media.stub, created.media_id, format=WEBP))
    await not_found(media.stub.DeleteMedia(media_pb2.DeleteMediaRequest(media_id=created.media_id)))


async def test_delete_checks_the_owner(media):
    media_id = (await create(media.stub, png(), owner="alice")).media_id
    await not_found(media.stub.DeleteMedia(media_pb2.DeleteMediaRequest(media_id=media_id, owner_id="bob")))
    assert (await get(media.stub, media_id, metadata_only=True))[0].owner_id == "alice"
    await media.stub.DeleteMedia(media_pb2.DeleteMediaRequest(media_id=media_id, owner_id="alice"))
    await not_found(get(media.stub, media_id))


@pytest.mark.parametrize("media_id", [
    "", "short", "../../../../etc/passwd", "A" * 31 + "/", "." * 32, "A" * 33, "A" * 31 + "\n",
    "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ",  # well formed, unknown
])
async def test_malformed_and_unknown_ids_are_not_found(media, media_id):
    await not_found(get(media.stub, media_id))
    await not_found(get(media.stub, media_id, metadata_only=True))
    await not_found(media.stub.DeleteMedia(media_pb2.DeleteMediaRequest(media_id=media_id)))


@pytest.mark.parametrize(("fields", "param"), [
    ({"mime": "text/plain"}, "mime_type"),
    ({"mime": "image/bmp"}, "mime_type"),
    ({"kind": VIDEO}, "mime_type"),  # image/png is not a video
    ({"kind": media_pb2.MEDIA_KIND_UNSPECIFIED}, "kind"),
    ({"kind": 17}, "kind"),
    ({"owner": ""}, "owner_id"),
    ({"owner": "   "}, "owner_id"),
    ({"owner": "o" * 256}, "owner_id"),
    ({"data": b""}, "data"),
    ({"data": b"definitely not a png"}, "data"),
    ({"data": png()[:20]}, "data"),
    ({"mime": "image/jpeg"}, "mime_type"),  # PNG bytes labelled as JPEG
    ({"kind": VIDEO, "mime": "video/mp4", "width": -1}, "width"),
])
async def test_bad_uploads_are_invalid_requests(media, fields, param):
    data = fields.pop("data", png())
    await invalid(create(media.stub, data, **fields), param)


async def test_oversized_upload_is_payload_too_large(media):
    too_big = b"\0" * (media.settings.max_upload_bytes + 1)
    await expect_error(create(media.stub, too_big, kind=AUDIO, mime="audio/wav"),
                       grpc.StatusCode.INVALID_ARGUMENT, "PAYLOAD_TOO_LARGE", "data")


async def test_files_survive_a_restart(media_settings):
    async with serve(media_settings) as media:
        created = await create(media.stub, BLOB, kind=AUDIO, mime="audio/flac")
    async with serve(media_settings) as media:
        meta, data, _ = await get(media.stub, created.media_id)
    assert (meta, data) == (created, BLOB)


async def test_a_missing_blob_is_not_found_not_a_crash(media):
    created = await create(media.stub, png())
    media.servicer.store.path(created.media_id).unlink()
    call = media.stub.GetMedia(media_pb2.GetMediaRequest(media_id=created.media_id))
    await not_found(call.read())  # the error comes instead of the metadata, not after it
    await not_found(get(media.stub, created.media_id))
    await not_found(get(media.stub, created.media_id, format=WEBP))
