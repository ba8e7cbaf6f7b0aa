"""SegmentImage and RemoveImageBackground through a real gRPC client on the tiny SAM3 models: masks at
the input's size, point candidates ordered by score, the RGBA alpha equal to the mask, and every bad
input refused with its field."""

from __future__ import annotations

import numpy as np
import pytest

from services.vision.segment import alpha_of
from tests.support.grpc_errors import expect_error
from tests.vision.helpers import bomb_png, decode, picture
from univence.vision.v1 import vision_pb2 as pb

pytestmark = pytest.mark.asyncio(loop_scope="session")


def mask_of(data: bytes) -> np.ndarray:
    image = decode(data)
    assert image.format == "PNG" and image.mode == "L"
    return np.asarray(image)


@pytest.mark.parametrize("size", [(120, 90), (37, 91), (1, 1)])
async def test_a_text_prompt_gives_a_mask_at_the_input_size(vision, size):
    data = picture(*size, seed=3)
    reply = await vision.stub.SegmentImage(pb.SegmentImageRequest(image=data, prompt="segment person in image"))
    mask = mask_of(reply.mask)
    assert mask.shape == (size[1], size[0]) == (reply.height, reply.width) and reply.mime_type == "image/png"
    assert set(np.unique(mask)) <= {0, 255}
    assert not reply.candidate_masks and not reply.scores
    # the union of the instances the library's post-processing keeps, as the engine computes them
    found = vision.servicer.models.text.segment([np.asarray(decode(data).convert("RGB"))], "segment person in image")[0]
    assert np.array_equal(mask, found.mask)


async def test_the_tiny_model_answers_real_masks(vision):
    """Roughened weights: the tiny model finds instances, and its masks are neither empty nor full."""
    reply = await vision.stub.SegmentImage(pb.SegmentImageRequest(image=picture(120, 90, seed=3), prompt="person"))
    assert 0.0 < (mask_of(reply.mask) > 0).mean() < 1.0
    other = await vision.stub.SegmentImage(pb.SegmentImageRequest(image=picture(120, 90, seed=3), prompt="a red car"))
    assert other.mask != reply.mask  # the text reaches the model


async def test_points_give_three_candidates_ordered_by_score(vision):
    request = pb.SegmentImageRequest(image=picture(200, 150), points=[pb.Point(x=120, y=75), pb.Point(x=20, y=20)],
                                     point_labels=[1, 0], multimask_output=True)
    reply = await vision.stub.SegmentImage(request)
    assert len(reply.candidate_masks) == len(reply.scores) == 3
    assert list(reply.scores) == sorted(reply.scores, reverse=True) and len(set(reply.scores)) == 3
    assert reply.mask == reply.candidate_masks[0]
    for data in reply.candidate_masks:
        assert mask_of(data).shape == (150, 200)
    single = await vision.stub.SegmentImage(pb.SegmentImageRequest(image=picture(200, 150),
                                                                   points=[pb.Point(x=120, y=75)]))
    assert mask_of(single.mask).shape == (150, 200) and not single.candidate_masks


async def test_points_move_the_mask_and_labels_default_to_foreground(vision):
    async def mask(*points, labels=()):
        reply = await vision.stub.SegmentImage(pb.SegmentImageRequest(
            image=picture(200, 150, seed=1), points=[pb.Point(x=x, y=y) for x, y in points], point_labels=labels))
        return reply.mask
    assert await mask((10, 10)) != await mask((190, 140))
    assert await mask((10, 10), (50, 60)) == await mask((10, 10), (50, 60), labels=[1, 1])


async def test_remove_background_alpha_is_the_soft_mask(vision):
    data = picture(96, 64, seed=3)
    reply = await vision.stub.RemoveImageBackground(pb.RemoveImageBackgroundRequest(image=data, prompt="person"))
    image = decode(reply.image)
    assert image.mode == "RGBA" and image.size == (96, 64) == (reply.width, reply.height)
    assert reply.mime_type == "image/png"
    rgba = np.asarray(image)
    assert np.array_equal(rgba[..., :3], np.asarray(decode(data).convert("RGB")))
    found = vision.servicer.models.text.segment([rgba[..., :3].copy()], "person")[0]
    assert np.array_equal(rgba[..., 3], alpha_of(found.soft))
    # the same object SegmentImage selects: alpha of at least half is the mask
    mask = mask_of((await vision.stub.SegmentImage(pb.SegmentImageRequest(image=data, prompt="person"))).mask)
    assert np.array_equal(rgba[..., 3] >= 128, mask > 0)
    assert len(np.unique(rgba[..., 3])) > 2  # soft edges, not a cut-out


async def test_remove_background_without_a_prompt_keeps_the_most_salient_object(vision):
    data = picture(96, 64, seed=4)
    rgba = np.asarray(decode((await vision.stub.RemoveImageBackground(
        pb.RemoveImageBackgroundRequest(image=data))).image))
    best = vision.servicer.models.text.segment([rgba[..., :3].copy()], "object", best_only=True)[0]
    assert len(best.scores) == 1
    assert np.array_equal(rgba[..., 3], alpha_of(best.soft))
    empty = await vision.stub.RemoveImageBackground(pb.RemoveImageBackgroundRequest(image=data, prompt=" "))
    assert empty.image == (await vision.stub.RemoveImageBackground(pb.RemoveImageBackgroundRequest(image=data))).image


def _segment(**fields) -> pb.SegmentImageRequest:
    fields.setdefault("image", picture(40, 30))
    return pb.SegmentImageRequest(**fields)


@pytest.mark.parametrize(("request_", "reason", "param", "words"), [
    (_segment(), "INVALID_REQUEST", "prompt", "at least one"),
    (_segment(prompt="   "), "INVALID_REQUEST", "prompt", "at least one"),
    (_segment(image=b"GIF89a but not really", prompt="x"), "INVALID_REQUEST", "image", "not an image"),
    (_segment(image=picture(40, 30)[:100], prompt="x"), "INVALID_REQUEST", "image", "truncated"),
    (_segment(image=bomb_png(), prompt="x"), "PAYLOAD_TOO_LARGE", "image", "pixels"),
    (_segment(prompt="x" * 1001), "PAYLOAD_TOO_LARGE", "prompt", "1000"),
    (_segment(prompt="a\x00b"), "INVALID_REQUEST", "prompt", "NUL"),
    (_segment(points=[pb.Point(x=5, y=5)], point_labels=[1, 0]), "INVALID_REQUEST", "point_labels", "2 labels for 1"),
    (_segment(points=[pb.Point(x=5, y=5)], point_labels=[2]), "INVALID_REQUEST", "point_labels[0]", "1 (foreground)"),
    (_segment(prompt="x", point_labels=[1]), "INVALID_REQUEST", "point_labels", "without points"),
    (_segment(points=[pb.Point(x=5, y=5), pb.Point(x=40, y=5)]), "INVALID_REQUEST", "points[1]", "outside the 40x30"),
    (_segment(points=[pb.Point(x=-1, y=5)]), "INVALID_REQUEST", "points[0]", "outside"),
    (_segment(points=[pb.Point(x=float("nan"), y=5)]), "INVALID_REQUEST", "points[0]", "finite"),
    (_segment(points=[pb.Point(x=1, y=1)] * 17), "PAYLOAD_TOO_LARGE", "points", "at most 16"),
    (_segment(prompt="person", multimask_output=True), "INVALID_REQUEST", "multimask_output", "needs points"),
])
async def test_bad_segmentation_requests(vision, request_, reason, param, words):
    error = await expect_error(vision.stub.SegmentImage(request_), reason)
    assert error.param == param and words in error.message


@pytest.mark.parametrize(("request_", "reason", "param"), [
    (pb.RemoveImageBackgroundRequest(image=b"\x89PNG\r\n\x1a\nnonsense"), "INVALID_REQUEST", "image"),
    (pb.RemoveImageBackgroundRequest(image=bomb_png()), "PAYLOAD_TOO_LARGE", "image"),
    (pb.RemoveImageBackgroundRequest(image=picture(8, 8), prompt="p" * 5000), "PAYLOAD_TOO_LARGE", "prompt"),
])
async def test_bad_background_removal_requests(vision, request_, reason, param):
    assert (await expect_error(vision.stub.RemoveImageBackground(request_), reason)).param == param
