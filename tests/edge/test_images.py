"""Images end to end: the official openai SDK and the reference's curl examples (as httpx requests)
against the real edge, accounts and media services and a real tiny image service over gRPC.

Credits follow the default price table: z-image-turbo 1000 mc per megapixel (minimum 250 mc),
longcat-image-edit 1500 mc per megapixel, an edit 500 mc."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import numpy as np
import openai
import pytest
from PIL import Image

from services.common.errors import too_large
from tests.edge.test_auth import assert_envelope
from tests.image.helpers import ImageService, bomb_png, picture, serve, settings_for
from tests.support.platform import JWT_SECRET, Platform, running_platform
from tests.support.timing import upstream_ms
from univence.accounts.v1 import accounts_pb2 as apb
from univence.media.v1 import media_pb2

# A prompt the edge lets through and the image service then refuses (its checks are the edge's, so the
# service is told to, see refuse_marked): how these tests make a request fail after credits were reserved.
REFUSED_BY_SERVICE = "refused by the service"
START_MC = 100_000


def refuse_marked(kind: str, request) -> None:
    if request.prompt == REFUSED_BY_SERVICE:
        raise too_large("prompt is refused by this image service", "prompt")


@dataclass
class Stack:
    platform: Platform
    http: httpx.AsyncClient
    image: ImageService
    accounts_db: Path

    async def user(self, email: str, *, credits_mc: int = START_MC, premium: bool = False) -> tuple[str, dict]:
        user_id, secret = await self.platform.user_with_key(email, credits_mc=credits_mc, premium=premium)
        return user_id, {"X-API-Key": secret}

    async def sdk(self, headers: dict) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(api_key=headers["X-API-Key"], base_url=f"{self.platform.base_url}/v1",
                                  max_retries=0, timeout=60)

    async def balance(self, user_id: str) -> tuple[int, int]:
        leases = self.platform.app.state.meter.leases
        if leases is not None:  # charges made from credit leases delivered, the leases returned (edge.leases)
            await leases.return_all()
        b = await self.platform.balance(user_id)
        return b.balance_mc, b.held_mc

    def intercept(self, before: Callable[[str, Any], None]) -> None:
        """Calls `before(kind, request)` on every request that reaches the image service's planning."""
        servicer = self.image.servicer
        plan_generation, plan_edit = servicer.plan_generation, servicer._plan_edit

        def generation(request):
            before("generation", request)
            return plan_generation(request)

        async def edit(request):
            before("edit", request)
            return await plan_edit(request)

        servicer.plan_generation, servicer._plan_edit = generation, edit

    def watch_service(self) -> list[str]:
        """Records every request that reaches the image service's planning (what the edge let through)."""
        seen: list[str] = []
        self.intercept(lambda kind, _: seen.append(kind))
        return seen

    def holds(self) -> int:
        """How many holds were ever reserved (settled or not)."""
        with contextlib.closing(sqlite3.connect(self.accounts_db)) as db:
            return db.execute("SELECT COUNT(*) FROM holds").fetchone()[0]

    async def media_count(self, user_id: str) -> int:
        """The user's stored files, once the stores answers did not wait for are done (edge.outputs)."""
        await self.platform.app.state.background_stores.drain()
        listing = await self.platform.media.ListMedia(media_pb2.ListMediaRequest(owner_id=user_id))
        return listing.total_size


async def stack_with(tmp_path, others: dict[str, str] | None = None, **image_settings):
    """The image service (with these settings), the platform and an edge that routes to it (and to the
    `others`, modality name → address)."""
    addresses = {**(others or {})}
    async with serve(settings_for(**image_settings)) as image, \
            running_platform(tmp_path, modalities=["image", *addresses],
                             modality_addresses={"image": image.address, **addresses}) as platform, \
            httpx.AsyncClient(base_url=platform.base_url, timeout=60) as http:
        stack = Stack(platform, http, image, tmp_path / "accounts.db")
        stack.intercept(refuse_marked)
        yield stack


@pytest.fixture
async def stack(tmp_path):
    async for s in stack_with(tmp_path):
        yield s


def png_of(b64: str) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(b64)))
    image.load()
    return image


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# -- the openai SDK --------------------------------------------------------------------------------------

async def test_sdk_generate_dall_e_3_512_returns_a_png_and_charges_the_price(stack):
    user_id, headers = await stack.user("sdk@example.com")
    client = await stack.sdk(headers)
    started = time.perf_counter()
    raw = await client.images.with_raw_response.generate(model="dall-e-3", prompt="a watercolor fox",
                                                         size="512x512")
    assert raw.headers["x-univence-profile"] == "tiny"
    assert 0 < upstream_ms(raw.headers, "image") < (time.perf_counter() - started) * 1e3  # the service's part
    result = raw.parse()
    [item] = result.data
    picture_ = png_of(item.b64_json)
    assert (picture_.format, picture_.size) == ("PNG", (512, 512))
    assert result.created > 0 and item.url is None
    assert await stack.balance(user_id) == (START_MC - 250, 0)
    assert await stack.media_count(user_id) == 1


async def test_sdk_url_serves_the_same_png(stack):
    _, headers = await stack.user("url@example.com")
    client = await stack.sdk(headers)
    inline = await client.images.generate(prompt="a lighthouse", size="256x256", extra_body={"seed": 7})
    linked = await client.images.generate(prompt="a lighthouse", size="256x256", response_format="url",
                                          extra_body={"seed": 7})
    url = linked.data[0].url
    assert url.startswith(f"{stack.platform.base_url}/v1/media/")
    served = await stack.http.get(url)
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    assert served.content == base64.b64decode(inline.data[0].b64_json)


async def test_sdk_edit_with_two_images_one_image_and_a_mask(stack):
    user_id, headers = await stack.user("edit@example.com")
    client = await stack.sdk(headers)
    a, b = picture(96, 64, seed=1), picture(64, 64, seed=2)
    result = await client.images.edit(image=[("a.png", a, "image/png"), ("b.png", b, "image/png")],
                                      prompt="put them side by side")
    assert png_of(result.data[0].b64_json).size == (96, 64)
    single = await client.images.edit(image=("a.png", a, "image/png"), prompt="make it night", size="128x128",
                                      response_format="url")
    served = await stack.http.get(single.data[0].url)
    assert Image.open(io.BytesIO(served.content)).size == (128, 128)
    mask = picture(96, 64, mode="RGBA", seed=3)
    masked = await client.images.edit(image=("a.png", a, "image/png"), mask=("m.png", mask, "image/png"),
                                      prompt="a hole", n=2)
    assert len(masked.data) == 2
    assert await stack.balance(user_id) == (START_MC - 4 * 500, 0)
    assert await stack.media_count(user_id) == 4


# -- the reference's curl examples, as written -------------------------------------------------------------

async def test_reference_curl_examples(stack):
    user_id, headers = await stack.user("curl@example.com")
    http = stack.http
    post = lambda path, body, h=headers: http.post(path, json=body, headers=h)  # noqa: E731

    quick = await post("/v1/images/generations", {"model": "z-image-turbo", "prompt": "a beautiful sunset"})
    assert png_of(quick.json()["data"][0]["b64_json"]).size == (1024, 1024)

    single = await post("/v1/images/generations", {
        "model": "z-image-turbo", "prompt": "A beautiful sunset over mountains",
        "negative_prompt": "blurry, distorted, low quality", "image_size": "1024x1024", "seed": 12345,
        "num_inference_steps": 8})
    assert single.status_code == 200 and set(single.json()) == {"created", "data"}
    assert single.json()["data"][0]["seed"] == 12345

    edit = await post("/v1/images/edits", {
        "model": "black-forest-labs/FLUX.2-klein-4B", "prompt": "Make the background tropical",
        "negative_prompt": "blurry, distorted, low quality",
        "input_images": [b64(picture(96, 96, seed=1)), b64(picture(64, 64, seed=2))],
        "width": 1024, "height": 1024, "num_steps": 4, "guidance": 1.0, "seed": 12345, "match_image_size": 0})
    assert edit.status_code == 200, edit.text
    assert png_of(edit.json()["data"][0]["b64_json"]).size == (1024, 1024)

    batch = await post("/v1/images/generations/batch", {"requests": [
        {"model": "z-image-turbo", "prompt": "A red sports car", "image_size": "512x512"},
        {"model": "z-image-turbo", "prompt": "A blue ocean wave", "image_size": "1024x1024"}]})
    assert batch.status_code == 200
    sizes = [png_of(slot["data"][0]["b64_json"]).size for slot in batch.json()["data"]]
    assert sizes == [(512, 512), (1024, 1024)]

    token = jwt.encode({"sub": user_id, "exp": int(time.time()) + 60}, JWT_SECRET, algorithm="HS256")
    for auth in (headers, {"Authorization": f"Bearer {token}"}):
        landscape = await post("/v1/images/generations", {"prompt": "A beautiful landscape"}, auth)
        assert landscape.status_code == 200 and landscape.headers["x-univence-profile"] == "tiny"

    garden = await post("/v1/images/generations", {
        "model": "z-image-turbo", "prompt": "A serene Japanese garden with cherry blossoms",
        "image_size": "1024x1024", "negative_prompt": "people, cars, buildings"})
    assert garden.status_code == 200

    winter = await post("/v1/images/edits", {
        "model": "black-forest-labs/FLUX.2-klein-4B", "prompt": "Transform into a winter wonderland",
        "input_images": [b64(picture(80, 64, seed=3)), b64(picture(64, 80, fmt="JPEG", seed=4))],
        "num_steps": 4, "guidance": 1.0})
    assert png_of(winter.json()["data"][0]["b64_json"]).size == (80, 64)

    # 6 images at 1024x1024 (1000 each), one at 512x512 (250), two edits (500 each)
    assert await stack.balance(user_id) == (START_MC - 6 * 1000 - 250 - 2 * 500, 0)


# -- credits -------------------------------------------------------------------------------------------------

async def test_prices_follow_model_size_and_n_and_premium_pays_nothing(stack):
    user_id, headers = await stack.user("price@example.com")
    body = {"prompt": "a tree", "image_size": "512x512"}
    await stack.http.post("/v1/images/generations", json={**body, "model": "longcat-image-edit", "n": 2},
                          headers=headers)
    assert await stack.balance(user_id) == (START_MC - 2 * 375, 0)
    ledger = await stack.platform.accounts.ListLedgerEntries(apb.ListLedgerEntriesRequest(user_id=user_id))
    assert "longcat-image-edit 512x512 x2" in ledger.entries[0].description
    vip_id, vip = await stack.user("vip@example.com", credits_mc=0, premium=True)
    ok = await stack.http.post("/v1/images/generations", json=body, headers=vip)
    edited = await stack.http.post("/v1/images/edits", json={"prompt": "x", "input_images": [b64(picture())]},
                                   headers=vip)
    assert ok.status_code == edited.status_code == 200
    assert await stack.balance(vip_id) == (0, 0)


async def test_too_few_credits_is_402_and_nothing_runs(stack):
    user_id, headers = await stack.user("poor@example.com", credits_mc=100)
    calls = []
    generate = stack.image.servicer.models.generate

    def watched(jobs):
        calls.append(jobs)
        return generate(jobs)

    stack.image.servicer.models.generate = watched
    response = await stack.http.post("/v1/images/generations", json={"prompt": "a castle", "image_size": "256x256"},
                                     headers=headers)
    assert assert_envelope(response, 402, "insufficient_credits")["code"] == "insufficient_credits"
    edit = await stack.http.post("/v1/images/edits", json={"prompt": "x", "input_images": [b64(picture())]},
                                 headers=headers)
    assert_envelope(edit, 402, "insufficient_credits")
    assert calls == [] and await stack.balance(user_id) == (100, 0) and await stack.media_count(user_id) == 0


async def test_a_failing_request_costs_nothing(stack):
    user_id, headers = await stack.user("fail@example.com")
    response = await stack.http.post("/v1/images/generations", json={"prompt": REFUSED_BY_SERVICE}, headers=headers)
    assert assert_envelope(response, 413, "invalid_request_error")["param"] == "prompt"
    edit = await stack.http.post("/v1/images/edits", json={"prompt": REFUSED_BY_SERVICE,
                                                           "input_images": [b64(picture())]}, headers=headers)
    assert_envelope(edit, 413, "invalid_request_error")
    assert await stack.balance(user_id) == (START_MC, 0) and await stack.media_count(user_id) == 0


async def test_an_idempotent_retry_is_charged_once(stack):
    user_id, headers = await stack.user("idem@example.com")
    headers = {**headers, "Idempotency-Key": "img-1"}
    body = {"prompt": "a kite", "image_size": "256x256", "seed": 3}
    first = await stack.http.post("/v1/images/generations", json=body, headers=headers)
    again = await stack.http.post("/v1/images/generations", json=body, headers=headers)
    assert again.content == first.content and again.headers["idempotent-replayed"] == "true"
    assert upstream_ms(first.headers, "image") > 0 and "server-timing" not in again.headers  # not called again
    assert await stack.balance(user_id) == (START_MC - 250, 0)


async def test_a_small_image_is_scaled_up_edited_and_charged_once(stack):
    # icons and thumbnails are accepted: scaled up until their short side is 64, the output follows
    user_id, headers = await stack.user("icon@example.com")
    response = await stack.http.post("/v1/images/edits", json={"prompt": "make it blue", "seed": 2,
                                                               "input_images": [b64(picture(16, 16, seed=1))]},
                                     headers=headers)
    assert response.status_code == 200, response.text
    assert png_of(response.json()["data"][0]["b64_json"]).size == (64, 64)
    files = [("image", ("icon.png", picture(16, 8, seed=2), "image/png"))]
    form = await stack.http.post("/v1/images/edits", files=files, data={"prompt": "make it red"}, headers=headers)
    assert form.status_code == 200, form.text
    assert png_of(form.json()["data"][0]["b64_json"]).size == (128, 64)
    assert await stack.balance(user_id) == (START_MC - 2 * 500, 0)


async def test_a_multipart_edit_retried_with_its_key_is_charged_once(stack):
    # curl and httpx draw a new multipart boundary per request: the retry must still be the same request.
    user_id, headers = await stack.user("idem-form@example.com")
    headers = {**headers, "Idempotency-Key": "edit-form-1"}
    files, data = [("image", ("a.png", picture(), "image/png"))], {"prompt": "make it blue", "seed": "4"}
    first = await stack.http.post("/v1/images/edits", files=files, data=data, headers=headers)
    again = await stack.http.post("/v1/images/edits", files=files, data=data, headers=headers)
    assert first.status_code == again.status_code == 200 and again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    other = await stack.http.post("/v1/images/edits", files=files, data={**data, "seed": "5"}, headers=headers)
    assert assert_envelope(other, 409, "invalid_request_error")["code"] == "idempotency_conflict"
    assert await stack.balance(user_id) == (START_MC - 500, 0)


# -- determinism -----------------------------------------------------------------------------------------------

async def test_same_seed_same_bytes_different_seed_different_image(stack):
    _, headers = await stack.user("seed@example.com")

    async def make(seed: int) -> bytes:
        response = await stack.http.post("/v1/images/generations", headers=headers, json={
            "prompt": "a red fox", "image_size": "256x256", "seed": seed})
        return base64.b64decode(response.json()["data"][0]["b64_json"])

    one, two, other = await make(99), await make(99), await make(100)
    assert one == two
    diff = np.abs(np.asarray(Image.open(io.BytesIO(one)), np.int16) - np.asarray(Image.open(io.BytesIO(other)),
                                                                                   np.int16))
    assert diff.mean() > 10
    drawn = await stack.http.post("/v1/images/generations", headers=headers, json={"prompt": "a red fox",
                                                                                   "image_size": "256x256"})
    seed = drawn.json()["data"][0]["seed"]
    assert base64.b64decode(drawn.json()["data"][0]["b64_json"]) == await make(seed)


# -- batch -------------------------------------------------------------------------------------------------------

async def test_batch_answers_in_order_and_a_failing_item_is_not_charged(stack):
    user_id, headers = await stack.user("batch@example.com")
    response = await stack.http.post("/v1/images/generations/batch", headers=headers, json={"requests": [
        {"prompt": "first", "image_size": "256x256", "seed": 1},
        {"prompt": REFUSED_BY_SERVICE, "image_size": "256x256"},
        {"prompt": "third", "image_size": "512x512", "seed": 3, "response_format": "url"}]})
    assert response.status_code == 200
    first, failed, third = response.json()["data"]
    assert first["data"][0]["seed"] == 1 and png_of(first["data"][0]["b64_json"]).size == (256, 256)
    assert failed["error"]["param"] == "requests[1].prompt" and failed["error"]["type"] == "invalid_request_error"
    assert "data" not in failed
    assert (await stack.http.get(third["data"][0]["url"])).status_code == 200
    assert await stack.balance(user_id) == (START_MC - 250 - 250, 0)
    assert await stack.media_count(user_id) == 2


async def test_a_batch_where_everything_fails_costs_nothing(stack):
    user_id, headers = await stack.user("allfail@example.com")
    response = await stack.http.post("/v1/images/generations/batch", headers=headers, json={"requests": [
        {"prompt": REFUSED_BY_SERVICE}, {"prompt": REFUSED_BY_SERVICE}]})
    assert response.status_code == 200 and all("error" in slot for slot in response.json()["data"])
    assert await stack.balance(user_id) == (START_MC, 0)


# -- bad input -----------------------------------------------------------------------------------------------------

GENERATION_ERRORS = [
    ({}, 400, "prompt"),
    ({"prompt": ""}, 400, "prompt"),
    ({"prompt": 42}, 400, "prompt"),
    ({"prompt": "x" * 4001}, 413, "prompt"),
    ({"prompt": "a\u0000b"}, 400, "prompt"),
    ({"prompt": "x", "negative_prompt": "y" * 4001}, 413, "negative_prompt"),
    ({"prompt": "x", "model": "gpt-image-1"}, 400, "model"),
    ({"prompt": "x", "image_size": "300x300"}, 400, "image_size"),
    ({"prompt": "x", "size": "1536x1024"}, 400, "size"),
    ({"prompt": "x", "image_size": "512x512", "size": "256x256"}, 400, "size"),
    ({"prompt": "x", "model": "longcat-image-edit", "image_size": "1024x1792"}, 400, "image_size"),
    ({"prompt": "x", "n": 0}, 400, "n"),
    ({"prompt": "x", "n": 11}, 400, "n"),
    ({"prompt": "x", "seed": -1}, 400, "seed"),
    ({"prompt": "x", "seed": "abc"}, 400, "seed"),
    ({"prompt": "x", "num_inference_steps": 0}, 400, "num_inference_steps"),
    ({"prompt": "x", "guidance_scale": 1000}, 400, "guidance_scale"),
    ({"prompt": "x", "cfg": -2}, 400, "cfg"),
    ({"prompt": "x", "response_format": "jpeg"}, 400, "response_format"),
    ({"prompt": "x", "image": "iVBORw0KGgo"}, 400, "image"),
    ({"prompt": "x", "mask": "iVBORw0KGgo"}, 400, "mask"),
    ({"prompt": "x", "input_images": ["iVBORw0KGgo"]}, 400, "input_images"),
]


async def test_bad_generation_requests_are_refused_before_anything_is_reserved(stack):
    user_id, headers = await stack.user("badgen@example.com")
    seen = stack.watch_service()
    for body, status, param in GENERATION_ERRORS:
        response = await stack.http.post("/v1/images/generations", json=body, headers=headers)
        error = assert_envelope(response, status, "invalid_request_error")
        assert error["param"] == param, (body, error)
        if param in ("image", "mask", "input_images"):
            assert "/v1/images/edits" in error["message"]
    too_many = await stack.http.post("/v1/images/generations/batch", headers=headers,
                                     json={"requests": [{"prompt": "x"}] * 6})
    assert assert_envelope(too_many, 400, "invalid_request_error")["param"] == "requests"
    bad_item = await stack.http.post("/v1/images/generations/batch", headers=headers,
                                     json={"requests": [{"prompt": "x"}, {"prompt": "x", "image_size": "1x1"}]})
    assert assert_envelope(bad_item, 400, "invalid_request_error")["param"] == "requests[1].image_size"
    with_n = await stack.http.post("/v1/images/generations/batch", headers=headers,
                                   json={"requests": [{"prompt": "x", "n": 2}]})
    assert assert_envelope(with_n, 400, "invalid_request_error")["param"] == "requests[0].n"
    assert seen == [] and await stack.balance(user_id) == (START_MC, 0)
    ledger = await stack.platform.accounts.ListLedgerEntries(apb.ListLedgerEntriesRequest(user_id=user_id))
    assert [e.kind for e in ledger.entries] == ["grant"]


def _edit_json(**fields) -> dict:
    return {"prompt": "make it blue", "input_images": [b64(picture())], **fields}


EDIT_JSON_ERRORS = [
    (_edit_json(input_images=[]), 400, "input_images"),
    (_edit_json(input_images=["not base64!!"]), 400, "input_images[0]"),
    (_edit_json(input_images=[b64(b"plain text, not an image")]), 400, "input_images[0]"),
    (_edit_json(input_images=[b64(picture()), b64(bomb_png())]), 413, "input_images[1]"),
    (_edit_json(input_images=[b64(picture())] * 5), 400, "input_images"),
    (_edit_json(input_images=["A" * (17 * 1024 * 1024)]), 413, "input_images[0]"),
    (_edit_json(input_images=[b64(picture(4, 40))]), 400, "input_images[0]"),  # 10:1: thinner than 8:1
    (_edit_json(input_images=[b64(picture()), b64(picture(900, 100))]), 400, "input_images[1]"),
    (_edit_json(prompt=""), 400, "prompt"),
    (_edit_json(prompt="x" * 4001), 413, "prompt"),
    (_edit_json(model="dall-e-4"), 400, "model"),
    (_edit_json(width=10), 400, "width"),
    (_edit_json(height=5000), 400, "height"),
    (_edit_json(size="big"), 400, "size"),
    (_edit_json(match_image_size=2), 400, "match_image_size"),
    (_edit_json(num_steps=0), 400, "num_steps"),
    (_edit_json(guidance=-1), 400, "guidance"),
    (_edit_json(n=5), 400, "n"),
    (_edit_json(input_images=[b64(picture()), b64(picture())], mask=b64(picture())), 400, "mask"),
    (_edit_json(mask=b64(picture(64, 64))), 400, "mask"),
    (_edit_json(mask="%%%"), 400, "mask"),
]


async def test_bad_edit_requests_are_refused_before_anything_is_reserved(stack):
    user_id, headers = await stack.user("badedit@example.com")
    seen = stack.watch_service()
    for body, status, param in EDIT_JSON_ERRORS:
        response = await stack.http.post("/v1/images/edits", json=body, headers=headers)
        assert assert_envelope(response, status, "invalid_request_error")["param"] == param, (param, response.text)
    files = [("image[]", (f"{i}.png", picture(), "image/png")) for i in range(5)]
    response = await stack.http.post("/v1/images/edits", files=files, data={"prompt": "x"}, headers=headers)
    assert assert_envelope(response, 400, "invalid_request_error")["param"] == "image"
    response = await stack.http.post("/v1/images/edits", files=[("image", ("a.txt", b"hello", "text/plain"))],
                                     data={"prompt": "x"}, headers=headers)
    assert assert_envelope(response, 400, "invalid_request_error")["param"] == "image[0]"
    response = await stack.http.post("/v1/images/edits", files=[("image", ("a.png", picture(), "image/png"))],
                                     data={"prompt": "x", "n": "lots"}, headers=headers)
    assert assert_envelope(response, 400, "invalid_request_error")["param"] == "n"
    truncated = (b"--xyz\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\nhello\r\n--xyz\r\n"
                 b"Content-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\nContent-Type: image/png"
                 b"\r\n\r\n" + picture()[:40])
    response = await stack.http.post("/v1/images/edits", content=truncated, headers={
        **headers, "Content-Type": "multipart/form-data; boundary=xyz"})
    assert_envelope(response, 400, "invalid_request_error")
    response = await stack.http.post("/v1/images/edits", content=b"{not json", headers={
        **headers, "Content-Type": "application/json"})
    assert_envelope(response, 400, "invalid_request_error")
    response = await stack.http.post("/v1/images/edits", content=b"x",
                                     headers={**headers, "Content-Type": "text/plain"})
    assert_envelope(response, 400, "invalid_request_error")
    assert seen == []
    assert await stack.balance(user_id) == (START_MC, 0) and await stack.media_count(user_id) == 0


async def test_multipart_accepts_the_reference_fields_too(stack):
    _, headers = await stack.user("form@example.com")
    files = [("image[]", ("a.png", picture(96, 64, seed=1), "image/png")),
             ("image[]", ("b.jpg", picture(64, 64, fmt="JPEG", seed=2), "image/jpeg"))]
    data = {"prompt": "x", "width": "128", "height": "64", "num_steps": "2", "seed": "5",
            "model": "black-forest-labs/FLUX.2-klein-base-4B", "guidance": "3.0", "negative_prompt": "fog"}
    response = await stack.http.post("/v1/images/edits", files=files, data=data, headers=headers)
    assert response.status_code == 200, response.text
    [item] = response.json()["data"]
    assert item["seed"] == 5 and png_of(item["b64_json"]).size == (128, 64)


# -- the queue and the catalog -----------------------------------------------------------------------------------

async def test_a_full_queue_is_429_with_retry_after_and_costs_nothing(tmp_path):
    async for stack in stack_with(tmp_path, queue_max_pending=1, max_batch_wait_ms=0):
        busy_id, busy = await stack.user("busy@example.com")
        user_id, headers = await stack.user("late@example.com")
        slow = asyncio.ensure_future(stack.http.post("/v1/images/generations", headers=busy, json={
            "prompt": "slow", "image_size": "1024x1024", "num_inference_steps": 12}))
        while stack.image.servicer.queue.pending == 0:
            await asyncio.sleep(0.005)
        response = await stack.http.post("/v1/images/generations", headers=headers,
                                         json={"prompt": "x", "image_size": "256x256"})
        assert assert_envelope(response, 429, "rate_limit_error")["code"] == "queue_full"
        assert response.headers["retry-after"]
        assert (await slow).status_code == 200
        assert await stack.balance(user_id) == (START_MC, 0)
        assert await stack.balance(busy_id) == (START_MC - 1000, 0)


async def test_models_lists_the_image_models_with_aliases_and_profile(stack):
    _, headers = await stack.user("models@example.com")
    models = {m["id"]: m for m in (await stack.http.get("/v1/models", headers=headers)).json()["data"]}
    turbo = models["z-image-turbo"]
    assert turbo["profile"] == "tiny" and "dall-e-3" in turbo["aliases"] and turbo["service"] == "image"
    assert "longcat-image-edit" in models and "black-forest-labs/FLUX.2-klein-4B" in models
    assert (await stack.http.get("/v1/models/dall-e-2", headers=headers)).json()["id"] == "z-image-turbo"
