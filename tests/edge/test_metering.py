"""The metering flow against a real accounts service: reserve → run → store → commit, release on
failure and on client disconnect, Idempotency-Key replays charged once (the priced route is
tests/edge/priced.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from pathlib import Path

import httpx
import pytest

from edge.http_protocol import DISCONNECT
from edge.metering import ClientDisconnected, Meter, until_disconnect
from tests.edge.priced import PNG_1PX, PRICE_MC, add_priced_route
from tests.edge.test_auth import assert_envelope
from tests.support.platform import running_platform
from tests.support.waiting import eventually
from univence.accounts.v1 import accounts_pb2 as apb
from univence.media.v1 import media_pb2


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


async def test_a_client_gone_once_the_result_exists_is_charged_and_can_fetch_it_again(priced):
    # README: cancelled before its result exists costs nothing; once the result exists it is charged
    # and a retry with the same Idempotency-Key gets it (here the client leaves while it is being stored).
    platform, http = priced
    user_id, secret = await platform.user_with_key("late@example.com", credits_mc=2000)
    headers = {"X-API-Key": secret, "Idempotency-Key": "gone-after-the-result"}
    # The result exists well before the client gives up (a loaded CI machine may take a while to get there)
    # and is still being stored when it does.
    with pytest.raises(httpx.ReadTimeout):
        await http.post("/v1/test/priced", json={"store_seconds": 6}, headers=headers, timeout=3)
    assert await eventually(lambda: held(platform, user_id, 0), seconds=20)
    assert (await platform.balance(user_id)).balance_mc == 2000 - PRICE_MC
    again = await http.post("/v1/test/priced", json={"store_seconds": 6}, headers=headers)
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert (await http.get(f"/v1/media/{again.json()['id']}")).content == PNG_1PX
    assert (await platform.balance(user_id)).balance_mc == 2000 - PRICE_MC


async def held(platform, user_id: str, amount_mc: int) -> bool:
    return (await platform.balance(user_id)).held_mc == amount_mc


@pytest.fixture
async def small_replays(tmp_path):
    """The platform with accounts keeping responses of at most 1000 bytes for replays."""
    async with running_platform(tmp_path, customize_app=add_priced_route,
                                accounts_overrides={"max_stored_response_bytes": 1000}) as platform, \
            httpx.AsyncClient(base_url=platform.base_url, timeout=30) as http:
        yield platform, http


async def test_a_response_larger_than_accounts_keeps_is_replayed_from_media(small_replays, tmp_path):
    platform, http = small_replays
    user_id, secret = await platform.user_with_key("big@example.com", credits_mc=2000)
    headers = {"X-API-Key": secret, "Idempotency-Key": "big-1"}
    first = await http.post("/v1/test/priced", json={"pad": 5000}, headers=headers)
    again = await http.post("/v1/test/priced", json={"pad": 5000}, headers=headers)
    assert first.status_code == again.status_code == 200, again.text
    assert again.content == first.content and len(first.content) > 5000
    assert again.headers["idempotent-replayed"] == "true" and again.headers["content-type"] == "application/json"
    assert (await platform.balance(user_id)).balance_mc == 2000 - PRICE_MC
    # accounts keeps a small record; the body is the user's file in media (not in the image listings)
    (record,) = stored_responses(tmp_path / "accounts.db", user_id)
    assert len(record) < 1000 and json.loads(record.partition(b"\n")[0])["media_id"]
    data = await platform.media.ListMedia(media_pb2.ListMediaRequest(owner_id=user_id,
                                                                    kind=media_pb2.MEDIA_KIND_DATA))
    assert data.total_size == 1


async def test_responses_are_kept_only_for_idempotency_keys(priced, tmp_path):
    # A kept response is only ever read back by a retry with the same key.
    platform, http = priced
    user_id, secret = await platform.user_with_key("keep@example.com", credits_mc=2000)
    plain = await http.post("/v1/test/priced", json={}, headers={"X-API-Key": secret})
    keyed = await http.post("/v1/test/priced", json={}, headers={"X-API-Key": secret, "Idempotency-Key": "k-1"})
    assert plain.status_code == keyed.status_code == 200
    assert stored_responses(tmp_path / "accounts.db", user_id) == [None, keyed.content]
    assert (await platform.balance(user_id)).balance_mc == 2000 - 2 * PRICE_MC


class _Client:
    """A Request's client side, as cancel_on_disconnect watches it: by the server's disconnect future in the
    scope (`server`, what edge.http_protocol gives the edge) or else by reading `receive` (a watcher task,
    for any other ASGI server). `leave()` disconnects it."""

    def __init__(self, server: bool, gone: bool = False) -> None:
        self.left = asyncio.Event()
        self.scope: dict = {}
        if server:
            self.scope["extensions"] = {DISCONNECT: asyncio.get_running_loop().create_future()}
        if gone:
            self.leave()

    def leave(self) -> None:
        self.left.set()
        signal = self.scope.get("extensions", {}).get(DISCONNECT)
        if signal is not None:
            signal.set_result(None)

    async def receive(self) -> dict:
        await self.left.wait()
        return {"type": "http.disconnect"}


# Every until_disconnect test runs with both ways of watching the client.
SIGNALS = pytest.mark.parametrize("server", [True, False], ids=["server future", "watcher task"])


@SIGNALS
async def test_until_disconnect_returns_once_the_cancelled_work_has_finished(server):
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
        await until_disconnect(_Client(server, gone=True), anext(stream))
    assert closed == [True]
    await stream.aclose()


@SIGNALS
async def test_until_disconnect_returns_the_work_result(server):
    async def work() -> int:
        await asyncio.sleep(0)
        return 7

    assert await until_disconnect(_Client(server), work()) == 7


@SIGNALS
async def test_a_client_that_leaves_during_the_work_cancels_it(server):
    client, cancelled = _Client(server), []

    async def work() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    task = asyncio.ensure_future(until_disconnect(client, work()))
    await asyncio.sleep(0.01)
    client.leave()
    with pytest.raises(ClientDisconnected):
        await asyncio.wait_for(task, 5)
    assert cancelled == [True]


async def test_drain_waits_for_releases_on_their_way():
    meter = Meter(clients=None, settlements=None)
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


async def test_until_disconnect_never_cancels_the_request_after_it_returned():
    # The watcher is this request's task's canceller only while the work runs: a disconnect that comes
    # after (the answer is out, the request still settles) must not cancel whatever the request does next.
    # Here the work ends in the loop turn where the watcher sees the disconnect, before the watcher's
    # done-callback runs: the race that callback must lose.
    assert await until_disconnect(_Client(server=False, gone=True), asyncio.sleep(0, result=3)) == 3
    await asyncio.sleep(0.05)  # would raise CancelledError here if the watcher still cancelled
    assert asyncio.current_task().cancelling() == 0


async def test_a_disconnect_as_the_work_ends_never_cancels_the_request_after_it_returned():
    # The same race with the server's future: set as the work returns, its callback runs after.
    client = _Client(server=True)

    async def work() -> int:
        client.leave()
        return 3

    assert await until_disconnect(client, work()) == 3
    await asyncio.sleep(0.05)  # would raise CancelledError here if the callback still cancelled
    assert asyncio.current_task().cancelling() == 0


@SIGNALS
async def test_until_disconnect_leaves_a_cancel_from_elsewhere_a_cancel(server):
    client = _Client(server)
    task = asyncio.ensure_future(until_disconnect(client, asyncio.sleep(30)))
    await asyncio.sleep(0.01)
    task.cancel()  # a shutdown or a timeout, not the client: CancelledError, not ClientDisconnected
    with pytest.raises(asyncio.CancelledError):
        await task


@SIGNALS
async def test_until_disconnect_is_a_disconnect_even_when_the_work_swallowed_the_cancel(server):
    client = _Client(server)
    wound_down = []

    async def stubborn() -> int:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            wound_down.append(True)
            return 1  # a call that answers as it is cancelled
        return 0

    async def request() -> int:
        work = asyncio.ensure_future(stubborn())  # a task started before, as a chat's early first chunk
        try:
            return await until_disconnect(client, work)
        finally:
            assert asyncio.current_task().cancelling() == 0  # our cancel taken back: nothing left pending

    task = asyncio.ensure_future(request())
    await asyncio.sleep(0.01)
    client.leave()
    with pytest.raises(ClientDisconnected):
        await task
    assert wound_down == [True]
