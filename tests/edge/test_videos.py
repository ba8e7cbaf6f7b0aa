"""Image to video end to end: the reference's curl (POST /v1/images/img2video, multipart as written), the
official openai SDK against /v1/videos (create_and_poll, retrieve, list, download_content, delete: the
video and its files gone), the
caller's library (GET /v1/images/user-videos), Idempotency-Key, and bad inputs as 4xx envelopes; against
the real edge, accounts and media services and the tiny video service over gRPC.

A video costs 1 credit (1000 mc) for a non-premium user; premium users pay nothing."""

from __future__ import annotations

import asyncio
import secrets

import pytest
import pytest_asyncio

from tests.edge.test_auth import assert_envelope
from tests.edge.video_stack import SMALL, START_MC, VIDEO_MC, mp4_frames, picture, running_stack
from tests.image.helpers import bomb_png
from tests.support.timing import upstream_ms

# One video service and platform for the module; the SDK marks its videos API deprecated (Sora's end).
pytestmark = [pytest.mark.asyncio(loop_scope="module"),
              pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory):
    async with running_stack(tmp_path_factory.mktemp("videos")) as stack:
        yield stack


async def test_reference_curl(stack):
    """curl -F image=@input_photo.jpg -F prompt=... -F negative_prompt=... -F num_frames=81 -F num_steps=4
    -F resolution=480p -F use_ode=false: an MP4 of 81 frames at 480p's landscape aspect, 1 credit."""
    user_id, headers = await stack.user("curl@example.com")
    response = await stack.http.post("/v1/images/img2video", headers=headers, files={
        "image": ("input_photo.jpg", picture(160, 96, fmt="JPEG"), "image/jpeg")}, data={
        "prompt": "a dramatic cinematic dolly zoom", "negative_prompt": "blurry, distorted", "num_frames": "81",
        "num_steps": "4", "resolution": "480p", "use_ode": "false"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "video/mp4" and response.headers["x-univence-profile"] == "tiny"
    assert upstream_ms(response.headers, "video") > 0  # the job's call to its result
    frames, width, height, codec = mp4_frames(response.content)
    assert (frames, codec) == (81, "h264") and width > height, "480p landscape from a landscape image"
    media_id, video_id = response.headers["x-media-id"], response.headers["x-video-id"]
    served = await stack.http.get(f"/v1/media/{media_id}", headers={"Range": "bytes=0-99"})
    assert served.status_code == 206 and served.content == response.content[:100]
    await stack.settled(user_id, START_MC - VIDEO_MC)
    job = (await stack.http.get(f"/v1/videos/{video_id}", headers=headers)).json()
    assert (job["status"], job["progress"], job["num_frames"], job["resolution"]) == ("completed", 100, 81, "480p")


async def test_sdk_create_and_poll_download_and_library(stack):
    user_id, headers = await stack.user("sdk@example.com")
    client = stack.sdk(headers)
    seen: list[int] = []
    video = await client.videos.create(prompt="the camera pans", input_reference=(
        "first.png", picture(96, 160), "image/png"), size="720x1280", extra_body={"num_frames": 9, "num_steps": 2})
    assert video.status in ("queued", "in_progress") and video.object == "video"
    while video.status in ("queued", "in_progress"):
        await asyncio.sleep(0.05)
        video = await client.videos.retrieve(video.id)
        seen.append(video.progress)
    assert video.status == "completed", video.error
    assert video.size == "64x112", "OpenAI's 720x1280 is the 720p class (tiny: 112x64), portrait like the image"
    assert seen == sorted(seen) and seen[-1] == 100, "progress rises monotonically"
    polled = await client.videos.create_and_poll(prompt="a slow zoom", input_reference=(
        "first.png", picture(160, 96), "image/png"), extra_body=SMALL, poll_interval_ms=50)
    assert (polled.status, polled.progress, polled.size) == ("completed", 100, "80x48")
    content = await client.videos.download_content(polled.id)
    frames, width, height, _ = mp4_frames(content.content)
    assert (frames, width, height) == (9, 80, 48)
    thumbnail = await client.videos.download_content(polled.id, variant="thumbnail")
    assert thumbnail.content[:3] == b"\xff\xd8\xff", "a JPEG"
    listed = [v.id async for v in client.videos.list(limit=1)]
    assert listed == [polled.id, video.id], "newest first, page by page (after=)"
    await stack.settled(user_id, START_MC - 2 * VIDEO_MC)

    library = await stack.http.get("/v1/images/user-videos", headers=headers, params={
        "limit": 20, "offset": 0, "sortBy": "newest", "sortOrder": "desc"})
    body = library.json()
    assert body["total"] == 2 and [v["id"] for v in body["data"]] == [polled.id, video.id]
    first = body["data"][0]
    assert (first["prompt"], first["resolution"], first["num_frames"], first["status"]) == (
        "a slow zoom", "480p", 9, "completed")
    assert (await stack.http.get(first["url"])).content == content.content
    _, other = await stack.user("other@example.com")
    assert (await stack.http.get("/v1/images/user-videos", headers=other)).json()["total"] == 0
    for path in (f"/v1/videos/{video.id}", f"/v1/videos/{video.id}/content"):
        assert_envelope(await stack.http.get(path, headers=other), 404, "invalid_request_error")
    assert_envelope(await stack.http.delete(f"/v1/videos/{video.id}", headers=other), 404, "invalid_request_error")


async def test_premium_is_free(stack):
    user_id, headers = await stack.user("premium@example.com", premium=True)
    video = await stack.sdk(headers).videos.create_and_poll(prompt="waves", input_reference=(
        "first.png", picture(), "image/png"), extra_body=SMALL, poll_interval_ms=50)
    assert video.status == "completed"
    await stack.settled(user_id, START_MC)


async def test_idempotency_key_is_one_job_charged_once(stack):
    user_id, headers = await stack.user("retry@example.com")
    keyed = {**headers, "Idempotency-Key": "video-1"}
    files = {"input_reference": ("first.png", picture(), "image/png")}
    first = await stack.http.post("/v1/videos", headers=keyed, files=files, data={"prompt": "rain", **SMALL})
    again = await stack.http.post("/v1/videos", headers=keyed, files=files, data={"prompt": "rain", **SMALL})
    assert first.status_code == again.status_code == 200, first.text
    assert first.json()["id"] == again.json()["id"]
    await stack.until(first.json()["id"], headers, "completed")
    after = await stack.http.post("/v1/videos", headers=keyed, files=files, data={"prompt": "rain", **SMALL})
    assert (after.json()["id"], after.json()["status"]) == (first.json()["id"], "completed")
    other = await stack.http.post("/v1/videos", headers=keyed, files=files, data={"prompt": "snow", **SMALL})
    assert assert_envelope(other, 409, "invalid_request_error")["code"] == "idempotency_conflict"
    await stack.settled(user_id, START_MC - VIDEO_MC)
    listing = (await stack.http.get("/v1/videos", headers=headers)).json()
    assert [v["id"] for v in listing["data"]] == [first.json()["id"]] and listing["has_more"] is False


@pytest.mark.parametrize(("part", "data", "param"), [
    ("image", {"prompt": "x", "num_frames": "0"}, "num_frames"),
    ("image", {"prompt": "x", "num_frames": "10000"}, "num_frames"),
    ("image", {"prompt": "x", "num_frames": "10"}, "num_frames"),
    ("image", {"prompt": "x", "num_steps": "9"}, "num_steps"),
    ("image", {"prompt": "x", "resolution": "4k"}, "resolution"),
    ("image", {"prompt": ""}, "prompt"),
    ("image", {"prompt": "x", "model": "sora-2"}, "model"),
    ("input_reference", {"prompt": "x", "size": "big"}, "size"),
    ("input_reference", {"prompt": "x", "size": "0x720"}, "size"),
    ("input_reference", {"prompt": "x", "seconds": "12"}, "seconds"),
])
async def test_bad_inputs_are_400_and_cost_nothing(stack, part, data, param):
    user_id, headers = await stack.user(f"bad-{secrets.token_hex(4)}@example.com")
    path = "/v1/images/img2video" if part == "image" else "/v1/videos"
    response = await stack.http.post(path, headers=headers, files={part: ("a.png", picture(), "image/png")}, data=data)
    assert assert_envelope(response, 400, "invalid_request_error")["param"] == param
    assert await stack.balance(user_id) == (START_MC, 0)


async def test_not_an_image_pixel_bomb_and_missing_image(stack):
    _, headers = await stack.user("inputs@example.com")
    text = await stack.http.post("/v1/images/img2video", headers=headers,
                                 files={"image": ("a.jpg", b"not an image at all", "image/jpeg")}, data={"prompt": "x"})
    assert assert_envelope(text, 400, "invalid_request_error")["param"] == "image"
    bomb = await stack.http.post("/v1/images/img2video", headers=headers,
                                 files={"image": ("bomb.png", bomb_png(), "image/png")}, data={"prompt": "x"})
    assert bomb.status_code in (400, 413) and bomb.json()["error"]["param"] == "image"
    missing = await stack.http.post("/v1/videos", headers=headers, data={"prompt": "x"}, files={"x": ("a", b"1")})
    assert assert_envelope(missing, 400, "invalid_request_error")["param"] == "input_reference"
    for video_id in ("video_unknown0000000000000000", "nonsense", "music_" + "a" * 32):
        assert_envelope(await stack.http.get(f"/v1/videos/{video_id}", headers=headers), 404, "invalid_request_error")


async def test_img2video_retry_with_idempotency_key_answers_the_same_video(stack):
    user_id, headers = await stack.user("sync-retry@example.com")
    keyed = {**headers, "Idempotency-Key": "sync-1"}
    files = {"image": ("a.png", picture(), "image/png")}
    first = await stack.http.post("/v1/images/img2video", headers=keyed, files=files, data={"prompt": "x", **SMALL})
    again = await stack.http.post("/v1/images/img2video", headers=keyed, files=files, data={"prompt": "x", **SMALL})
    assert first.status_code == again.status_code == 200, again.text
    assert again.content == first.content and again.headers["x-video-id"] == first.headers["x-video-id"]
    assert upstream_ms(first.headers, "video") > 0 and "server-timing" not in again.headers  # no model ran again
    await stack.settled(user_id, START_MC - VIDEO_MC)


async def test_delete_removes_a_completed_video_and_its_files(stack):
    """OpenAI's delete: the video (job) and its stored assets are gone; another user cannot delete it."""
    user_id, headers = await stack.user("delete@example.com")
    client = stack.sdk(headers)
    video = await client.videos.create_and_poll(prompt="leaves falling", input_reference=(
        "first.png", picture(), "image/png"), extra_body=SMALL, poll_interval_ms=50,
        extra_headers={"Idempotency-Key": "delete-1"})
    assert video.status == "completed", video.error
    job = (await stack.http.get(f"/v1/videos/{video.id}", headers=headers)).json()
    _, other = await stack.user("not-the-owner@example.com")
    assert_envelope(await stack.http.delete(f"/v1/videos/{video.id}", headers=other), 404, "invalid_request_error")
    deleted = await client.videos.delete(video.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (video.id, "video.deleted", True)
    for path in (f"/v1/videos/{video.id}", f"/v1/videos/{video.id}/content", job["url"], job["thumbnail_url"]):
        assert_envelope(await stack.http.get(path, headers=headers), 404, "invalid_request_error")
    assert_envelope(await stack.http.delete(f"/v1/videos/{video.id}", headers=headers), 404, "invalid_request_error")
    assert (await stack.http.get("/v1/images/user-videos", headers=headers)).json()["total"] == 0
    await stack.settled(user_id, START_MC - VIDEO_MC)  # deleting refunds nothing: the video was made
    retry = await stack.http.post("/v1/videos", headers={**headers, "Idempotency-Key": "delete-1"}, files={
        "input_reference": ("first.png", picture(), "image/png")}, data={"prompt": "leaves falling", **SMALL})
    assert "deleted" in assert_envelope(retry, 409, "invalid_request_error")["message"], "not made (and charged) again"
    await stack.settled(user_id, START_MC - VIDEO_MC)


async def test_a_sibling_path_is_not_a_video_id(stack):
    """/v1/videos/remove-background is POST only: GET there is a 405 naming POST, not 'no video'."""
    _, headers = await stack.user("sibling@example.com")
    response = await stack.http.get("/v1/videos/remove-background", headers=headers)
    assert assert_envelope(response, 405, "invalid_request_error")["code"] == "method_not_allowed"
    assert response.headers["allow"] == "POST"
