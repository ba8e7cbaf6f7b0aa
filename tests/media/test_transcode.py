"""The Pillow transcoding function on its own: formats, transparency, animation, limits."""

from __future__ import annotations

import asyncio
import io

import pytest
from PIL import Image

from services.common.errors import Reason, ServiceError
from services.common.workqueue import WorkQueue
from services.media.transcode import TranscodeCache, Transcoder, transcode
from tests.media.helpers import png


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_transparent_png_to_jpeg_is_flattened_on_white():
    out = transcode(png(8, 8, "RGBA", (0, 0, 0, 0)), "image/jpeg", 10**6)
    image = decode(out.data)
    assert image.format == "JPEG" and image.mode == "RGB" and image.size == (8, 8)
    assert all(c > 245 for c in image.getpixel((4, 4)))


@pytest.mark.parametrize(("target", "fmt"), [("image/webp", "WEBP"), ("image/png", "PNG")])
def test_animated_gif_keeps_its_frames(target, fmt):
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    image = decode(transcode(buf.getvalue(), target, 10**6).data)
    assert image.format == fmt and image.n_frames == 3


def test_cmyk_jpeg_to_webp():
    buf = io.BytesIO()
    Image.new("CMYK", (10, 10), (0, 255, 0, 0)).save(buf, format="JPEG")
    assert decode(transcode(buf.getvalue(), "image/webp", 10**6).data).format == "WEBP"


def test_too_many_pixels_is_payload_too_large():
    with pytest.raises(ServiceError) as caught:
        transcode(png(100, 100), "image/webp", 9_999)
    assert caught.value.reason == Reason.ERROR_REASON_PAYLOAD_TOO_LARGE
    assert caught.value.param == "format"


def test_pillow_decompression_bomb_error_is_payload_too_large(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow refuses past twice this
    with pytest.raises(ServiceError) as caught:
        transcode(png(100, 100), "image/webp", 10**9)
    assert caught.value.reason == Reason.ERROR_REASON_PAYLOAD_TOO_LARGE


def test_undecodable_stored_image_is_invalid():
    truncated = png(64, 64, "RGB", (1, 2, 3))[:60]
    with pytest.raises(ServiceError) as caught:
        transcode(truncated, "image/jpeg", 10**6)
    assert caught.value.reason == Reason.ERROR_REASON_INVALID_REQUEST


async def test_a_file_deleted_while_transcoding_stays_out_of_the_cache():
    transcoder = Transcoder(WorkQueue("test", max_pending=4), TranscodeCache(10**6, 3600), 10**6)
    release = asyncio.Event()

    async def load() -> bytes:
        await release.wait()
        return png()

    pending = asyncio.create_task(transcoder.variant("id", "image/webp", load))
    await asyncio.sleep(0)
    transcoder.forget("id")
    release.set()
    assert (await pending).data
    assert len(transcoder.cache) == 0
    assert (await transcoder.variant("id", "image/webp", load)).data
    assert len(transcoder.cache) == 1
    transcoder.close()
