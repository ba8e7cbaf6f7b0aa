"""Outputs and storage (edge.outputs): a `b64_json` answer is sent without waiting for media, and its
images still reach the caller's library (retried while media is down, waited for at shutdown); a `url`
answer and any request with an Idempotency-Key wait for the store, as their answers need it."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from starlette.requests import Request

from edge import outputs
from edge.config import EdgeSettings
from edge.middleware import EdgeMiddleware, after_response
from tests.edge.test_images import START_MC, stack_with
from univence.media.v1 import media_pb2

GENERATION = {"model": "z-image-turbo", "prompt": "a lighthouse", "image_size": "256x256"}


class GatedMedia:
    """The edge's media stub, with CreateMedia held until `open` is set (and failing `failures` times
    with UNAVAILABLE first)."""

    def __init__(self, stub, failures: int = 0):
        self._stub, self.open, self.calls, self.failures = stub, asyncio.Event(), 0, failures

    def __getattr__(self, name: str):
        return getattr(self._stub, name)

    async def CreateMedia(self, request, **kwargs):
        self.calls += 1
        await self.open.wait()
        if self.failures:
            self.failures -= 1
            raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(),
                                       "media is restarting")
        return await self._stub.CreateMedia(request, **kwargs)


@pytest.fixture
async def stack(tmp_path):
    async for s in stack_with(tmp_path):
        s.media = GatedMedia(s.platform.app.state.clients.media)
        s.platform.app.state.clients.media = s.media
        yield s


async def test_a_b64_answer_does_not_wait_for_media_and_the_image_is_still_stored(stack):
    user_id, headers = await stack.user("b64@example.com")
    response = await asyncio.wait_for(stack.http.post("/v1/images/generations", json=GENERATION, headers=headers), 30)
    assert response.status_code == 200 and response.json()["data"][0]["b64_json"]
    listing = await stack.platform.media.ListMedia(media_pb2.ListMediaRequest(owner_id=user_id))
    assert stack.media.calls == 1 and listing.total_size == 0  # answered while media holds it
    assert await stack.balance(user_id) == (START_MC - 250, 0)
    stack.media.open.set()
    assert await stack.media_count(user_id) == 1  # (once the background store is done)


@pytest.mark.parametrize("extra", [{"json": {**GENERATION, "response_format": "url"}},
                                   {"json": GENERATION, "key": "gen-1"}])
async def test_a_url_answer_or_a_keyed_request_waits_for_the_store(stack, extra):
    user_id, headers = await stack.user("wait@example.com")
    if "key" in extra:
        headers = {**headers, "Idempotency-Key": extra["key"]}
    request = asyncio.ensure_future(stack.http.post("/v1/images/generations", json=extra["json"], headers=headers))
    await asyncio.sleep(1.0)
    assert stack.media.calls == 1 and not request.done()
    stack.media.open.set()
    response = await request
    assert response.status_code == 200
    assert await stack.media_count(user_id) == 1


async def test_a_background_store_is_retried_while_media_is_unavailable(stack, monkeypatch):
    monkeypatch.setattr(outputs, "RETRY_SECONDS", (0.05, 0.05, 0.05))
    stack.media.failures = 2
    stack.media.open.set()
    user_id, headers = await stack.user("retry@example.com")
    response = await stack.http.post("/v1/images/generations", json=GENERATION, headers=headers)
    assert response.status_code == 200
    assert await stack.media_count(user_id) == 1 and stack.media.calls == 3 and await stack.media_count(user_id) == 1



async def through_middleware(app, log: list[str]) -> None:
    """One GET through EdgeMiddleware in front of `app`; the messages it sends are added to `log`."""
    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        log.append(message["type"])

    scope = {"type": "http", "method": "GET", "path": "/x", "headers": [], "query_string": b""}
    await EdgeMiddleware(app, EdgeSettings(maintenance_file=""))(scope, receive, send)


async def test_work_for_after_the_response_starts_once_the_response_has_gone_out():
    """The stores a b64_json answer does not wait for start after its last byte is sent, not before (they
    took the loop from the commit and the answer), and also when the request fails."""
    log: list[str] = []

    async def answering(scope, receive, send):
        after_response(Request(scope, receive), lambda: log.append("stored"))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def failing(scope, receive, send):
        after_response(Request(scope, receive), lambda: log.append("stored"))
        raise RuntimeError("the answer failed")

    await through_middleware(answering, log)
    assert log == ["http.response.start", "http.response.body", "stored"]
    log.clear()
    with pytest.raises(RuntimeError):
        await through_middleware(failing, log)
    assert log == ["stored"]


async def test_work_for_after_the_response_starts_at_once_outside_a_request():
    """Without the middleware in front (or once the request has ended), nothing would start it later."""
    started = []
    request = Request({"type": "http", "method": "GET", "path": "/x", "headers": [], "query_string": b""})
    after_response(request, lambda: started.append(1))
    assert started == [1]
