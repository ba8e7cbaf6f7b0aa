"""GenerateImages and BatchGenerateImages through real gRPC on the tiny FLUX.2 klein pipelines:
sizes and model rules, seeds and determinism, batching of compatible requests, CFG on the base model,
the full queue, and every bad input answered with its ErrorInfo reason and param."""

from __future__ import annotations

import asyncio

import grpc
import numpy as np
import pytest

from services.image.pipelines import KleinPipelines
from tests.image.helpers import decode, pixels, serve, settings_for
from tests.support.grpc_errors import expect_error, status_error_info
from univence.common.v1 import common_pb2
from univence.image.v1 import image_pb2 as pb


def request(**fields) -> pb.GenerateImagesRequest:
    return pb.GenerateImagesRequest(**{"prompt": "a red fox in the snow", "width": 256, "height": 256, **fields})


async def test_an_alias_runs_z_image_turbo_and_answers_a_png_of_the_size(image):
    response = await image.stub.GenerateImages(request(model="dall-e-3", seed=3))
    assert response.model == "z-image-turbo"
    [out] = response.images
    assert (out.mime_type, out.width, out.height, out.seed) == ("image/png", 256, 256, 3)
    picture = decode(out.data)
    assert (picture.format, picture.size, picture.mode) == ("PNG", (256, 256), "RGB")


async def test_defaults_are_z_image_turbo_at_1024_and_a_drawn_seed_is_returned(image):
    response = await image.stub.GenerateImages(pb.GenerateImagesRequest(prompt="a lighthouse"))
    [out] = response.images
    assert response.model == "z-image-turbo" and (out.width, out.height) == (1024, 1024)
    assert decode(out.data).size == (1024, 1024)
    again = await image.stub.GenerateImages(pb.GenerateImagesRequest(prompt="a lighthouse", seed=out.seed))
    assert again.images[0].data == out.data


async def test_same_seed_same_bytes_and_different_seeds_different_images(image):
    first = (await image.stub.GenerateImages(request(seed=12345))).images[0].data
    second = (await image.stub.GenerateImages(request(seed=12345))).images[0].data
    other = (await image.stub.GenerateImages(request(seed=12346))).images[0].data
    assert first == second
    assert np.abs(pixels(first) - pixels(other)).mean() > 10


async def test_the_prompt_matters(image):
    a = (await image.stub.GenerateImages(request(seed=1, prompt="a cat"))).images[0].data
    b = (await image.stub.GenerateImages(request(seed=1, prompt="a submarine"))).images[0].data
    assert a != b


async def test_n_images_take_seed_plus_i(image):
    response = await image.stub.GenerateImages(request(seed=40, n=3))
    assert [im.seed for im in response.images] == [40, 41, 42]
    assert len({im.data for im in response.images}) == 3
    alone = (await image.stub.GenerateImages(request(seed=41))).images[0].data
    # image 1 came from a batch of three, the other alone: the same noise, the same picture (batched
    # matrix products may round a few pixels one level differently; see the batching test)
    assert np.abs(pixels(response.images[1].data) - pixels(alone)).max() <= 2


async def test_output_formats(image):
    for fmt, mime, pillow in ((common_pb2.IMAGE_FORMAT_JPEG, "image/jpeg", "JPEG"),
                              (common_pb2.IMAGE_FORMAT_WEBP, "image/webp", "WEBP")):
        out = (await image.stub.GenerateImages(request(seed=1, output_format=fmt))).images[0]
        assert out.mime_type == mime and decode(out.data).format == pillow


async def test_longcat_has_its_own_size_limit(image):
    ok = await image.stub.GenerateImages(request(model="longcat-image-edit", seed=1))
    assert ok.model == "longcat-image-edit"
    error = await expect_error(image.stub.GenerateImages(request(model="longcat-image-edit", width=1024, height=1792)),
                               "INVALID_REQUEST")
    assert error.param == "image_size" and "1792x1024" in error.message


async def test_concurrent_compatible_requests_share_one_pipeline_call_and_keep_their_seeds(tmp_path):
    seeds = [11, 12, 13, 14]
    async with serve(settings_for(max_batch_size=4, max_batch_wait_ms=2000)) as image:
        calls: list[int] = []
        generate = KleinPipelines.generate

        def counting(self, jobs):  # observes the real call; the pipeline itself runs unchanged
            calls.append(len(jobs))
            return generate(self, jobs)

        image.servicer.models.generate = counting.__get__(image.servicer.models)
        batched = await asyncio.gather(*(image.stub.GenerateImages(request(seed=s, prompt=f"item {s}"))
                                         for s in seeds))
        assert calls == [4]  # a full batch runs at once, without waiting out the 2 s
    async with serve(settings_for(max_batch_size=1)) as image:  # the same tiny weights, every image alone
        alone = [await image.stub.GenerateImages(request(seed=s, prompt=f"item {s}")) for s in seeds]
    for together, single in zip(batched, alone, strict=True):
        a, b = pixels(together.images[0].data), pixels(single.images[0].data)
        # each item drew its own seed's noise: the same picture as alone (a batched matrix product may
        # round a handful of pixels one level off), and nothing like its neighbours
        assert np.abs(a - b).max() <= 2 and (a != b).mean() < 0.01
    assert np.abs(pixels(batched[0].images[0].data) - pixels(batched[1].images[0].data)).mean() > 10


async def test_incompatible_requests_never_share_a_call(tmp_path):
    async with serve(settings_for(max_batch_size=4, max_batch_wait_ms=300)) as image:
        calls: list[tuple] = []
        generate = KleinPipelines.generate

        def counting(self, jobs):
            calls.append(tuple(job.batch_key for job in jobs))
            return generate(self, jobs)

        image.servicer.models.generate = counting.__get__(image.servicer.models)
        await asyncio.gather(image.stub.GenerateImages(request(seed=1)),
                             image.stub.GenerateImages(request(seed=1, width=512, height=512)),
                             image.stub.GenerateImages(request(seed=1, num_inference_steps=2)),
                             image.stub.GenerateImages(request(seed=2, model="longcat-image-edit")))
        # z-image-turbo and longcat-image-edit run on the same pipeline, so those two share a call
        assert sorted(len(c) for c in calls) == [1, 1, 2] and all(len(set(c)) == 1 for c in calls)


async def test_base_model_runs_cfg_with_the_negative_prompt_and_the_distilled_model_ignores_it(image):
    base = "black-forest-labs/FLUX.2-klein-base-4B"
    with_neg = await image.stub.GenerateImages(request(model=base, seed=5, num_inference_steps=4, guidance_scale=4.0,
                                                       negative_prompt="a dog"))
    other_neg = await image.stub.GenerateImages(request(model=base, seed=5, num_inference_steps=4, guidance_scale=4.0,
                                                        negative_prompt="a boat"))
    assert with_neg.model == base and with_neg.images[0].data != other_neg.images[0].data
    distilled = [await image.stub.GenerateImages(request(seed=5, negative_prompt=neg)) for neg in ("a dog", "a boat")]
    assert distilled[0].images[0].data == distilled[1].images[0].data


async def test_batch_answers_in_order_and_a_bad_item_fails_alone(image):
    response = await image.stub.BatchGenerateImages(pb.BatchGenerateImagesRequest(requests=[
        request(seed=1, prompt="a red sports car"),
        request(seed=2, width=300, height=300),
        request(seed=3, prompt="a blue ocean wave", width=512, height=512),
    ]))
    first, bad, third = response.results
    assert first.WhichOneof("result") == "response" and first.response.images[0].seed == 1
    assert (third.response.images[0].width, third.response.images[0].height) == (512, 512)
    assert bad.WhichOneof("result") == "error"
    error = status_error_info(bad.error)
    assert (error.code, error.reason, error.param) == (
        grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST", "requests[1].image_size")
    alone = await image.stub.GenerateImages(request(seed=1, prompt="a red sports car"))
    assert np.abs(pixels(alone.images[0].data) - pixels(first.response.images[0].data)).max() <= 2


async def test_batch_holds_one_to_five_requests(image):
    error = await expect_error(image.stub.BatchGenerateImages(pb.BatchGenerateImagesRequest(
        requests=[request()] * 6)), "INVALID_REQUEST")
    assert error.param == "requests"
    await expect_error(image.stub.BatchGenerateImages(pb.BatchGenerateImagesRequest()), "INVALID_REQUEST")
    response = await image.stub.BatchGenerateImages(pb.BatchGenerateImagesRequest(requests=[request(n=2)]))
    assert status_error_info(response.results[0].error).param == "requests[0].n"


@pytest.mark.parametrize(("fields", "reason", "param"), [
    ({"prompt": ""}, "INVALID_REQUEST", "prompt"),
    ({"prompt": "   "}, "INVALID_REQUEST", "prompt"),
    ({"prompt": "x" * 4001}, "PAYLOAD_TOO_LARGE", "prompt"),
    ({"negative_prompt": "x" * 4001}, "PAYLOAD_TOO_LARGE", "negative_prompt"),
    ({"model": "gpt-image-1"}, "INVALID_REQUEST", "model"),
    ({"width": 300, "height": 300}, "INVALID_REQUEST", "image_size"),
    ({"width": 2048, "height": 2048}, "INVALID_REQUEST", "image_size"),
    ({"n": 5}, "INVALID_REQUEST", "n"),
    ({"n": -1}, "INVALID_REQUEST", "n"),
    ({"num_inference_steps": 0}, "INVALID_REQUEST", "num_inference_steps"),
    ({"num_inference_steps": 1000}, "INVALID_REQUEST", "num_inference_steps"),
    ({"guidance_scale": float("nan")}, "INVALID_REQUEST", "guidance_scale"),
    ({"guidance_scale": -1.0}, "INVALID_REQUEST", "guidance_scale"),
    ({"seed": -5}, "INVALID_REQUEST", "seed"),
    ({"output_format": 42}, "INVALID_REQUEST", "output_format"),
])
async def test_bad_generation_requests(image, fields, reason, param):
    error = await expect_error(image.stub.GenerateImages(request(**fields)), reason)
    assert error.param == param and error.message


async def test_a_full_queue_refuses_at_once(tmp_path):
    async with serve(settings_for(queue_max_pending=1, max_batch_wait_ms=0)) as image:
        slow = asyncio.ensure_future(image.stub.GenerateImages(request(width=1024, height=1024,
                                                                       num_inference_steps=12)))
        while image.servicer.queue.pending == 0:
            await asyncio.sleep(0.005)
        error = await expect_error(image.stub.GenerateImages(request()), "QUEUE_FULL")
        assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert len((await slow).images) == 1
        # an n=2 request that only half fits is refused whole, and leaves nothing behind
        await expect_error(image.stub.GenerateImages(request(n=2)), "QUEUE_FULL")
        await asyncio.sleep(0.05)
        assert image.servicer.queue.pending == 0
        assert len((await image.stub.GenerateImages(request())).images) == 1


async def test_a_deadline_that_passes_while_waiting_is_deadline_exceeded(tmp_path):
    async with serve(settings_for(max_batch_wait_ms=0)) as image:
        slow = asyncio.ensure_future(image.stub.GenerateImages(request(width=1024, height=1024,
                                                                       num_inference_steps=12)))
        while image.servicer.queue.pending == 0:
            await asyncio.sleep(0.005)
        with pytest.raises(grpc.RpcError) as failed:
            await image.stub.GenerateImages(request(width=512, height=512), timeout=0.05)
        assert failed.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        await slow
