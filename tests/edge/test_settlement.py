"""Credits are never held up by a crash (issue 9): real processes killed with SIGKILL mid-request.

- accounts dies with 8 requests in flight: the commits and releases it missed wait in the edge's outbox
  and are delivered within seconds of accounts coming back (the hold TTL is the default 40 s, so expiry
  cannot be what frees them);
- an edge dies: its holds are no longer renewed and free themselves within TTL + sweep, while a live
  edge keeps a hold alive for many TTLs (long work);
- an edge restarted on the outbox a killed edge left delivers it.
Every ledger sums to its balance afterwards. The edges run tests/edge/priced.py's route, with credit leases
off: these are the per-request holds' crashes (tests/edge/test_ledger_storm.py has the leases').
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import httpx
import pytest

from tests.edge.priced import PATH, PRICE_MC, add_priced_route
from tests.support.platform import running_platform
from tests.support.ports import free_port
from tests.support.processes import (
    ADMIN,
    ADMIN_TOKEN,
    accounts_process,
    answering,
    edge_process,
    killed_at_exit,
    serving,
)
from tests.support.waiting import eventually
from univence.accounts.v1 import accounts_pb2 as apb
from univence.accounts.v1 import accounts_pb2_grpc


async def user_with_key(stub: accounts_pb2_grpc.AccountsServiceStub, credits_mc: int) -> tuple[str, str]:
    user = (await stub.CreateUser(apb.CreateUserRequest(email="crash@example.com"), metadata=ADMIN)).user
    await stub.GrantCredits(apb.GrantCreditsRequest(user=user.user_id, amount_mc=credits_mc), metadata=ADMIN)
    key = await stub.CreateApiKey(apb.CreateApiKeyRequest(user=user.user_id, name="crash"), metadata=ADMIN)
    return user.user_id, key.secret


async def sums_to_balance(stub: accounts_pb2_grpc.AccountsServiceStub, user_id: str) -> apb.GetBalanceResponse:
    """The user's balance, after checking that the ledger sums to it."""
    balance = await stub.GetBalance(apb.GetBalanceRequest(user_id=user_id))
    entries = (await stub.ListLedgerEntries(apb.ListLedgerEntriesRequest(user_id=user_id, page_size=1000))).entries
    assert sum(e.amount_mc for e in entries) == balance.balance_mc
    return balance


def hold_states(database: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(database)) as db:
        return sorted(row[0] for row in db.execute("SELECT state FROM holds"))


@contextlib.asynccontextmanager
async def accounts_stub(port: int) -> AsyncIterator[accounts_pb2_grpc.AccountsServiceStub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield accounts_pb2_grpc.AccountsServiceStub(channel)


async def test_accounts_killed_with_8_in_flight_settles_every_hold_when_it_is_back(tmp_path):
    port = free_port()
    accounts = accounts_process(tmp_path, port)
    accounts.start()
    with killed_at_exit(accounts):
        await serving(f"127.0.0.1:{port}", accounts)
        async with running_platform(tmp_path, customize_app=add_priced_route, credit_leases=False,
                                    accounts_address=f"127.0.0.1:{port}") as platform, \
                accounts_stub(port) as stub, httpx.AsyncClient(base_url=platform.base_url, timeout=30) as http:
            user_id, secret = await user_with_key(stub, 10_000)
            headers = {"X-API-Key": secret}
            # 4 finish their work while accounts is down (their commit waits in the outbox and they still
            # answer 200); 4 are given up by their client meanwhile (their release waits likewise).
            finishing = [http.post(PATH, json={"seconds": 1.5}, headers=headers) for _ in range(4)]
            leaving = [http.post(PATH, json={"seconds": 30}, headers=headers, timeout=2.0) for _ in range(4)]
            requests = asyncio.gather(*finishing, *leaving, return_exceptions=True)
            assert await eventually(lambda: held(stub, user_id, 8 * PRICE_MC), seconds=10)
            accounts.kill()
            answers = await requests
            assert [a.status_code for a in answers[:4]] == [200] * 4, answers
            assert all(isinstance(a, httpx.ReadTimeout) for a in answers[4:]), answers

            accounts.start()
            back = time.monotonic()
            await serving(f"127.0.0.1:{port}", accounts)
            assert await eventually(lambda: held(stub, user_id, 0), seconds=10)
            assert time.monotonic() - back < 10
            balance = await sums_to_balance(stub, user_id)
            assert balance.balance_mc == 10_000 - 4 * PRICE_MC
            assert hold_states(tmp_path / "crash-accounts.db") == ["committed"] * 4 + ["released"] * 4


async def held(stub: accounts_pb2_grpc.AccountsServiceStub, user_id: str, amount_mc: int) -> bool:
    with contextlib.suppress(grpc.aio.AioRpcError):
        return (await stub.GetBalance(apb.GetBalanceRequest(user_id=user_id), timeout=2)).held_mc == amount_mc
    return False


@pytest.fixture
async def short_holds(tmp_path) -> AsyncIterator[tuple]:
    """Accounts and media in the test's loop, accounts with 2 s holds swept every 0.2 s."""
    async with running_platform(tmp_path, credit_leases=False, accounts_overrides={
            "hold_ttl_seconds": 2, "admin_token": ADMIN_TOKEN, "hold_sweep_seconds": 0.2}) as platform:
        yield platform


async def test_a_live_edge_keeps_long_work_held_and_a_killed_edges_holds_free_themselves(tmp_path, short_holds):
    platform = short_holds
    settings = platform.edge_settings
    port = free_port()
    edge = edge_process(tmp_path, port, settings.accounts_address, settings.media_address, credit_leases="false")
    edge.start()
    with killed_at_exit(edge):
        base_url = f"http://127.0.0.1:{port}"
        await answering(base_url, edge)
        user_id, secret = await user_with_key(platform.accounts, 10_000)
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
            # 5 s of work on 2 s holds: the keeper renews it (every 0.5 s), so it is committed, not expired.
            long = asyncio.ensure_future(http.post(PATH, json={"seconds": 5}, headers={"X-API-Key": secret}))
            await asyncio.sleep(3.5)  # past the hold's TTL
            assert await held(platform.accounts, user_id, PRICE_MC)
            assert (await long).status_code == 200
            balance = await sums_to_balance(platform.accounts, user_id)
            assert (balance.balance_mc, balance.held_mc) == (10_000 - PRICE_MC, 0)

            stuck = asyncio.ensure_future(http.post(PATH, json={"seconds": 60}, headers={"X-API-Key": secret}))
            assert await eventually(lambda: held(platform.accounts, user_id, PRICE_MC), seconds=10)
            edge.kill()
            killed = time.monotonic()
            with pytest.raises(httpx.TransportError):
                await stuck
            assert await eventually(lambda: held(platform.accounts, user_id, 0), seconds=60)
            assert time.monotonic() - killed < 2 + 0.2 + 2  # TTL + sweep, with slack
            assert (await sums_to_balance(platform.accounts, user_id)).balance_mc == 10_000 - PRICE_MC


async def test_an_edge_restarted_on_a_killed_edges_outbox_delivers_it(tmp_path):
    accounts_port, edge_port = free_port(), free_port()
    accounts = accounts_process(tmp_path, accounts_port)
    accounts.start()
    with killed_at_exit(accounts):
        await serving(f"127.0.0.1:{accounts_port}", accounts)
        async with running_platform(tmp_path, accounts_address=f"127.0.0.1:{accounts_port}") as platform, \
                accounts_stub(accounts_port) as stub:
            edge = edge_process(tmp_path, edge_port, f"127.0.0.1:{accounts_port}",
                                platform.edge_settings.media_address, credit_leases="false")
            edge.start()
            with killed_at_exit(edge):
                base_url = f"http://127.0.0.1:{edge_port}"
                await answering(base_url, edge)
                user_id, secret = await user_with_key(stub, 10_000)
                async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
                    request = asyncio.ensure_future(http.post(PATH, json={"seconds": 1.5},
                                                              headers={"X-API-Key": secret}))
                    assert await eventually(lambda: held(stub, user_id, PRICE_MC), seconds=10)
                    accounts.kill()
                    assert (await request).status_code == 200  # answered; its commit is in the outbox
                edge.kill()
                assert outbox_size(tmp_path / "outbox.db") == 1

                accounts.start()
                await serving(f"127.0.0.1:{accounts_port}", accounts)
                assert await held(stub, user_id, PRICE_MC)  # nobody delivers it while no edge runs
                edge.start()
                await answering(base_url, edge)
                assert await eventually(lambda: held(stub, user_id, 0), seconds=10)
                assert outbox_size(tmp_path / "outbox.db") == 0
                balance = await sums_to_balance(stub, user_id)
                assert balance.balance_mc == 10_000 - PRICE_MC
                assert hold_states(tmp_path / "crash-accounts.db") == ["committed"]


def outbox_size(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return db.execute("SELECT count(*) FROM settlements").fetchone()[0]
