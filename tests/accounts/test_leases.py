"""Credit leases on the accounts side (AcquireLease, ChargeLeases), over gRPC on SQLite and PostgreSQL:
a lease is a hold of min(free, target); charges are idempotent per request id, each its own ledger entry,
never more than the lease holds (or, once it is gone, what is free); the ledger sums to the balance."""

from __future__ import annotations

import asyncio

from tests.support.grpc_errors import expect_error
from univence.accounts.v1 import accounts_pb2 as pb

EDIT = pb.ChargeItem(operation=pb.OPERATION_IMAGE_EDIT)  # 500 mc
CHAT = pb.ChargeItem(operation=pb.OPERATION_CHAT_COMPLETION)


def charge(lease: pb.Hold, request_id: str, *items: pb.ChargeItem, max_mc: int = 500) -> pb.LeaseCharge:
    return pb.LeaseCharge(hold_id=lease.hold_id, request_id=request_id, items=list(items or [EDIT]), max_mc=max_mc)


async def ledger_sums(accounts, user: str) -> pb.GetBalanceResponse:
    balance = await accounts.balance(user)
    entries = (await accounts.stub.ListLedgerEntries(pb.ListLedgerEntriesRequest(user_id=user, page_size=1000))).entries
    assert sum(e.amount_mc for e in entries) == balance.balance_mc
    return balance


async def test_a_lease_holds_min_of_free_and_target_and_nothing_below_the_minimum(accounts):
    user = await accounts.new_user(credits_mc=7000)
    got = await accounts.stub.AcquireLease(pb.AcquireLeaseRequest(user_id=user, target_mc=5000, minimum_mc=1000))
    assert (got.lease.amount_mc, got.lease.state, got.available_mc) == (5000, pb.HOLD_STATE_HELD, 7000)
    rest = await accounts.stub.AcquireLease(pb.AcquireLeaseRequest(user_id=user, target_mc=5000, minimum_mc=1000))
    assert (rest.lease.amount_mc, rest.available_mc) == (2000, 2000)
    none = await accounts.stub.AcquireLease(pb.AcquireLeaseRequest(user_id=user, target_mc=5000, minimum_mc=1))
    assert not none.HasField("lease") and none.available_mc == 0
    balance = await accounts.balance(user)
    assert (balance.balance_mc, balance.held_mc) == (7000, 7000)

    await accounts.stub.Release(pb.ReleaseRequest(hold_id=got.lease.hold_id))
    small = await accounts.stub.AcquireLease(pb.AcquireLeaseRequest(user_id=user, target_mc=5000, minimum_mc=6000))
    assert not small.HasField("lease") and small.available_mc == 5000
    assert (await expect_error(accounts.stub.AcquireLease(pb.AcquireLeaseRequest(user_id=user, target_mc=0)),
                       "INVALID_REQUEST")).param == "target_mc"


async def test_each_charge_is_its_own_entry_charged_once_and_the_rest_returns_on_release(accounts):
    user = await accounts.new_user(credits_mc=10_000)
    lease = (await accounts.stub.AcquireLease(pb.AcquireLeaseRequest(user_id=user, target_mc=3000))).lease
    batch = [charge(lease, f"r{i}") for i in range(3)]
    first = await accounts.stub.ChargeLeases(pb.ChargeLeasesRequest(charges=batch))
    assert [r.charged_mc for r in first.results] == [500] * 3
    assert (first.leases[0].amount_mc, first.leases[0].charged_mc) == (1500, 1500)
    # The same batch again (an answer lost on the way), plus one new request: only the new one costs.
    again = await accounts.stub.ChargeLeases(pb.ChargeLeasesRequest(charges=[*batch, charge(lease, "r3")]))
    assert [r.charged_mc for r in again.results] == [500] * 4
    balance = await ledger_sums(accounts, user)
    assert (balance.balance_mc, balance.held_mc) == (10_000 - 2000, 1000)
    entries = (await accounts.stub.ListLedgerEntries(pb.ListLedgerEntriesRequest(user_id=user))).entries
    charges = [e for e in entries if e.kind == "charge"]
    assert sorted(e.description.rsplit("(", 1)[1] for e in charges) == ["r0)", "r1)", "r2)", "r3)"]
    assert all(e.amount_mc == -500 for e in charges)

    released = await accounts.stub.Release(pb.ReleaseRequest(hold_id=lease.hold_id))
    assert released.hold.state == pb.HOLD_STATE_RELEASED
    balance = await ledger_sums(accounts, user)
    assert (balance.balance_mc, balance.held_mc) == (8000, 0)


async def test_a_charge_never_exceeds_its_quote_nor_what_the_lease_holds(accounts):
    user = await accounts.new_user(credits_mc=10_000)
    lease = (await accounts.stub.AcquireLease(pb.AcquireLeaseRequest(user_id=user, target_mc=800))).lease
    answer = await accounts.stub.ChargeLeases(pb.ChargeLeasesRequest(charges=[
        charge(lease, "capped", EDIT, EDIT, max_mc=600),   # 1000 at list price, the request took 600
        charge(lease, "beyond", EDIT, max_mc=500)]))       # 200 left in the lease
    assert [r.charged_mc for r in answer.results] == [600, 200]
    assert answer.leases[0].amount_mc == 0
    balance = await ledger_sums(accounts, user)
    assert (balance.balance_mc, balance.held_mc) == (9200, 0)


async def test_a_late_charge_is_at_most_what_is_free(accounts):
    user = await accounts.new_user(credits_mc=1200)
    lease = (await accounts.stub.AcquireLease(pb.AcquireLeaseRequest(user_id=user, target_mc=1200))).lease
    await accounts.stub.Release(pb.ReleaseRequest(hold_id=lease.hold_id))
    other = (await accounts.stub.Reserve(pb.ReserveRequest(user_id=user, items=[EDIT, EDIT]))).hold  # 1000 held
    answer = await accounts.stub.ChargeLeases(pb.ChargeLeasesRequest(charges=[charge(lease, "late")]))
    assert (answer.results[0].charged_mc, answer.results[0].late) == (200, True)
    nothing = await accounts.stub.ChargeLeases(pb.ChargeLeasesRequest(charges=[charge(lease, "later")]))
    assert (nothing.results[0].charged_mc, nothing.results[0].late) == (0, True)
    await accounts.stub.Commit(pb.CommitRequest(hold_id=other.hold_id))
    balance = await ledger_sums(accounts, user)
    assert (balance.balance_mc, balance.held_mc) == (0, 0)


async def test_premium_users_get_no_lease_and_bad_charges_are_refused(accounts):
    vip = await accounts.new_user(premium=True, credits_mc=5000)
    got = await accounts.stub.AcquireLease(pb.AcquireLeaseRequest(user_id=vip, target_mc=1000))
    assert not got.HasField("lease")
    user = await accounts.new_user(credits_mc=5000)
    lease = (await accounts.stub.AcquireLease(pb.AcquireLeaseRequest(user_id=user, target_mc=1000))).lease
    empty = await expect_error(accounts.stub.ChargeLeases(pb.ChargeLeasesRequest(charges=[charge(lease, "")])),
                               "INVALID_REQUEST")
    assert empty.param == "charges[0].request_id"
    negative = pb.ChargeLeasesRequest(charges=[charge(lease, "x", max_mc=-1)])
    assert (await expect_error(accounts.stub.ChargeLeases(negative), "INVALID_REQUEST")).param == "charges[0].max_mc"
    unknown = await accounts.stub.ChargeLeases(pb.ChargeLeasesRequest(charges=[
        pb.LeaseCharge(hold_id="hold_nope", request_id="u", items=[EDIT], max_mc=500)]))
    assert unknown.results[0].charged_mc == 0


async def test_concurrent_batches_from_two_edges_never_overspend(accounts):
    users = [await accounts.new_user(credits_mc=4000) for _ in range(3)]
    leases = [(await accounts.stub.AcquireLease(pb.AcquireLeaseRequest(user_id=u, target_mc=2000))).lease
              for u in users for _ in range(2)]

    async def edge(name: str, mine: list[pb.Hold]) -> None:
        for n in range(6):  # 6 x 500 asked of each 2000 lease: 4 charged, 2 capped to nothing
            batch = [charge(lease, f"{name}-{lease.hold_id}-{n}") for lease in reversed(mine)]
            await accounts.stub.ChargeLeases(pb.ChargeLeasesRequest(charges=batch))

    await asyncio.gather(edge("a", leases[0::2]), edge("b", leases[1::2]))
    for user in users:
        balance = await ledger_sums(accounts, user)
        assert (balance.balance_mc, balance.held_mc) == (0, 0)
