"""Credit leases through a real edge, accounts and media in the test's loop (tests/edge/priced.py's
route): what goes through a lease and what still takes a per-request hold, and that each success is
charged once with its own ledger entry, failures and disconnects cost nothing, and idle leases return."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

import httpx
import pytest

from edge import charge_journal
from tests.edge.priced import PATH, PRICE_MC, add_priced_route
from tests.edge.test_auth import assert_envelope
from tests.support.platform import running_platform
from tests.support.waiting import eventually
from univence.accounts.v1 import accounts_pb2 as apb

LEASED = 100_000  # enough for a lease (lease_minimum_mc is 5_000 by default)


@pytest.fixture
async def leased(tmp_path):
    async with running_platform(tmp_path, customize_app=add_priced_route, lease_idle_seconds=0.5) as platform, \
            httpx.AsyncClient(base_url=platform.base_url, timeout=30) as http:
        assert await eventually(lambda: platform.app.state.meter.leases.prices is not None, seconds=10)
        yield platform, http, tmp_path / "accounts.db"


def holds(database: Path, user_id: str) -> list[tuple[str, str, str | None]]:
    """(description, state, idempotency key) of each of the user's holds, oldest first."""
    with contextlib.closing(sqlite3.connect(database)) as db:
        return db.execute("SELECT description, state, idempotency_key FROM holds WHERE user_id = ? "
                          "ORDER BY created_us", (user_id,)).fetchall()


async def charges(platform, user_id: str) -> list[apb.LedgerEntry]:
    entries = (await platform.accounts.ListLedgerEntries(apb.ListLedgerEntriesRequest(user_id=user_id))).entries
    return [e for e in entries if e.kind == "charge"]


async def returned(platform, user_id: str, balance_mc: int) -> bool:
    balance = await platform.balance(user_id)
    return (balance.balance_mc, balance.held_mc) == (balance_mc, 0)


async def test_successes_spend_one_lease_each_charged_once_and_the_lease_returns_when_idle(leased):
    platform, http, database = leased
    user_id, secret = await platform.user_with_key("lease@example.com", credits_mc=LEASED)
    answers = await asyncio.gather(*[http.post(PATH, json={}, headers={"X-API-Key": secret}) for _ in range(5)])
    assert [a.status_code for a in answers] == [200] * 5
    assert [h[:2] for h in holds(database, user_id)] == [("credit lease", "held")]  # one lease, no Reserve
    assert await eventually(lambda: returned(platform, user_id, LEASED - 5 * PRICE_MC), seconds=10)
    assert holds(database, user_id)[0][1] == "released"
    found = await charges(platform, user_id)
    assert [e.amount_mc for e in found] == [-PRICE_MC] * 5 and len({e.description for e in found}) == 5


async def test_the_next_lease_is_taken_before_the_current_one_runs_out(leased):
    """A lease below a quarter of its target asks for the next one in the background: no request waits
    for AcquireLease but the first, and every credit is charged once and the rest returned."""
    platform, http, database = leased
    user_id, secret = await platform.user_with_key("refill@example.com", credits_mc=LEASED)
    leases = platform.app.state.meter.leases
    waited = []
    acquire = leases._acquire

    async def counted(user: str, price_mc: int) -> bool:
        waited.append(user)
        return await acquire(user, price_mc)

    leases._acquire = counted
    requests = 20_000 // PRICE_MC + 10  # more than the first lease (lease_target_mc 20_000) covers
    for _ in range(requests):
        assert (await http.post(PATH, json={}, headers={"X-API-Key": secret})).status_code == 200
        # A refill runs beside the requests. Here it is given the time it needs before the next request: on a
        # loaded machine an AcquireLease can outlast the lease's last ten requests, and the request that then
        # finds the lease empty waits for it, as it must. What is checked is that it was asked for ahead.
        if (refill := leases._acquiring.get(user_id)) is not None:
            await refill
    assert waited == [user_id]  # only the first request waited for a lease
    assert [h[0] for h in holds(database, user_id)] == ["credit lease", "credit lease"]  # the second, ahead
    assert await eventually(lambda: returned(platform, user_id, LEASED - requests * PRICE_MC), seconds=10)
    assert len(await charges(platform, user_id)) == requests


async def test_failures_and_disconnects_cost_nothing(leased):
    platform, http, _ = leased
    user_id, secret = await platform.user_with_key("refund@example.com", credits_mc=LEASED)
    assert_envelope(await http.post(PATH, json={"mode": "fail"}, headers={"X-API-Key": secret}), 500,
                    "processing_error")
    with pytest.raises(httpx.ReadTimeout):
        await http.post(PATH, json={"mode": "slow"}, headers={"X-API-Key": secret}, timeout=0.5)
    lease = platform.app.state.meter.leases.book.current.get(user_id)
    assert lease is not None and await eventually(lambda: lease.in_flight == 0, seconds=5)
    assert lease.left_mc == lease.hold.amount_mc  # everything given back
    assert await eventually(lambda: returned(platform, user_id, LEASED), seconds=10)
    assert await charges(platform, user_id) == []


async def test_an_idempotency_key_a_small_balance_and_premium_skip_the_lease(leased):
    platform, http, database = leased
    user_id, secret = await platform.user_with_key("keyed@example.com", credits_mc=LEASED)
    keyed = {"X-API-Key": secret, "Idempotency-Key": "k-1"}
    first, again = [await http.post(PATH, json={}, headers=keyed) for _ in range(2)]
    assert again.headers["Idempotent-Replayed"] == "true" and again.content == first.content
    assert holds(database, user_id) == [("image_edit", "committed", "k-1")]

    poor_id, poor = await platform.user_with_key("poor@example.com", credits_mc=PRICE_MC + 100)
    assert (await http.post(PATH, json={}, headers={"X-API-Key": poor})).status_code == 200
    assert_envelope(await http.post(PATH, json={}, headers={"X-API-Key": poor}), 402, "insufficient_credits")
    assert holds(database, poor_id) == [("image_edit", "committed", None)]

    vip_id, vip = await platform.user_with_key("vip@example.com", premium=True)
    assert (await http.post(PATH, json={}, headers={"X-API-Key": vip})).status_code == 200
    assert holds(database, vip_id) == []  # premium: no accounts call at all besides authentication


async def test_a_charge_is_on_disk_before_the_answer(tmp_path):
    async with running_platform(tmp_path, customize_app=add_priced_route, lease_flush_ms=60_000) as platform, \
            httpx.AsyncClient(base_url=platform.base_url, timeout=30) as http:
        assert await eventually(lambda: platform.app.state.meter.leases.prices is not None, seconds=10)
        user_id, secret = await platform.user_with_key("durable@example.com", credits_mc=LEASED)
        assert (await http.post(PATH, json={}, headers={"X-API-Key": secret})).status_code == 200
        assert len(charge_journal.pending(tmp_path / "edge-outbox.db")) == 1
        assert (await platform.balance(user_id)).balance_mc == LEASED  # not reported yet
    # Shutting the edge down delivered it and returned the lease.
    async with running_platform(tmp_path, credit_leases=False) as platform:
        assert await returned(platform, user_id, LEASED - PRICE_MC)


async def test_with_leases_off_every_request_holds_its_own_credits(tmp_path):
    async with running_platform(tmp_path, customize_app=add_priced_route, credit_leases=False) as platform, \
            httpx.AsyncClient(base_url=platform.base_url, timeout=30) as http:
        user_id, secret = await platform.user_with_key("off@example.com", credits_mc=LEASED)
        assert (await http.post(PATH, json={}, headers={"X-API-Key": secret})).status_code == 200
        assert holds(tmp_path / "accounts.db", user_id) == [("image_edit", "committed", None)]
        assert platform.app.state.meter.leases is None
