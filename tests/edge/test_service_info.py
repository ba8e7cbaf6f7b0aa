"""The edge reads what each modality service says about itself (GetServiceInfo, cached per service): the
model names, sizes and limits it checks before reserving credits are the service's own (a service that
has not answered gets a 503, nothing is guessed), and a response's profile header asks the service that
answers it, no other."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import sqlite3

import grpc
import httpx
import pytest

from edge.catalog import Published, ServiceCatalog
from edge.clients import ServiceClients
from edge.config import EdgeSettings
from edge.endpoints.chat import translate as chat
from edge.endpoints.images import translate as images
from edge.endpoints.images.protocol import ImageEditRequest, ImageGenerationRequest
from edge.endpoints.vision import translate as vision
from edge.endpoints.vision.protocol import UpscaleRequest
from edge.errors import APIError, from_image_rejected
from services.vision import requests as vision_requests
from services.vision.config import VisionSettings
from tests.edge.test_auth import assert_envelope
from tests.edge.test_images import START_MC, stack_with
from tests.image.helpers import picture
from tests.support.platform import running_platform
from tests.support.ports import free_port
from tests.support.waiting import eventually
from univence.common.v1 import common_pb2, common_pb2_grpc
from univence.imaging import ImageRejected


async def test_the_edge_checks_the_limits_the_image_service_publishes(tmp_path):
    # UNIVENCE_IMAGE_MAX_N=8 on the image service: the edge accepts n=8 and refuses n=9 itself.
    async for stack in stack_with(tmp_path, max_n=8):
        user_id, headers = await stack.user("eight@example.com")
        seen = stack.watch_service()
        body = {"prompt": "a tree", "image_size": "256x256"}
        nine = await stack.http.post("/v1/images/generations", json={**body, "n": 9}, headers=headers)
        error = assert_envelope(nine, 400, "invalid_request_error")
        assert error["param"] == "n" and "between 1 and 8" in error["message"]
        assert seen == [] and stack.holds() == 0, "n=9 reached the service or reserved credits"
        eight = await stack.http.post("/v1/images/generations", json={**body, "n": 8}, headers=headers)
        assert eight.status_code == 200 and len(eight.json()["data"]) == 8
        assert await stack.balance(user_id) == (START_MC - 8 * 250, 0)


class SilentInfo(common_pb2_grpc.ServiceInfoServiceServicer):
    """A service that is asked what it serves and takes its time to say."""

    def __init__(self) -> None:
        self.asked = 0

    async def GetServiceInfo(self, request, context) -> common_pb2.GetServiceInfoResponse:
        self.asked += 1
        await asyncio.sleep(30)
        return common_pb2.GetServiceInfoResponse(service="llm")


async def test_an_image_request_asks_only_the_image_service_for_its_profile(tmp_path):
    server = grpc.aio.server()
    silent = SilentInfo()
    common_pb2_grpc.add_ServiceInfoServiceServicer_to_server(silent, server)
    port = free_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    try:
        async for stack in stack_with(tmp_path, others={"llm": f"127.0.0.1:{port}"}):
            _, headers = await stack.user("profile@example.com")
            response = await stack.http.post("/v1/images/generations", headers=headers,
                                             json={"prompt": "a boat", "image_size": "256x256"})
            assert response.status_code == 200 and response.headers["x-univence-profile"] == "tiny"
            assert silent.asked == 0, "the image request waited on the llm service's GetServiceInfo"
    finally:
        await server.stop(0)


class CountedInfo(common_pb2_grpc.ServiceInfoServiceServicer):
    """A service that answers at once and counts how often it was asked."""

    def __init__(self) -> None:
        self.asked = 0

    async def GetServiceInfo(self, request, context) -> common_pb2.GetServiceInfoResponse:
        self.asked += 1
        return common_pb2.GetServiceInfoResponse(service="image", profile="tiny")


async def test_an_answer_in_use_is_asked_for_again_before_it_runs_out():
    """Past half its time, the answer a request finds is renewed beside it: the request after its time has a
    fresh answer without waiting; it is never used past its own time."""
    server, counted, port = grpc.aio.server(), CountedInfo(), free_port()
    common_pb2_grpc.add_ServiceInfoServiceServicer_to_server(counted, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    clients = ServiceClients(EdgeSettings(modalities=["image"], modality_addresses={"image": f"127.0.0.1:{port}"}))
    try:
        catalog = ServiceCatalog(clients, cache_seconds=1.0)
        first = await catalog.published("image")
        assert first is not None and counted.asked == 1
        await asyncio.sleep(0.6)
        assert await catalog.published("image") is first  # within its time: the same answer, renewed beside
        assert await eventually(lambda: counted.asked == 2, seconds=5)
        await asyncio.sleep(0.5)  # past the first answer's time
        renewed = await catalog.published("image")
        assert renewed is not None and renewed is not first and counted.asked == 2  # no wait for it
        catalog.forget()
        assert await catalog.published("image") is not renewed and counted.asked == 3
    finally:
        await clients.close()
        await server.stop(0)


async def test_an_image_request_while_the_image_service_has_not_answered_is_a_503_before_reserving(tmp_path):
    # Nothing listens at the image service's address: the edge does not know its models or limits, so
    # it does not guess them; it answers as a call to an unreachable service does, and holds nothing.
    async with running_platform(tmp_path, modalities=["image"],
                                modality_addresses={"image": f"127.0.0.1:{free_port()}"}) as platform, \
            httpx.AsyncClient(base_url=platform.base_url, timeout=30) as http:
        user_id, key = await platform.user_with_key("down@example.com", credits_mc=START_MC)
        response = await http.post("/v1/images/generations", headers={"X-API-Key": key},
                                   json={"prompt": "a tree", "image_size": "256x256"})
        error = assert_envelope(response, 503, "processing_error")
        assert error["code"] == "service_unavailable" and "image service is unavailable" in error["message"]
        assert response.headers["retry-after"] == "1"
        edit = await http.post("/v1/images/edits", headers={"X-API-Key": key},
                               files=[("image", ("a.png", b"x", "image/png"))], data={"prompt": "x"})
        assert assert_envelope(edit, 503, "processing_error")["code"] == "service_unavailable"
        with contextlib.closing(sqlite3.connect(tmp_path / "accounts.db")) as db:
            assert db.execute("SELECT COUNT(*) FROM holds").fetchone()[0] == 0
        assert (await platform.balance(user_id)).balance_mc == START_MC


def _published(*models: common_pb2.ModelInfo, **limits: float) -> Published:
    return Published.of(common_pb2.GetServiceInfoResponse(service="image", models=models, limits=limits))


def test_image_names_sizes_and_bounds_are_what_the_service_publishes():
    # A table unlike the documented one: the edge follows it (no copy of its own to disagree).
    published = _published(
        common_pb2.ModelInfo(id="painter", aliases=["Brush"], task="image.generation", task_default=True,
                             runs_on="editor", sizes=["640x480", "2048x2048"], default_size="640x480",
                             limits={"max_width": 1024, "max_height": 1024}),
        common_pb2.ModelInfo(id="editor", task="image.edit", task_default=True),
        max_n=2)
    plan = images.plan_generation(ImageGenerationRequest(prompt="x", model=None), published)
    assert (plan.request.model, plan.request.width, plan.request.height) == ("painter", 640, 480)
    assert images.plan_generation(ImageGenerationRequest(prompt="x", model="bRUSH"), published).request.model == \
        "painter"
    for body, param, words in [
            ({"model": "z-image-turbo"}, "model", "use one of painter, editor, Brush"),
            ({"image_size": "1024x1024"}, "image_size", "use one of 640x480, 2048x2048"),
            ({"size": "2048x2048"}, "size", "painter makes images up to 1024x1024"),
            ({"n": 3}, "n", "between 1 and 2")]:
        with pytest.raises(APIError) as refused:
            images.plan_generation(ImageGenerationRequest(prompt="x", **body), published)
        assert (refused.value.status, refused.value.param) == (400, param) and words in refused.value.message, body
    edit = images.plan_edit(ImageEditRequest(prompt="x", model="brush"), [("image[0]", picture(64, 64))], None,
                            published)
    assert edit.request.model == edit.charges[0].model == "editor", "an edit runs on what the name runs on"
    assert images.plan_edit(ImageEditRequest(prompt="x"), [("image[0]", picture(64, 64))], None,
                            published).request.model == "editor"
    with pytest.raises(APIError) as refused:
        images.plan_edit(ImageEditRequest(prompt="x", model="sdxl"), [], None, published)
    assert refused.value.code == "model_not_found" and "use editor" in refused.value.message


def test_chat_counts_are_checked_against_what_the_llm_service_publishes():
    published = Published.of(common_pb2.GetServiceInfoResponse(service="llm", limits={
        "max_n": 2, "max_stop": 1, "max_top_logprobs": 3, "max_tools": 1, "max_images": 1, "max_image_bytes": 100}))
    limits = published.bounds(chat.ChatLimits)
    assert limits is published.bounds(chat.ChatLimits) and limits.max_n == 2
    hi = [{"role": "user", "content": "hi"}]
    tool = {"type": "function", "function": {"name": "f"}}
    small = "data:image/png;base64," + base64.b64encode(b"p" * 50).decode()
    big = "data:image/png;base64," + base64.b64encode(b"p" * 101).decode()
    assert chat.parse_request({"messages": hi, "n": 2, "stop": ["a"], "logprobs": True, "top_logprobs": 3,
                               "tools": [tool]}, limits)[0].n == 2
    for body, status, param in [
            ({"messages": hi, "n": 3}, 400, "n"),
            ({"messages": hi, "stop": ["a", "b"]}, 400, "stop"),
            ({"messages": hi, "logprobs": True, "top_logprobs": 4}, 400, "top_logprobs"),
            ({"messages": hi, "tools": [tool, {**tool, "function": {"name": "g"}}]}, 400, "tools"),
            ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": small}}] * 2}]},
             400, "messages[0].content[1]"),
            ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": big}}]}]},
             413, "messages[0].content[0].image_url")]:
        with pytest.raises((APIError, ImageRejected)) as refused:
            chat.parse_request(body, limits)
        error = refused.value if isinstance(refused.value, APIError) else from_image_rejected(refused.value)
        assert (error.status, error.param) == (status, param), body


def test_vision_methods_scales_and_bounds_are_what_the_service_publishes():
    # Every bound the edge reads is one the vision service publishes (a renamed one fails here) ...
    assert {f.name for f in dataclasses.fields(vision.VisionLimits)} <= set(vision_requests.limits(VisionSettings()))
    # ... and a table unlike the documented one is followed: its methods, their scales, its output bound.
    lanczos = common_pb2.ModelInfo(id="lanczos", task="image.upscale", task_default=True,
                                   limits={"scale": 3, "max_scale": 5})
    swin2sr = common_pb2.ModelInfo(id="swin2sr", task="image.upscale", limits={"scale": 2})
    published = Published.of(common_pb2.GetServiceInfoResponse(service="vision", models=[lanczos, swin2sr],
                                                               limits={"max_output_pixels": 10_000}))
    image = base64.b64encode(picture(30, 20)).decode()
    plan = vision.plan_upscale(UpscaleRequest(image=image), published)
    assert (plan.charges[0].method, plan.charges[0].width, plan.charges[0].height) == ("lanczos", 90, 60)
    assert not plan.request.HasField("scale")
    assert vision.plan_upscale(UpscaleRequest(image=image, method="Swin2SR"), published).charges[0].width == 60
    for body, status, param, words in [
            ({"method": "realesrgan_4x"}, 400, "method", "use one of lanczos, swin2sr"),
            ({"method": "lanczos", "scale": 6}, 400, "scale", "between 2 and 5"),
            ({"method": "swin2sr", "scale": 3}, 400, "scale", "exactly 2"),
            ({"method": "lanczos", "scale": 5}, 413, "image", "over the 10000 output pixels")]:
        with pytest.raises(APIError) as refused:
            vision.plan_upscale(UpscaleRequest(image=image, **body), published)
        assert (refused.value.status, refused.value.param) == (status, param) and words in refused.value.message, body
