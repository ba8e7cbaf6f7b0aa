"""The metering flow against a real accounts service: reserve → run → store → commit, release on
failure and on client disconnect, Idempotency-Key replays charged once.

The priced route here is test scaffolding that drives edge.metering exactly as edge.serving's flows
do for the modality endpoints, storing a real file in the media service as its "work"."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, Depends, Request, Response

from edge.auth import Principal, require_principal
from edge.clients import call
from edge.errors import APIError
from edge.metering import ClientDisconnected, Meter, until_disconnect
from tests.edge.test_auth import assert_envelope
from tests.support.platform import running_platform
from univence.accounts.v1 import accounts_pb2 as apb
from univence.media.v1 import media_pb2

PRICE_MC = 500  # OPERATION_IMAGE_EDIT in the default price table
PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201a5d6a6a60000000049454e44ae426082")


def add_priced_route(app) -> None:
    router = APIRouter()

    @router.post("/v1/test/priced")
    async def priced(request: Request, body: dict, principal: Principal = Depends(require_principal)):  # noqa: B008
        items = [apb.ChargeItem(operation=apb.OPERATION_IMAGE_EDIT)]
        async with request.app.state.meter.hold(request, principal, items) as hold:
            if hold.replay is not None:
                return hold.replay
            if body.get("mode") == "fail":
                raise APIError(500, "the model failed", "processing_error")
            if body.get("mode") == "slow":
                await until_disconnect(request, asyncio.sleep(30))
            stored = await call("media", request.app.state.clients.media.CreateMedia, media_pb2.CreateMediaRequest(
                owner_id=principal.user_id, kind=media_pb2.MEDIA_KIND_IMAGE, mime_type="image/png", data=PNG_1PX))
            content = json.dumps({"id": stored.media.media_id}).encode()
            await hold.commit(response_body=content)
            return Response(content, media_type="application/json")

    app.include_router(router)


@pytest.fixture
async def priced(tmp_path):
    async with running_platform(tmp_path, customize_app=add_priced_route) as platform, \
            httpx.AsyncClient(base_url=platform.base_url, timeout=30) as http:
        yield platform, http


def stored_responses(database: Path, user_id: str) -> list[bytes | None]:
    """The responses the accounts service keeps with the user's holds, oldest first."""
    with contextlib.closing(sqlite3.connect(database)) as db:
        return [row[0] for row in db.execute("SELECT response_body FROM holds WHERE user_id = ? ORDER BY created_us",
                                             (user_id,))]


async def test_success_charges_the_price_and_stores_the_output(priced):
    platform, http = priced
    user_id, secret = await platform.user_with_key("ok@example.com", credits_mc=2000)
    response = await http.post("/v1/test/priced", json={}, headers={"X-API-Key": secret})
    assert response.status_code == 200, response.text
    balance = await platform.balance(user_id)
    assert (balance.balance_mc, balance.held_mc) == (2000 - PRICE_MC, 0)
    media_id = response.json()["id"]
    assert (await http.get(f"/v1/media/{media_id}")).content == PNG_1PX


async def test_failure_costs_nothing(priced):
    platform, http = priced
    user_id, secret = await platform.user_with_key("fail@example.com", credits_mc=2000)
    response = await http.post("/v1/test/priced", json={"mode": "fail"}, headers={"X-API-Key": secret})
    assert_envelope(response, 500, "processing_error")
    balance = await platform.balance(user_id)
    assert (balance.balance_mc, balance.held_mc) == (2000, 0)


async def test_insufficient_credits_is_402_and_nothing_runs(priced):
    platform, http = priced
    user_id, secret = await platform.user_with_key("poor@example.com", credits_mc=100)
    response = await http.post("/v1/test/priced", json={}, headers={"X-API-Key": secret})
    assert_envelope(response, 402, "insufficient_credits")
    assert (await platform.media.ListMedia(media_pb2.ListMediaRequest(owner_id=user_id))).total_size == 0


async def test_premium_pays_nothing(priced):
    platform, http = priced
    user_id, secret = await platform.user_with_key("vip@example.com", premium=True)
    response = await http.post("/v1/test/priced", json={}, headers={"X-API-Key": secret})
    assert response.status_code == 200
    assert (await platform.balance(user_id)).balance_mc == 0


async def test_client_disconnect_releases_the_hold(priced):
    platform, http = priced
    user_id, secret = await platform.user_with_key("gone@example.com", credits_mc=2000)
    with pytest.raises(httpx.ReadTimeout):
        await http.post("/v1/test/priced", json={"mode": "slow"}, headers={"X-API-Key": secret}, timeout=0.5)
    for _ in range(50):
        balance = await platform.balance(user_id)
        if balance.held_mc == 0:
            break
        await asyncio.sleep(0.1)
    assert (balance.balance_mc, balance.held_mc) == (2000, 0)
    ledger = await platform.accounts.ListLedgerEntries(apb.ListLedgerEntriesRequest(user_id=user_id))
    assert [e.kind for e in ledger.entries] == ["grant"]


async def test_idempotency_key_replays_and_charges_once(priced):
    platform, http = priced
    user_id, secret = await platform.user_with_key("idem@example.com", credits_mc=2000)
    headers = {"X-API-Key": secret, "Idempotency-Key": "order-42"}
    first = await http.post("/v1/test/priced", json={"n": 1}, headers=headers)
    again = await http.post("/v1/test/priced", json={"n": 1}, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.content == first.content and again.headers["idempotent-replayed"] == "true"
    assert (await platform.balance(user_id)).balance_mc == 2000 - PRICE_MC
    other = await http.post("/v1/test/priced", json={"n": 2}, headers=headers)  # same key, other body
    assert assert_envelope(other, 409, "invalid_request_error")["code"] == "idempotency_conflict"
    assert (await platform.balance(user_id)).balance_mc == 2000 - PRICE_MC


async def test_responses_are_kept_only_for_idempotency_keys(priced, tmp_path):
    # A kept response is only ever read back by a retry with the same key.
    platform, http = priced
    user_id, secret = await platform.user_with_key("keep@example.com", credits_mc=2000)
    plain = await http.post("/v1/test/priced", json={}, headers={"X-API-Key": secret})
    keyed = await http.post("/v1/test/priced", json={}, headers={"X-API-Key": secret, "Idempotency-Key": "k-1"})
    assert plain.status_code == keyed.status_code == 200
    assert stored_responses(tmp_path / "accounts.db", user_id) == [None, keyed.content]
    assert (await platform.balance(user_id)).balance_mc == 2000 - 2 * PRICE_MC


class _ClientGone:
    """Stands in for the Request of a client that has gone away."""

    async def receive(self) -> dict:
        return {"type": "http.disconnect"}


async def test_until_disconnect_returns_once_the_cancelled_work_has_finished():
    # The chat stream awaits its first chunk this way and then closes the stream generator: closing
    # must not find the generator's step still running, or the hold's release is skipped.
    closed = []

    async def chunks():
        try:
            await asyncio.sleep(30)
            yield b"never"
        finally:
            closed.append(True)

    stream = chunks()
    with pytest.raises(ClientDisconnected):
        await until_disconnect(_ClientGone(), anext(stream))
    assert closed == [True]
    await stream.aclose()


async def test_until_disconnect_returns_the_work_result():
    async def work() -> int:
        await asyncio.sleep(0)
        return 7

    class Connected:
        async def receive(self) -> dict:
            await asyncio.sleep(30)
            return {"type": "http.disconnect"}

    assert await until_disconnect(Connected(), work()) == 7


async def test_drain_waits_for_releases_on_their_way():
    meter = Meter(clients=None)
    finished = []

    async def release():
        await asyncio.sleep(0.1)
        finished.append(True)

    task = asyncio.ensure_future(release())
    meter.background.add(task)
    task.add_done_callback(meter.background.discard)
    await meter.drain(timeout=5)
    assert finished == [True] and not meter.background
    await meter.drain()  # nothing left: returns at once
