"""EditImages through real gRPC on the tiny pipelines: 1 to 4 references, output sizes, masks
(the inpainting pipeline), the base model, determinism, and bad inputs (not images, truncated,
decompression bombs, too many, too big) refused before any work."""

from __future__ import annotations

import numpy as np
import pytest

from tests.image.helpers import bomb_png, decode, picture, pixels, serve, settings_for
from tests.support.grpc_errors import expect_error
from univence.image.v1 import image_pb2 as pb

DISTILLED = "black-forest-labs/FLUX.2-klein-4B"
BASE = "black-forest-labs/FLUX.2-klein-base-4B"


def edit(*images: bytes, **fields) -> pb.EditImagesRequest:
    return pb.EditImagesRequest(**{"prompt": "make the background tropical", "input_images": list(images), **fields})


async def test_two_references_give_an_image_the_size_of_the_first(image):
    response = await image.stub.EditImages(edit(picture(96, 72, seed=1), picture(64, 64, seed=2), seed=9))
    assert response.model == DISTILLED
    [out] = response.images
    assert (out.width, out.height, out.seed, out.mime_type) == (96, 72, 9, "image/png")
    assert decode(out.data).size == (96, 72)


async def test_width_and_height_and_match_image_size(image):
    a, b = picture(96, 64, seed=1), picture(64, 64, fmt="JPEG", seed=2)
    sized = await image.stub.EditImages(edit(a, b, width=128, height=80, seed=1))
    assert decode(sized.images[0].data).size == (128, 80)
    odd = await image.stub.EditImages(edit(a, width=100, height=75, seed=1))  # not a multiple of 16: exact anyway
    assert decode(odd.images[0].data).size == (100, 75)
    matched = await image.stub.EditImages(edit(a, b, width=128, height=80, match_image_size=True, seed=1))
    assert decode(matched.images[0].data).size == (96, 64)


async def test_icons_and_thumbnails_are_scaled_up_to_what_the_model_reads(image):
    """Any decodable image is accepted: one under 64 px a side is scaled up (aspect ratio kept) until its
    short side is 64, and an edit that names no size follows the scaled image."""
    icon = await image.stub.EditImages(edit(picture(16, 16, seed=1), seed=3))
    [out] = icon.images
    assert (out.width, out.height) == decode(out.data).size == (64, 64)
    dot = await image.stub.EditImages(edit(picture(1, 1, seed=2), seed=3))
    assert decode(dot.images[0].data).size == (64, 64)
    thumb = await image.stub.EditImages(edit(picture(40, 20, seed=4), picture(8, 8, seed=5), seed=3))
    assert decode(thumb.images[0].data).size == (128, 64)
    matched = await image.stub.EditImages(edit(picture(16, 32, seed=6), match_image_size=True, seed=3))
    assert decode(matched.images[0].data).size == (64, 128)
    sized = await image.stub.EditImages(edit(picture(16, 16, seed=7), width=96, height=80, seed=3))
    assert decode(sized.images[0].data).size == (96, 80)
    alpha = np.full((16, 16), 255, np.uint8)
    alpha[4:12, 4:12] = 0
    mask = _png(np.dstack([np.zeros((16, 16, 3), np.uint8), alpha]), "RGBA")
    masked = await image.stub.EditImages(edit(picture(16, 16, seed=8), mask=mask, seed=3))
    assert decode(masked.images[0].data).size == (64, 64)


def _png(array: np.ndarray, mode: str) -> bytes:
    import io

    from PIL import Image
    out = io.BytesIO()
    Image.fromarray(array, mode).save(out, format="PNG")
    return out.getvalue()


async def test_up_to_four_references_of_any_accepted_format(image):
    inputs = [picture(64, 64, fmt=fmt, seed=i) for i, fmt in enumerate(("PNG", "JPEG", "WEBP", "GIF"))]
    response = await image.stub.EditImages(edit(*inputs, seed=2, n=2))
    assert [im.seed for im in response.images] == [2, 3]
    assert all(decode(im.data).size == (64, 64) for im in response.images)


async def test_same_seed_same_bytes_different_seed_or_reference_different_image(image):
    a, b = picture(64, 64, seed=1), picture(64, 64, seed=2)
    first = (await image.stub.EditImages(edit(a, seed=7))).images[0].data
    again = (await image.stub.EditImages(edit(a, seed=7))).images[0].data
    other_seed = (await image.stub.EditImages(edit(a, seed=8))).images[0].data
    other_reference = (await image.stub.EditImages(edit(b, seed=7))).images[0].data
    assert first == again
    assert first != other_seed and first != other_reference


async def test_a_drawn_seed_reproduces_the_edit(image):
    a = picture()
    out = (await image.stub.EditImages(edit(a))).images[0]
    assert (await image.stub.EditImages(edit(a, seed=out.seed))).images[0].data == out.data


async def test_base_model_edits_with_cfg(image):
    a = picture()
    one = await image.stub.EditImages(edit(a, model=BASE, seed=1, num_inference_steps=3, negative_prompt="rain"))
    two = await image.stub.EditImages(edit(a, model=BASE, seed=1, num_inference_steps=3, negative_prompt="snow"))
    assert one.model == BASE and one.images[0].data != two.images[0].data
    # text-to-image names mean the distilled model for edits
    assert (await image.stub.EditImages(edit(a, model="dall-e-2", seed=1))).model == DISTILLED


async def test_a_mask_repaints_the_image_with_the_inpainting_pipeline(image):
    base = picture(64, 64, seed=3)
    alpha = np.full((64, 64), 255, np.uint8)
    alpha[16:48, 16:48] = 0  # OpenAI's convention: transparent = edit
    rgba = np.dstack([np.zeros((64, 64, 3), np.uint8), alpha])
    import io

    from PIL import Image
    out = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(out, format="PNG")
    response = await image.stub.EditImages(edit(base, mask=out.getvalue(), seed=4))
    assert decode(response.images[0].data).size == (64, 64)
    no_mask = await image.stub.EditImages(edit(base, seed=4))
    assert response.images[0].data != no_mask.images[0].data
    white = picture(64, 64, mode="L")  # no alpha: white = edit
    assert (await image.stub.EditImages(edit(base, mask=white, seed=4))).images


@pytest.mark.parametrize(("build", "reason", "param"), [
    (lambda: edit(), "INVALID_REQUEST", "input_images"),
    (lambda: edit(*[picture()] * 5), "INVALID_REQUEST", "input_images"),
    (lambda: edit(picture(), picture(4, 40)), "INVALID_REQUEST", "input_images[1]"),  # 10:1, small or not
    (lambda: edit(picture(640, 64)), "INVALID_REQUEST", "input_images[0]"),
    (lambda: edit(picture(), prompt=""), "INVALID_REQUEST", "prompt"),
    (lambda: edit(picture(), prompt="x" * 4001), "PAYLOAD_TOO_LARGE", "prompt"),
    (lambda: edit(picture(), b"this is not an image"), "INVALID_REQUEST", "input_images[1]"),
    (lambda: edit(picture(), b""), "INVALID_REQUEST", "input_images[1]"),
    (lambda: edit(picture()[:60]), "INVALID_REQUEST", "input_images[0]"),
    (lambda: edit(bomb_png()), "PAYLOAD_TOO_LARGE", "input_images[0]"),
    (lambda: edit(bomb_png(100_000, 100_000)), "PAYLOAD_TOO_LARGE", "input_images[0]"),
    (lambda: edit(picture(), model="black-forest-labs/FLUX.1-dev"), "INVALID_REQUEST", "model"),
    (lambda: edit(picture(), width=32), "INVALID_REQUEST", "width"),
    (lambda: edit(picture(), height=4096), "INVALID_REQUEST", "height"),
    (lambda: edit(picture(), num_inference_steps=0), "INVALID_REQUEST", "num_inference_steps"),
    (lambda: edit(picture(), guidance_scale=99.0), "INVALID_REQUEST", "guidance_scale"),
    (lambda: edit(picture(), seed=-1), "INVALID_REQUEST", "seed"),
    (lambda: edit(picture(), n=9), "INVALID_REQUEST", "n"),
    (lambda: edit(picture(), picture(), mask=picture()), "INVALID_REQUEST", "mask"),
    (lambda: edit(picture(96, 64), mask=picture(64, 64)), "INVALID_REQUEST", "mask"),
    (lambda: edit(picture(), mask=b"nope"), "INVALID_REQUEST", "mask"),
])
async def test_bad_edit_requests(image, build, reason, param):
    error = await expect_error(image.stub.EditImages(build()), reason)
    assert error.param == param and error.message


async def test_limits_come_from_the_settings(tmp_path):
    settings = settings_for(max_input_image_mb=0.02, max_input_image_pixels=5000, max_input_images=2,
                            max_edit_side=96)
    async with serve(settings) as image:
        big = picture(100, 100, seed=1)
        assert len(big) > 0.02 * 1024 * 1024
        error = await expect_error(image.stub.EditImages(edit(big)), "PAYLOAD_TOO_LARGE")
        assert error.param == "input_images[0]"
        small = picture(64, 64, fmt="JPEG")
        await expect_error(image.stub.EditImages(edit(small, small, small)), "INVALID_REQUEST")
        error = await expect_error(image.stub.EditImages(edit(picture(80, 80, fmt="JPEG"))), "PAYLOAD_TOO_LARGE")
        assert "6400 pixels" in error.message
        error = await expect_error(image.stub.EditImages(edit(small, width=100)), "INVALID_REQUEST")
        assert error.param == "width"


async def test_defaults_follow_a_large_first_image_scaled_to_the_output_limit(tmp_path):
    async with serve(settings_for(max_edit_side=128)) as image:
        out = (await image.stub.EditImages(edit(picture(256, 192), seed=1))).images[0]
        assert (out.width, out.height) == (128, 96)
        error = await expect_error(image.stub.EditImages(edit(picture(256, 192), match_image_size=True)),
                                   "INVALID_REQUEST")
        assert error.param == "match_image_size"
    assert pixels(out.data).shape == (96, 128, 3)
