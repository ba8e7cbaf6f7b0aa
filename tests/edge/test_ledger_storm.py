"""The ledger storm (issue 13): two edge processes with credit leases share one accounts service (SQLite,
then PostgreSQL); 8 clients send mixed requests to both at once, priced successes, failures and clients
that leave mid-work, until the users run out of credits. Then: 0 overspend, 0 double charge, the ledger
sums to the balance, every success charged exactly once with its own ledger entry, no failure charged, and
every lease returned. An edge killed with SIGKILL while holding a lease and undelivered charges: the lease
is back within the hold TTL, and the restarted edge delivers the charges. A user with one credit left
spends exactly that credit through two replicas.

REQUESTS_PER_CLIENT (120 by default) keeps a backend's storm to ~15 s of CI on 2 cores; the issue's 10k
per client is the same test with a larger number (20+ minutes a backend on 2 cores), past the per-test timeout:

    UNIVENCE_STORM_REQUESTS_PER_CLIENT=10000 .venv/bin/python -m pytest tests/edge/test_ledger_storm.py \
        -k a_storm -x -q -s --timeout=0

The credits follow the size, so each user runs out near the end whatever it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import sqlalchemy

from edge import charge_journal
from tests.edge.priced import PATH, PRICE_MC
from tests.support.platform import Platform, running_platform
from tests.support.ports import free_port
from tests.support.processes import ADMIN_TOKEN, Process, answering, edge_process, killed_at_exit
from tests.support.waiting import eventually
from univence.accounts.v1 import accounts_pb2 as apb

CLIENTS = 8
USERS = 4
REQUESTS_PER_CLIENT = int(os.environ.get("UNIVENCE_STORM_REQUESTS_PER_CLIENT", "120"))
# A user's two clients try ~70 % of their requests as successes; credits for 8/15 of all their requests (~3/4 of
# those tried: 128 of ~170 at 120 a client) make each user run out near the end.
CREDITS_MC = CLIENTS // USERS * REQUESTS_PER_CLIENT * 8 // 15 * PRICE_MC
TTL_SECONDS, SWEEP_SECONDS = 2, 0.2


@dataclass
class Stack:
    platform: Platform
    edges: list[str]  # base URLs
    processes: list[Process]
    tmp_path: object
    database_url: str

    def late_charges(self) -> int:
        """Lease charges that arrived after their lease was gone (not renewed, or returned too early)."""
        engine = sqlalchemy.create_engine(self.database_url)
        try:
            with engine.connect() as conn:
                return conn.execute(sqlalchemy.text("SELECT count(*) FROM lease_charges WHERE late")).scalar_one()
        finally:
            engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
async def stack(request, tmp_path) -> AsyncIterator[Stack]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else \
        f"sqlite:///{tmp_path}/accounts.db"
    overrides = {"database_url": url, "hold_ttl_seconds": TTL_SECONDS, "hold_sweep_seconds": SWEEP_SECONDS,
                 "admin_token": ADMIN_TOKEN}
    async with running_platform(tmp_path, accounts_overrides=overrides) as platform:
        settings = platform.edge_settings
        ports = [free_port(), free_port()]
        processes = [edge_process(tmp_path, port, settings.accounts_address, settings.media_address, name=f"edge{i}",
                                  lease_idle_seconds="1", rate_limit_per_minute="0") for i, port in enumerate(ports)]
        for process in processes:
            process.start()
        with killed_at_exit(*processes):
            edges = [f"http://127.0.0.1:{port}" for port in ports]
            for base_url, process in zip(edges, processes, strict=True):
                await answering(base_url, process)
            await asyncio.sleep(1.5)  # each edge has read the price table (until then: per-request holds)
            yield Stack(platform, edges, processes, tmp_path, url)


async def ledger(platform: Platform, user_id: str) -> tuple[apb.GetBalanceResponse, list[apb.LedgerEntry]]:
    """The balance and the charge entries (every page), after checking that the ledger sums to the balance."""
    balance = await platform.balance(user_id)
    entries: list[apb.LedgerEntry] = []
    token = ""
    while True:
        page = await platform.accounts.ListLedgerEntries(
            apb.ListLedgerEntriesRequest(user_id=user_id, page_size=1000, page_token=token))
        entries.extend(page.entries)
        if not (token := page.next_page_token):
            break
    assert sum(e.amount_mc for e in entries) == balance.balance_mc
    return balance, [e for e in entries if e.kind == "charge"]


async def settled(platform: Platform, user_id: str) -> bool:
    return (await platform.balance(user_id)).held_mc == 0


async def client(base_url: str, secret: str, seed: int) -> Counter:
    """REQUESTS_PER_CLIENT mixed requests; counts the outcomes (`ok` only for a 200)."""
    rng, seen = random.Random(seed), Counter()
    async with httpx.AsyncClient(base_url=base_url, timeout=30, headers={"X-API-Key": secret}) as http:
        for _ in range(REQUESTS_PER_CLIENT):
            kind = rng.choices(["ok", "fail", "leave"], weights=[70, 15, 15])[0]
            if kind == "leave":  # gone long before the result exists: nothing may be charged
                with contextlib.suppress(httpx.TimeoutException):
                    await http.post(PATH, json={"mode": "slow"}, timeout=0.05)
                seen["left"] += 1
                continue
            answer = await http.post(PATH, json={"mode": "fail"} if kind == "fail" else {})
            seen[{200: "ok", 402: "poor", 500: "failed"}.get(answer.status_code, str(answer.status_code))] += 1
    return seen


async def test_a_storm_on_two_edges_charges_every_success_once_and_never_overspends(stack):
    platform = stack.platform
    users = [await platform.user_with_key(f"storm{i}@example.com", credits_mc=CREDITS_MC) for i in range(USERS)]
    started = time.monotonic()
    outcomes = await asyncio.gather(*[client(stack.edges[i % 2], users[i % USERS][1], seed=i) for i in range(CLIENTS)])
    took = time.monotonic() - started
    assert all(set(seen) <= {"ok", "poor", "failed", "left"} for seen in outcomes), outcomes
    for u, (user_id, _) in enumerate(users):
        assert await eventually(lambda user_id=user_id: settled(platform, user_id), seconds=15)  # leases back
        successes = sum(outcomes[i]["ok"] for i in range(CLIENTS) if i % USERS == u)
        balance, charges = await ledger(platform, user_id)
        assert balance.balance_mc == CREDITS_MC - successes * PRICE_MC >= 0  # once each, nothing for failures
        assert [c.amount_mc for c in charges] == [-PRICE_MC] * successes
        assert len({(c.hold_id, c.description) for c in charges}) == successes  # each its own entry
        assert sum(not c.hold_id for c in charges) > successes // 2  # most were served from leases
        assert sum(outcomes[i]["poor"] for i in range(CLIENTS) if i % USERS == u) > 0  # it did run out
    # Leases were returned only once their charges were in: every charge met its lease still held.
    assert stack.late_charges() == 0
    print(f"storm: {CLIENTS * REQUESTS_PER_CLIENT} requests in {took:.1f} s", sum(outcomes, Counter()))


async def test_an_edge_killed_holding_a_lease_gives_it_back_within_the_ttl_and_loses_no_charge(stack):
    platform, tmp_path = stack.platform, stack.tmp_path
    settings = platform.edge_settings
    port = free_port()
    # Charges reported once a minute: killed, this edge still has them in its journal only.
    slow = edge_process(tmp_path, port, settings.accounts_address, settings.media_address, name="edge-killed",
                        lease_flush_ms="60000")
    slow.start()
    base_url = f"http://127.0.0.1:{port}"
    with killed_at_exit(slow):
        await answering(base_url, slow)
        await asyncio.sleep(1.5)
        user_id, secret = await platform.user_with_key("killed@example.com", credits_mc=50_000)
        async with httpx.AsyncClient(base_url=base_url, timeout=30, headers={"X-API-Key": secret}) as http:
            assert [(await http.post(PATH, json={})).status_code for _ in range(3)] == [200] * 3
        # The lease waits for its charges to be delivered before it may go back: the keeper keeps it
        # alive past its TTL meanwhile.
        await asyncio.sleep(2 * TTL_SECONDS + SWEEP_SECONDS)
        assert (await platform.balance(user_id)).held_mc > 0
        slow.kill()
    killed = time.monotonic()
    assert len(charge_journal.pending(tmp_path / "edge-killed-outbox.db")) == 3
    assert await eventually(lambda: settled(platform, user_id), seconds=30)
    assert time.monotonic() - killed < TTL_SECONDS + SWEEP_SECONDS + 2  # with slack for the test's own loop
    assert (await platform.balance(user_id)).balance_mc == 50_000  # the charges are not delivered yet

    again = edge_process(tmp_path, port, settings.accounts_address, settings.media_address, name="edge-killed")
    again.start()
    with killed_at_exit(again):
        await answering(base_url, again)

        async def delivered() -> bool:
            return (await platform.balance(user_id)).balance_mc == 50_000 - 3 * PRICE_MC

        assert await eventually(delivered, seconds=15)
    balance, charges = await ledger(platform, user_id)
    assert (balance.held_mc, len(charges)) == (0, 3)
    assert stack.late_charges() == 3  # charged after the lease expired: from what was free, all of it here


async def test_one_credit_left_is_spent_exactly_whichever_replica(stack):
    platform = stack.platform
    user_id, secret = await platform.user_with_key("last@example.com", credits_mc=1000)  # 1 credit: 2 edits
    async with httpx.AsyncClient(timeout=30, headers={"X-API-Key": secret}) as http:
        answers = await asyncio.gather(*[http.post(f"{stack.edges[i % 2]}{PATH}", json={}) for i in range(8)])
    assert sorted(a.status_code for a in answers) == [200] * 2 + [402] * 6
    balance, charges = await ledger(platform, user_id)
    assert (balance.balance_mc, balance.held_mc, len(charges)) == (0, 0, 2)
