"""UpscaleImage through a real gRPC client: exact sizes for every method, Lanczos equal to Pillow's own,
tiles equal to one untiled call, alpha kept, and the requests refused before any work."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from services.vision.catalog import UPSCALE_MODELS
from tests.support.grpc_errors import expect_error
from tests.vision.helpers import bomb_png, decode, encoded, picture
from univence.common.v1 import common_pb2
from univence.vision.v1 import vision_pb2 as pb

pytestmark = pytest.mark.asyncio(loop_scope="session")
M = pb.UpscaleMethod
SCALES = {M.UPSCALE_METHOD_REALESRGAN_2X: 2, M.UPSCALE_METHOD_REALESRGAN_4X: 4, M.UPSCALE_METHOD_REALESRGAN_4X_ANIME: 4,
          M.UPSCALE_METHOD_SWIN2SR: 4, M.UPSCALE_METHOD_LANCZOS: 2, M.UPSCALE_METHOD_UNSPECIFIED: 4}


@pytest.mark.parametrize("method", list(SCALES))
@pytest.mark.parametrize("size", [(37, 23), (5, 41), (1, 1)])
async def test_every_method_returns_exactly_the_scaled_size(vision, method, size):
    reply = await vision.stub.UpscaleImage(pb.UpscaleImageRequest(image=picture(*size), method=method))
    scale = SCALES[method]
    image = decode(reply.image)
    assert image.size == (reply.width, reply.height) == (size[0] * scale, size[1] * scale)
    assert reply.mime_type == "image/png" and image.format == "PNG" and image.mode == "RGB"


async def test_lanczos_2x_of_300x200_is_pillow_s_own_result(vision):
    data = picture(300, 200, seed=3)
    reply = await vision.stub.UpscaleImage(pb.UpscaleImageRequest(image=data, method=M.UPSCALE_METHOD_LANCZOS))
    assert (reply.width, reply.height) == (600, 400)
    expected = decode(data).resize((600, 400), Image.Resampling.LANCZOS)
    assert decode(reply.image).tobytes() == expected.tobytes()
    three = await vision.stub.UpscaleImage(pb.UpscaleImageRequest(image=data, method=M.UPSCALE_METHOD_LANCZOS, scale=3))
    assert decode(three.image).tobytes() == decode(data).resize((900, 600), Image.Resampling.LANCZOS).tobytes()


@pytest.mark.parametrize("method", ["realesrgan_4x", "realesrgan_2x", "realesrgan_4x_anime", "swin2sr"])
async def test_tiles_equal_one_untiled_model_call(vision, method):
    """The service runs 32-pixel tiles with 24 pixels of context (conftest); the tiny models see less
    than that, so the tiled result is the untiled one (up to rounding at .5)."""
    data = picture(100, 70, seed=5)
    model = next(m for m in UPSCALE_MODELS if m.id == method)
    reply = await vision.stub.UpscaleImage(pb.UpscaleImageRequest(image=data, method=model.method))
    untiled = vision.servicer.models.upscalers[method].upscale(decode(data), tile=0, overlap=0)
    tiled = np.asarray(decode(reply.image), np.int16)
    assert tiled.shape == np.asarray(untiled).shape
    assert np.abs(tiled - np.asarray(untiled, np.int16)).max() <= 1
    assert tiled.std() > 1  # not a flat answer that would prove nothing


async def test_tiles_report_progress_and_cover_the_image(vision):
    seen = []
    upscaler = vision.servicer.models.upscalers["realesrgan_4x_anime"]
    out = upscaler.upscale(decode(picture(50, 40)), tile=16, overlap=4, on_tile=lambda d, t: seen.append((d, t)))
    assert out.size == (200, 160) and seen == [(i, 12) for i in range(1, 13)]


async def test_alpha_is_kept_and_other_encodings_are_offered(vision):
    data = picture(33, 21, mode="RGBA", seed=2)
    reply = await vision.stub.UpscaleImage(pb.UpscaleImageRequest(image=data, method=M.UPSCALE_METHOD_REALESRGAN_4X))
    image = decode(reply.image)
    assert image.mode == "RGBA" and image.size == (132, 84)
    assert image.getchannel("A").tobytes() == decode(data).getchannel("A").resize(
        (132, 84), Image.Resampling.LANCZOS).tobytes()
    for fmt, mime in ((common_pb2.IMAGE_FORMAT_JPEG, "image/jpeg"), (common_pb2.IMAGE_FORMAT_WEBP, "image/webp")):
        reply = await vision.stub.UpscaleImage(pb.UpscaleImageRequest(image=data, output_format=fmt,
                                                                      method=M.UPSCALE_METHOD_LANCZOS))
        assert reply.mime_type == mime and decode(reply.image).size == (66, 42)


async def test_a_gif_and_an_exif_rotated_jpeg_are_read_upright(vision):
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees: shown 20 wide, 30 high
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", exif=exif)
    reply = await vision.stub.UpscaleImage(pb.UpscaleImageRequest(image=buffer.getvalue(),
                                                                  method=M.UPSCALE_METHOD_LANCZOS))
    assert (reply.width, reply.height) == (40, 60)
    gif = await vision.stub.UpscaleImage(pb.UpscaleImageRequest(image=encoded(photo.convert("P"), "GIF"),
                                                                method=M.UPSCALE_METHOD_REALESRGAN_2X))
    assert (gif.width, gif.height) == (60, 40)


@pytest.mark.parametrize(("request_", "reason", "param", "words"), [
    (pb.UpscaleImageRequest(image=b"not an image"), "INVALID_REQUEST", "image", "not an image"),
    (pb.UpscaleImageRequest(), "INVALID_REQUEST", "image", "empty"),
    (pb.UpscaleImageRequest(image=picture(40, 30)[:120]), "INVALID_REQUEST", "image", "truncated"),
    (pb.UpscaleImageRequest(image=bomb_png()), "PAYLOAD_TOO_LARGE", "image", "pixels"),
    # 3000x3000 is a valid input, but x4 would be 144 megapixels: refused from the header alone
    (pb.UpscaleImageRequest(image=bomb_png(3000, 3000)), "PAYLOAD_TOO_LARGE", "image", "output pixels"),
    (pb.UpscaleImageRequest(image=picture(8, 8), method=99), "INVALID_REQUEST", "method", "unknown method"),
    (pb.UpscaleImageRequest(image=picture(8, 8), method=M.UPSCALE_METHOD_REALESRGAN_4X, scale=2), "INVALID_REQUEST",
     "scale", "4x only"),
    (pb.UpscaleImageRequest(image=picture(8, 8), method=M.UPSCALE_METHOD_LANCZOS, scale=9), "INVALID_REQUEST",
     "scale", "between 2 and 4"),
    (pb.UpscaleImageRequest(image=picture(8, 8), output_format=17), "INVALID_REQUEST", "output_format", "unknown"),
    (pb.UpscaleImageRequest(image=bomb_png(4100, 100), output_format=common_pb2.IMAGE_FORMAT_WEBP),
     "INVALID_REQUEST", "output_format", "too large for WEBP"),
])
async def test_bad_requests_are_refused_before_any_work(vision, request_, reason, param, words):
    error = await expect_error(vision.stub.UpscaleImage(request_), reason)
    assert error.param == param and words in error.message
