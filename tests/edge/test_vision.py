"""Vision end to end: the reference's curl examples (as httpx requests, multipart fields as written)
against the real edge, accounts and media services and the tiny vision service over gRPC.

Credits follow the default price table: segmentation and image background removal 250 mc, video
background removal 250 mc per frame with the object, upscaling per output megapixel by method (lanczos
100, realesrgan_2x 300, realesrgan_4x and _anime 500, swin2sr 750; at least 100). Where a test needs to
know what the model finds (which frames hold the object, the mask), it replaces the model's answer in
the service, which runs in this event loop (tiny SAM3's random weights find what they find)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json

import numpy as np
import pytest
import pytest_asyncio
from PIL import Image

from services.vision.segment import TextMask
from tests.edge.test_auth import assert_envelope
from tests.edge.vision_stack import (
    MAX_BODY_MB,
    MAX_IMAGE_MB,
    MAX_VIDEO_MB,
    MIB,
    SCALES,
    START_MC,
    b64,
    decode_png,
    file_part,
    photo,
    running_stack,
    truncated_video,
    twenty_minute_video,
    upscale_price,
    video,
    webm_frames,
)
from tests.image.helpers import bomb_png
from tests.support.timing import upstream_ms
from tests.support.waiting import eventually
from univence.vision.v1 import vision_pb2

pytestmark = pytest.mark.asyncio(loop_scope="module")  # one vision service and platform for the module


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory):
    async with running_stack(tmp_path_factory.mktemp("vision")) as stack:
        yield stack


# -- the reference's curl examples, as written --------------------------------------------------------------------

async def test_reference_curl_examples(stack):
    user_id, headers = await stack.user("curl@example.com")
    http = stack.http
    jpeg = photo(640, 480, fmt="JPEG")

    text = await http.post("/v1/images/segmentations", headers=headers, files=file_part(jpeg),
                           data={"prompt": "segment person in image"})
    assert text.status_code == 200, text.text
    assert text.headers["content-type"] == "image/png" and text.headers["x-univence-profile"] == "tiny"
    assert upstream_ms(text.headers, "vision") > 0
    mask = decode_png(text.content)
    assert mask.size == (640, 480) and set(np.unique(np.asarray(mask.convert("L")))) <= {0, 255}

    points = await http.post("/v1/images/segmentations", headers=headers, files=file_part(jpeg), data={
        "point_coords": "[[520,375],[100,200]]", "point_labels": "[1,0]", "multimask_output": "true"})
    assert points.status_code == 200, points.text
    assert points.headers["content-type"] == "image/png"
    masks = decode_png(points.content)
    scores = [float(s) for s in points.headers["x-mask-scores"].split(",")]
    assert masks.size == (640, 480) and getattr(masks, "n_frames", 1) == len(scores) == 3

    upscaled = await http.post("/v1/images/upscale", headers={**headers, "Content-Type": "application/json"},
                               json={"image": b64(photo(40, 30)), "method": "realesrgan_4x"})
    assert upscaled.status_code == 200, upscaled.text
    body = upscaled.json()
    assert set(body) == {"created", "data"} and body["created"] > 0 and set(body["data"][0]) == {"b64_json"}
    assert decode_png(base64.b64decode(body["data"][0]["b64_json"])).size == (160, 120)

    removed = await http.post("/v1/images/remove-background", headers=headers,
                              files=file_part(photo(128, 96, fmt="JPEG"), "photo.jpg"), data={"prompt": "person"})
    assert removed.status_code == 200 and removed.headers["content-type"] == "image/png"
    rgba = decode_png(removed.content)
    assert rgba.mode == "RGBA" and rgba.size == (128, 96)

    clip = await http.post("/v1/videos/remove-background", headers=headers,
                           files=file_part(video(frames=4), "video.mp4", "video/mp4"),
                           data={"prompt": "person walking"})
    assert clip.status_code == 200, clip.text
    assert clip.headers["content-type"] == "video/webm" and clip.headers["x-total-frames"] == "4"
    assert upstream_ms(clip.headers, "vision") > 0  # a progress stream's time, to its result
    assert len(webm_frames(clip.content)) == 4
    served = await http.get(f"/v1/media/{clip.headers['x-media-id']}")
    assert served.status_code == 200 and served.content == clip.content
    assert served.headers["content-type"] == "video/webm"

    video_mc = 250 * int(clip.headers["x-frames-with-object"])
    assert await stack.balance(user_id) == (START_MC - 250 * 3 - upscale_price("realesrgan_4x", 40, 30) - video_mc, 0)
    assert await stack.media_count(user_id) == 5


# -- segmentation ---------------------------------------------------------------------------------------------

async def test_multimask_is_an_apng_of_the_service_s_candidates_best_first(stack):
    _, headers = await stack.user("multimask@example.com")
    image = photo(200, 150)
    response = await stack.http.post("/v1/images/segmentations", headers=headers, files=file_part(image),
                                     data={"point_coords": "[[50,40]]", "multimask_output": "1"})
    assert response.status_code == 200, response.text
    direct = await stack.vision.stub.SegmentImage(vision_pb2.SegmentImageRequest(
        image=image, points=[vision_pb2.Point(x=50, y=40)], multimask_output=True))
    assert len(direct.candidate_masks) == 3
    scores = [float(s) for s in response.headers["x-mask-scores"].split(",")]
    assert scores == [round(s, 4) for s in direct.scores] and scores == sorted(scores, reverse=True)
    apng = Image.open(io.BytesIO(response.content))
    assert apng.format == "PNG" and apng.n_frames == 3 and apng.is_animated
    for i, candidate in enumerate(direct.candidate_masks):
        apng.seek(i)
        assert np.array_equal(np.asarray(apng.convert("L")), np.asarray(decode_png(candidate).convert("L"))), i
    # A viewer that knows no animation shows the best mask.
    assert np.array_equal(np.asarray(decode_png(response.content)), np.asarray(decode_png(direct.mask)))
    single = await stack.http.post("/v1/images/segmentations", headers=headers, files=file_part(image),
                                   data={"point_coords": "[[50,40]]"})
    assert getattr(decode_png(single.content), "n_frames", 1) == 1


async def test_remove_background_is_rgba_whose_alpha_is_the_mask(stack):
    user_id, headers = await stack.user("alpha@example.com")
    image = photo(120, 80)
    y, x = np.mgrid[0:80, 0:120]
    soft = np.clip(1.2 - np.hypot(x - 60, y - 40) / 30, 0, 1).astype(np.float32)  # a disc with soft edges
    soft[np.abs(soft - 0.5) < 0.01] = 0.6  # no alpha that rounds across the mask's threshold
    binary = (soft > 0.5).astype(np.uint8) * 255

    def segment(frames, prompt, *, best_only=False):
        return [TextMask(binary.copy(), soft.copy(), [0.9]) for _ in frames]

    with stack.replaced(stack.vision.servicer.models.text, "segment", segment):
        removed = await stack.http.post("/v1/images/remove-background", headers=headers, files=file_part(image),
                                        data={"prompt": "ball"})
        mask = await stack.http.post("/v1/images/segmentations", headers=headers, files=file_part(image),
                                     data={"prompt": "ball"})
    rgba = np.asarray(decode_png(removed.content))
    assert rgba.shape == (80, 120, 4)
    assert np.array_equal(rgba[..., :3], np.asarray(decode_png(image).convert("RGB")))
    assert np.abs(rgba[..., 3].astype(int) - np.rint(soft * 255)).max() <= 1  # the soft edges kept
    assert np.array_equal(np.asarray(decode_png(mask.content).convert("L")), binary)
    assert np.array_equal(rgba[..., 3] > 127, binary == 255)
    assert await stack.balance(user_id) == (START_MC - 500, 0)


# -- upscaling -------------------------------------------------------------------------------------------------

async def test_every_method_returns_exactly_input_times_its_scale_at_its_price(stack):
    user_id, headers = await stack.user("upscale@example.com")
    spent = 0
    for method, scale in SCALES.items():
        response = await stack.http.post("/v1/images/upscale", headers=headers,
                                         json={"image": b64(photo(36, 20)), "method": method})
        assert response.status_code == 200, (method, response.text)
        image = decode_png(base64.b64decode(response.json()["data"][0]["b64_json"]))
        assert image.size == (36 * scale, 20 * scale), method
        spent += upscale_price(method, 36, 20)
        assert await stack.balance(user_id) == (START_MC - spent, 0), method
    default = await stack.http.post("/v1/images/upscale", headers=headers, json={"image": b64(photo(36, 20))})
    assert decode_png(base64.b64decode(default.json()["data"][0]["b64_json"])).size == (144, 80)


async def test_lanczos_2x_equals_pillow_and_url_serves_it(stack):
    _, headers = await stack.user("lanczos@example.com")
    source = photo(300, 200)
    response = await stack.http.post("/v1/images/upscale", headers=headers, json={
        "image": "data:image/png;base64," + b64(source), "method": "lanczos", "response_format": "url"})
    assert response.status_code == 200, response.text
    [item] = response.json()["data"]
    served = await stack.http.get(item["url"])
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    expected = decode_png(source).resize((600, 400), Image.Resampling.LANCZOS)
    assert np.array_equal(np.asarray(decode_png(served.content)), np.asarray(expected))
    three = await stack.http.post("/v1/images/upscale", headers=headers,
                                  json={"image": b64(photo(30, 20)), "method": "LANCZOS", "scale": 3})
    assert decode_png(base64.b64decode(three.json()["data"][0]["b64_json"])).size == (90, 60)


# -- video ---------------------------------------------------------------------------------------------------

async def test_video_is_webm_with_alpha_and_charges_the_frames_with_the_object(stack):
    user_id, headers = await stack.user("video@example.com")
    with stack.frames_with_object({1, 2, 5}):
        response = await stack.http.post("/v1/videos/remove-background", headers=headers,
                                         files=file_part(video(frames=8), "clip.mp4", "video/mp4"),
                                         data={"prompt": "red square"})
    assert response.status_code == 200, response.text
    frames = webm_frames(response.content)
    assert len(frames) == 8
    assert [bool(frame[..., 3].mean() > 128) for frame in frames] == [i in {1, 2, 5} for i in range(8)]
    assert response.headers["x-total-frames"] == "8" and response.headers["x-frames-with-object"] == "3"
    assert await stack.balance(user_id) == (START_MC - 3 * 250, 0)


async def test_a_video_without_the_object_costs_nothing(stack):
    user_id, headers = await stack.user("empty-video@example.com")
    with stack.frames_with_object(set()):
        response = await stack.http.post("/v1/videos/remove-background", headers=headers,
                                         files=file_part(video(frames=3), "clip.mp4", "video/mp4"))
    assert response.status_code == 200 and response.headers["x-frames-with-object"] == "0"
    assert len(webm_frames(response.content)) == 3
    assert await stack.balance(user_id) == (START_MC, 0) and stack.holds(user_id) == 1


async def test_a_failure_mid_video_releases_the_hold(stack):
    user_id, headers = await stack.user("broken-video@example.com")

    def broken(frames, prompt, best_only):
        raise RuntimeError("the model broke")

    with stack.replaced(stack.vision.servicer.models, "frame_masks", broken):
        response = await stack.http.post("/v1/videos/remove-background", headers=headers,
                                         files=file_part(video(frames=4), "clip.mp4", "video/mp4"))
    assert_envelope(response, 500, "processing_error")
    assert stack.holds(user_id) == 1 and await stack.balance(user_id) == (START_MC, 0)


async def test_a_client_that_leaves_mid_video_releases_the_hold_and_stops_the_frames(stack):
    user_id, headers = await stack.user("gone@example.com")
    seen: list[int] = []
    with stack.frames_with_object(set(range(60)), seen, delay=0.2):
        request = asyncio.ensure_future(stack.http.post(
            "/v1/videos/remove-background", headers=headers,
            files=file_part(video(frames=60, fps=30), "clip.mp4", "video/mp4")))
        assert await eventually(lambda: len(seen) >= 4, seconds=60)
        assert (await stack.balance(user_id))[1] == 60 * 250  # every frame held while it runs
        request.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await request

        async def released() -> bool:
            return await stack.balance(user_id) == (START_MC, 0)

        assert await eventually(released, seconds=30)
        stopped_at = len(seen)
        await asyncio.sleep(0.5)
    assert len(seen) <= stopped_at + 8 < 60  # the frame loop stopped (a batch may finish)


# -- metering ---------------------------------------------------------------------------------------------------

async def test_too_few_credits_is_402_and_a_refused_video_stops_at_once(stack):
    user_id, headers = await stack.user("poor@example.com", credits_mc=200)
    segmented = await stack.http.post("/v1/images/segmentations", headers=headers, files=file_part(photo()),
                                      data={"prompt": "x"})
    assert assert_envelope(segmented, 402, "insufficient_credits")["code"] == "insufficient_credits"
    upscaled = await stack.http.post("/v1/images/upscale", headers=headers,
                                     json={"image": b64(photo(400, 300)), "method": "swin2sr"})
    assert_envelope(upscaled, 402, "insufficient_credits")
    seen: list[int] = []
    with stack.frames_with_object({0}, seen, delay=0.1):
        clip = await stack.http.post("/v1/videos/remove-background", headers=headers,
                                     files=file_part(video(frames=30, fps=30), "clip.mp4", "video/mp4"))
        assert_envelope(clip, 402, "insufficient_credits")
        await asyncio.sleep(0.5)
    assert len(seen) < 30  # Reserve's refusal cancelled the stream: the service stopped its frames
    assert await stack.balance(user_id) == (200, 0) and await stack.media_count(user_id) == 0


async def test_premium_pays_nothing(stack):
    user_id, headers = await stack.user("vip@example.com", credits_mc=0, premium=True)
    responses = [
        await stack.http.post("/v1/images/segmentations", headers=headers, files=file_part(photo()),
                              data={"prompt": "x"}),
        await stack.http.post("/v1/images/upscale", headers=headers, json={"image": b64(photo()), "method": "swin2sr"}),
        await stack.http.post("/v1/images/remove-background", headers=headers, files=file_part(photo())),
    ]
    with stack.frames_with_object({0, 1}):
        responses.append(await stack.http.post("/v1/videos/remove-background", headers=headers,
                                               files=file_part(video(frames=3), "clip.mp4", "video/mp4")))
    assert [r.status_code for r in responses] == [200] * 4
    assert await stack.balance(user_id) == (0, 0)


async def test_an_idempotent_retry_is_charged_once_and_answers_the_same(stack):
    user_id, headers = await stack.user("idem@example.com")
    image = photo(90, 60)
    form = {"point_coords": "[[10,10],[60,30]]", "point_labels": "[1,1]", "multimask_output": "true"}
    keyed = {**headers, "Idempotency-Key": "seg-1"}
    first = await stack.http.post("/v1/images/segmentations", headers=keyed, files=file_part(image), data=form)
    again = await stack.http.post("/v1/images/segmentations", headers=keyed, files=file_part(image), data=form)
    assert first.status_code == again.status_code == 200
    assert again.content == first.content and again.headers["idempotent-replayed"] == "true"
    assert again.headers["x-mask-scores"] == first.headers["x-mask-scores"]
    assert again.headers["x-media-id"] == first.headers["x-media-id"]

    keyed = {**headers, "Idempotency-Key": "video-1"}
    clip = video(frames=5)
    with stack.frames_with_object({0, 3}):
        first = await stack.http.post("/v1/videos/remove-background", headers=keyed,
                                      files=file_part(clip, "clip.mp4", "video/mp4"))
        again = await stack.http.post("/v1/videos/remove-background", headers=keyed,
                                      files=file_part(clip, "clip.mp4", "video/mp4"))
    assert first.status_code == again.status_code == 200
    assert again.content == first.content and again.headers["content-type"] == "video/webm"
    assert again.headers["idempotent-replayed"] == "true" and again.headers["x-frames-with-object"] == "2"
    assert await stack.balance(user_id) == (START_MC - 250 - 2 * 250, 0)
    assert await stack.media_count(user_id) == 2


# -- bad input ---------------------------------------------------------------------------------------------------

SEGMENTATION_ERRORS = [  # (form fields, file, status, param)
    ({"prompt": "x"}, b"plain text, not an image", 400, "file"),
    ({"prompt": "x"}, None, 400, "file"),
    ({"prompt": "x"}, b"", 400, "file"),
    ({}, "photo", 400, "prompt"),
    ({"prompt": "  "}, "photo", 400, "prompt"),
    ({"point_coords": "[[1,2]"}, "photo", 400, "point_coords"),
    ({"point_coords": "{\"x\": 1}"}, "photo", 400, "point_coords"),
    ({"point_coords": "[[1,2,3]]"}, "photo", 400, "point_coords"),
    ({"point_coords": "[[1,\"a\"]]"}, "photo", 400, "point_coords"),
    ({"point_coords": "[]"}, "photo", 400, "point_coords"),
    ({"point_coords": "[[96,10]]"}, "photo", 400, "point_coords"),
    ({"point_coords": "[[10,-1]]"}, "photo", 400, "point_coords"),
    ({"point_coords": json.dumps([[1, 1]] * 17)}, "photo", 400, "point_coords"),
    ({"point_coords": "[[1,1],[2,2]]", "point_labels": "[1]"}, "photo", 400, "point_labels"),
    ({"point_coords": "[[1,1]]", "point_labels": "[2]"}, "photo", 400, "point_labels"),
    ({"point_coords": "[[1,1]]", "point_labels": "[true]"}, "photo", 400, "point_labels"),
    ({"point_coords": "[[1,1]]", "point_labels": "one"}, "photo", 400, "point_labels"),
    ({"prompt": "x", "point_labels": "[1]"}, "photo", 400, "point_labels"),
    ({"prompt": "x", "multimask_output": "true"}, "photo", 400, "multimask_output"),
    ({"prompt": "x", "multimask_output": "maybe"}, "photo", 400, "multimask_output"),
    ({"prompt": "x" * 1001}, "photo", 413, "prompt"),
    ({"prompt": "x"}, bomb_png(5000, 5000), 413, "file"),
    ({"prompt": "x"}, "large", 413, "file"),
]


async def test_bad_image_requests_get_an_envelope_and_reserve_nothing(stack):
    user_id, headers = await stack.user("bad-image@example.com")
    files = {"photo": photo(96, 64), "large": b"\x89PNG" + bytes(int(MAX_IMAGE_MB * MIB))}
    for fields, data, status, param in SEGMENTATION_ERRORS:
        upload = None if data is None else file_part(files.get(data, data) if isinstance(data, str) else data)
        response = await stack.http.post("/v1/images/segmentations", headers=headers, files=upload, data=fields)
        assert assert_envelope(response, status, "invalid_request_error")["param"] == param, (fields, response.text)
    for fields, data, status, param in [({"prompt": "x"}, b"GIF89a", 400, "file"),
                                        ({"prompt": "x"}, bomb_png(), 413, "file")]:
        response = await stack.http.post("/v1/images/remove-background", headers=headers, files=file_part(data),
                                         data=fields)
        assert assert_envelope(response, status, "invalid_request_error")["param"] == param
    json_errors = [
        ({"image": b64(photo()), "method": "realesrgan_8x"}, 400, "method"),
        ({"image": b64(photo()), "method": "sam3"}, 400, "method"),
        ({"image": "%%% not base64"}, 400, "image"),
        ({"image": b64(b"not an image")}, 400, "image"),
        ({"image": b64(bomb_png())}, 413, "image"),
        ({"image": b64(bomb_png(3000, 3000))}, 413, "image"),  # fits the input limit, not the output
        ({"image": b64(photo()), "method": "realesrgan_2x", "scale": 3}, 400, "scale"),
        ({"image": b64(photo()), "method": "lanczos", "scale": 9}, 400, "scale"),
        ({"image": b64(photo()), "response_format": "jpeg"}, 400, "response_format"),
        ({"method": "lanczos"}, 400, "image"),
    ]
    for body, status, param in json_errors:
        response = await stack.http.post("/v1/images/upscale", headers=headers, json=body)
        error = assert_envelope(response, status, "invalid_request_error")
        assert error["param"] == param, (body, response.text)
        if body.get("method") == "realesrgan_8x":
            assert "lanczos" in error["message"] and "realesrgan_4x_anime" in error["message"]
    response = await stack.http.post("/v1/images/segmentations", content=b'{"prompt": "x"}',
                                     headers={**headers, "Content-Type": "application/json"})
    assert_envelope(response, 400, "invalid_request_error")
    truncated = (b"--xyz\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\nhello\r\n--xyz\r\n"
                 b"Content-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\nContent-Type: image/png"
                 b"\r\n\r\n" + photo()[:40])
    response = await stack.http.post("/v1/images/segmentations", content=truncated, headers={
        **headers, "Content-Type": "multipart/form-data; boundary=xyz"})
    assert_envelope(response, 400, "invalid_request_error")
    two_files = [("file", ("a.png", photo(), "image/png")), ("file", ("b.png", photo(), "image/png"))]
    response = await stack.http.post("/v1/images/segmentations", headers=headers, files=two_files,
                                     data={"prompt": "x"})
    assert assert_envelope(response, 400, "invalid_request_error")["param"] == "file"
    assert stack.holds(user_id) == 0 and await stack.balance(user_id) == (START_MC, 0)
    assert await stack.media_count(user_id) == 0


async def test_bad_videos_get_an_envelope_and_leave_no_hold(stack):
    user_id, headers = await stack.user("bad-video@example.com")
    cases = [
        (b"", 400, "file"),
        (b"\x00\x01 not a video at all" * 10, 400, "file"),
        (truncated_video(), 400, "file"),
        (photo(), 400, "file"),  # an image sent as a video: refused by the edge from its header
        (photo(fmt="WEBP"), 400, "file"),
        (twenty_minute_video(), 413, "file"),  # refused by the service from its headers
        (video(frames=3, width=2048, height=1152), 413, "file"),
        (b"\x1a\x45\xdf\xa3" + bytes(int(MAX_VIDEO_MB * MIB)), 413, "file"),  # over the published max_video_bytes
        (bytes(MAX_BODY_MB * MIB + 1), 413, None),  # over the edge's body limit
    ]
    for data, status, param in cases:
        response = await stack.http.post("/v1/videos/remove-background", headers=headers,
                                         files=file_part(data, "clip.mp4", "video/mp4"), data={"prompt": "x"})
        error = assert_envelope(response, status, "invalid_request_error")
        assert error["param"] == param, (len(data), response.text)
    response = await stack.http.post("/v1/videos/remove-background", headers=headers,
                                     data={"prompt": "x", "file": b64(video())})
    assert assert_envelope(response, 400, "invalid_request_error")["param"] == "file"
    assert stack.holds(user_id) == 0 and await stack.balance(user_id) == (START_MC, 0)
    assert await stack.media_count(user_id) == 0


async def test_the_openapi_document_describes_the_vision_endpoints(stack):
    document = (await stack.http.get("/openapi.json")).json()
    segmentation = document["paths"]["/v1/images/segmentations"]["post"]
    form = segmentation["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert set(form["properties"]) == {"file", "prompt", "point_coords", "point_labels", "multimask_output"}
    ok = segmentation["responses"]["200"]
    assert "image/png" in ok["content"] and "APNG" in ok["description"] and "X-Mask-Scores" in ok["headers"]
    video_ok = document["paths"]["/v1/videos/remove-background"]["post"]["responses"]["200"]
    assert "video/webm" in video_ok["content"] and "X-Media-Id" in video_ok["headers"]
    upscale = document["paths"]["/v1/images/upscale"]["post"]
    assert "realesrgan_4x_anime" in json.dumps(upscale["requestBody"]) or "UpscaleRequest" in json.dumps(upscale)
