"""The acceptance test of the ledger: many concurrent clients, on SQLite and on PostgreSQL.

8 gRPC clients run 250 operations each against one user: reserve then commit (the whole hold, or
less), sometimes twice at once (a retried commit), or reserve then release; the balance runs low,
so many reserves must fail with INSUFFICIENT_CREDITS. Afterwards: nothing overspent, no commit
charged twice, nothing left held, and the ledger sums to the balance.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import grpc
from sqlalchemy import text

from tests.support.grpc_errors import error_info
from univence.accounts.v1 import accounts_pb2 as pb

CLIENTS = 8
OPERATIONS_PER_CLIENT = 250
START_MC = 1_200_000  # runs out about two thirds of the way through
FIXED_PRICE_OPERATIONS = [pb.OPERATION_IMAGE_EDIT, pb.OPERATION_IMAGE_SEGMENTATION, pb.OPERATION_VOICE_CLONE,
                          pb.OPERATION_MUSIC_GENERATION, pb.OPERATION_VIDEO_BACKGROUND_REMOVAL]


async def client(stub, user_id: str, seed: int) -> dict:
    """One client's operations; returns what it saw charged, per hold, and how often it was refused."""
    rng = random.Random(seed)
    charged: dict[str, int] = {}
    refused = released = 0
    for _ in range(OPERATIONS_PER_CLIENT):
        operation = rng.choice(FIXED_PRICE_OPERATIONS)
        quantity = rng.randint(1, 4)
        try:
            reserved = await stub.Reserve(pb.ReserveRequest(
                user_id=user_id, items=[pb.ChargeItem(operation=operation, quantity=quantity)]))
        except grpc.RpcError as error:
            assert error_info(error).reason == "INSUFFICIENT_CREDITS", error_info(error)
            refused += 1
            continue
        hold_id = reserved.hold.hold_id
        roll = rng.random()
        if roll < 0.25:
            await stub.Release(pb.ReleaseRequest(hold_id=hold_id, reason="processing_error"))
            released += 1
            continue
        done = pb.ChargeItem(operation=operation, quantity=rng.randint(1, quantity))  # sometimes less
        commit = pb.CommitRequest(hold_id=hold_id, items=[done] if roll < 0.7 else [])
        if roll > 0.9:  # a retried commit racing the first one
            results = await asyncio.gather(stub.Commit(commit), stub.Commit(commit))
        else:
            results = [await stub.Commit(commit)]
        assert len({r.hold.charged_mc for r in results}) == 1
        assert results[0].hold.charged_mc <= reserved.hold.amount_mc
        charged[hold_id] = results[0].hold.charged_mc
    return {"charged": charged, "refused": refused, "released": released}


async def test_no_overspend_no_double_charge_under_concurrent_clients(accounts, engine):
    user = await accounts.new_user(credits_mc=START_MC)
    results = await asyncio.wait_for(asyncio.gather(
        *(client(accounts.stub, user, seed) for seed in range(CLIENTS))), timeout=120)

    charged = {hold: mc for r in results for hold, mc in r["charged"].items()}
    total_charged = sum(charged.values())
    refused = sum(r["refused"] for r in results)
    print(f"\ncharged {total_charged} mc over {len(charged)} commits, refused {refused}, released "
          f"{sum(r['released'] for r in results)}")
    assert refused > 50, "the balance never ran low: raise the load or lower START_MC"
    assert len(charged) > 300

    balance = await accounts.balance(user)
    assert balance.held_mc == 0
    assert balance.balance_mc == START_MC - total_charged >= 0
    assert total_charged <= START_MC

    with engine.begin() as conn:
        entries = conn.execute(text(
            "SELECT amount_mc, kind, hold_id, balance_after_mc FROM ledger_entries WHERE user_id = :u ORDER BY seq"),
            {"u": user}).all()
        row = conn.execute(text("SELECT balance_mc, held_mc FROM users WHERE id = :u"), {"u": user}).one()
        holds = conn.execute(text("SELECT state, COUNT(*) FROM holds WHERE user_id = :u GROUP BY state"),
                             {"u": user}).all()
    assert sum(e.amount_mc for e in entries) == row.balance_mc == balance.balance_mc
    assert row.held_mc == 0
    assert "held" not in dict(holds)
    running = 0
    for entry in entries:  # every entry's balance_after is the running sum, and never negative
        running += entry.amount_mc
        assert entry.balance_after_mc == running >= 0
    charges = Counter(e.hold_id for e in entries if e.kind == "charge")
    assert max(charges.values()) == 1
    assert {hold: -e.amount_mc for e in entries if e.kind == "charge" for hold in [e.hold_id]} == {
        hold: mc for hold, mc in charged.items() if mc}
