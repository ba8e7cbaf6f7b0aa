"""GET /v1/media/{id}: public, cached with ETag/304, Vary: User-Agent, Range, and transcoding."""

from __future__ import annotations

import io

from PIL import Image

from tests.edge.test_auth import assert_envelope
from univence.media.v1 import media_pb2


def png_bytes(size=(64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGBA", size, (200, 30, 60, 255)).save(buffer, format="PNG")
    return buffer.getvalue()


async def stored(platform, data: bytes, mime="image/png", kind=media_pb2.MEDIA_KIND_IMAGE, owner="usr_x") -> str:
    response = await platform.media.CreateMedia(media_pb2.CreateMediaRequest(
        owner_id=owner, kind=kind, mime_type=mime, data=data))
    return response.media.media_id


async def test_get_is_public_and_cacheable(platform, http):
    data = png_bytes()
    media_id = await stored(platform, data)
    response = await http.get(f"/v1/media/{media_id}")
    assert response.status_code == 200 and response.content == data
    assert response.headers["content-type"] == "image/png"
    assert response.headers["cache-control"].startswith("public")
    assert response.headers["vary"] == "User-Agent"
    assert response.headers["content-length"] == str(len(data))
    etag = response.headers["etag"]
    again = await http.get(f"/v1/media/{media_id}", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    head = await http.head(f"/v1/media/{media_id}")
    assert head.status_code == 200 and head.headers["content-length"] == str(len(data))


async def test_ranges(platform, http):
    data = bytes(range(256)) * 40
    media_id = await stored(platform, data, mime="video/mp4", kind=media_pb2.MEDIA_KIND_VIDEO)
    url = f"/v1/media/{media_id}"
    part = await http.get(url, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == data[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(data)}"
    tail = await http.get(url, headers={"Range": "bytes=-100"})
    assert tail.status_code == 206 and tail.content == data[-100:]
    rest = await http.get(url, headers={"Range": f"bytes={len(data) - 5}-"})
    assert rest.content == data[-5:]
    beyond = await http.get(url, headers={"Range": f"bytes={len(data) + 10}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{len(data)}"


async def test_transcoding(platform, http):
    media_id = await stored(platform, png_bytes((40, 30)))
    for fmt, mime, pil in (("webp", "image/webp", "WEBP"), ("jpeg", "image/jpeg", "JPEG"), ("png", "image/png", "PNG")):
        response = await http.get(f"/v1/media/{media_id}", params={"format": fmt})
        assert response.status_code == 200 and response.headers["content-type"] == mime
        image = Image.open(io.BytesIO(response.content))
        assert image.format == pil and image.size == (40, 30)
    assert_envelope(await http.get(f"/v1/media/{media_id}", params={"format": "bmp"}), 400, "invalid_request_error")


async def test_unknown_and_malformed_ids_are_404(http):
    for media_id in ("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "short", "..%2F..%2Fetc%2Fpasswd", "a" * 200):
        response = await http.get(f"/v1/media/{media_id}")
        assert response.status_code == 404, media_id
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error"
        # An id's shape is named back; anything else (a path, 200 characters) is not echoed.
        assert (media_id in error["message"]) == (media_id == "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), error
