"""Reserve, commit, release, expiry, idempotency and grants, over gRPC on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from tests.support.grpc_errors import expect_error
from univence.accounts.v1 import accounts_pb2 as pb

Op = pb.Operation
EDIT = pb.ChargeItem(operation=Op.OPERATION_IMAGE_EDIT)  # 500 mc
IMAGE_1MP = pb.ChargeItem(operation=Op.OPERATION_IMAGE_GENERATION, model="z-image-turbo", width=1024,
                          height=1024)  # 1000 mc per image
CHAT = pb.ChargeItem(operation=Op.OPERATION_CHAT_COMPLETION)


def images(n: int) -> pb.ChargeItem:
    return pb.ChargeItem(operation=Op.OPERATION_IMAGE_GENERATION, model="z-image-turbo", width=1024,
                         height=1024, quantity=n)


async def test_reserve_then_commit_charges_the_real_cost(accounts):
    user = await accounts.new_user(credits_mc=10_000)
    reserved = await accounts.stub.Reserve(pb.ReserveRequest(user_id=user, items=[images(4)]))
    assert reserved.hold.amount_mc == 4000
    assert reserved.hold.state == pb.HOLD_STATE_HELD
    assert reserved.hold.hold_id.startswith("hold_")
    assert (await accounts.balance(user)).available_mc == 6000

    committed = await accounts.stub.Commit(pb.CommitRequest(hold_id=reserved.hold.hold_id, items=[images(3)]))
    assert committed.hold.state == pb.HOLD_STATE_COMMITTED
    assert committed.hold.charged_mc == 3000
    assert committed.balance_mc == 7000
    balance = await accounts.balance(user)
    assert (balance.balance_mc, balance.held_mc, balance.available_mc) == (7000, 0, 7000)

    ledger = await accounts.stub.ListLedgerEntries(pb.ListLedgerEntriesRequest(user_id=user))
    charge, grant = ledger.entries
    assert (charge.kind, charge.amount_mc, charge.hold_id, charge.balance_after_mc) == (
        "charge", -3000, reserved.hold.hold_id, 7000)
    assert "image_generation" in charge.description
    assert (grant.kind, grant.amount_mc, grant.balance_after_mc) == ("grant", 10_000, 10_000)


async def test_commit_never_charges_more_than_the_hold(accounts):
    user = await accounts.new_user(credits_mc=10_000)
    hold = (await accounts.stub.Reserve(pb.ReserveRequest(user_id=user, items=[images(1)]))).hold
    committed = await accounts.stub.Commit(pb.CommitRequest(hold_id=hold.hold_id, items=[images(5)]))
    assert committed.hold.charged_mc == 1000
    assert committed.balance_mc == 9000


async def test_commit_without_items_charges_the_whole_hold_once(accounts):
    user = await accounts.new_user(credits_mc=5000)
    hold = (await accounts.stub.Reserve(pb.ReserveRequest(user_id=user, items=[EDIT, EDIT]))).hold
    first = await accounts.stub.Commit(pb.CommitRequest(hold_id=hold.hold_id))
    again = await accounts.stub.Commit(pb.CommitRequest(hold_id=hold.hold_id, items=[EDIT]))
    assert first.hold.charged_mc == again.hold.charged_mc == 1000
    assert first.balance_mc == again.balance_mc == 4000
    assert (await accounts.balance(user)).balance_mc == 4000
    # A release arriving after the commit (a retried settlement) answers the hold as it is, changes nothing.
    late = await accounts.stub.Release(pb.ReleaseRequest(hold_id=hold.hold_id))
    assert (late.hold.state, late.hold.charged_mc) == (pb.HOLD_STATE_COMMITTED, 1000)
    assert (await accounts.balance(user)).balance_mc == 4000


async def test_release_frees_the_hold_and_charges_nothing(accounts):
    user = await accounts.new_user(credits_mc=1000)
    hold = (await accounts.stub.Reserve(pb.ReserveRequest(user_id=user, items=[EDIT]))).hold
    released = await accounts.stub.Release(pb.ReleaseRequest(hold_id=hold.hold_id, reason="processing_error"))
    assert released.hold.state == pb.HOLD_STATE_RELEASED
    again = await accounts.stub.Release(pb.ReleaseRequest(hold_id=hold.hold_id))
    assert again.hold.state == pb.HOLD_STATE_RELEASED
    balance = await accounts.balance(user)
    assert (balance.balance_mc, balance.held_mc) == (1000, 0)
    error = await expect_error(accounts.stub.Commit(pb.CommitRequest(hold_id=hold.hold_id)), "INVALID_REQUEST")
    assert "released" in error.message


async def test_unknown_holds_and_users_are_not_found(accounts):
    await expect_error(accounts.stub.Commit(pb.CommitRequest(hold_id="hold_nope")), "NOT_FOUND")
    await expect_error(accounts.stub.Release(pb.ReleaseRequest(hold_id="hold_nope")), "NOT_FOUND")
    await expect_error(accounts.stub.Reserve(pb.ReserveRequest(user_id="usr_nope", items=[EDIT])), "NOT_FOUND")
    await expect_error(accounts.balance("usr_nope"), "NOT_FOUND")
    await expect_error(accounts.stub.Quote(pb.QuoteRequest(user_id="usr_nope", items=[EDIT])), "NOT_FOUND")
    info = await expect_error(accounts.stub.Reserve(pb.ReserveRequest(items=[EDIT])), "INVALID_REQUEST")
    assert info.param == "user_id"
    user = await accounts.new_user()
    info = await expect_error(accounts.stub.Reserve(pb.ReserveRequest(user_id=user)), "INVALID_REQUEST")
    assert info.param == "items"
    info = await expect_error(accounts.stub.Reserve(pb.ReserveRequest(user_id=user, items=[EDIT], ttl_seconds=-5)),
                              "INVALID_REQUEST")
    assert info.param == "ttl_seconds"
    info = await expect_error(accounts.stub.Reserve(pb.ReserveRequest(user_id=user, items=[EDIT],
                                                                      idempotency_key="a\x00b")), "INVALID_REQUEST")
    assert info.param == "idempotency_key"
    info = await expect_error(accounts.stub.Reserve(pb.ReserveRequest(
        user_id=user, items=[pb.ChargeItem(operation=Op.OPERATION_IMAGE_GENERATION, model="\x00")])),
        "INVALID_REQUEST")
    assert info.param == "items[0].model"
    await expect_error(accounts.stub.GetUser(pb.GetUserRequest(user="\x00")), "INVALID_REQUEST")


async def test_insufficient_credits_says_what_is_needed_and_available(accounts):
    user = await accounts.new_user(credits_mc=1500)
    await accounts.stub.Reserve(pb.ReserveRequest(user_id=user, items=[images(1)]))
    error = await expect_error(accounts.stub.Reserve(pb.ReserveRequest(user_id=user, items=[images(1)])),
                               "INSUFFICIENT_CREDITS")
    assert "1.000 credits" in error.message and "0.500 credits" in error.message
    # exactly what is available is enough
    hold = (await accounts.stub.Reserve(pb.ReserveRequest(user_id=user, items=[EDIT]))).hold
    assert hold.amount_mc == 500
    assert (await accounts.balance(user)).available_mc == 0


async def test_premium_users_pay_nothing(accounts):
    user = await accounts.new_user(premium=True)
    quote = await accounts.stub.Quote(pb.QuoteRequest(user_id=user, items=[images(2), EDIT]))
    assert (quote.amount_mc, list(quote.item_amounts_mc)) == (0, [0, 0])
    hold = (await accounts.stub.Reserve(pb.ReserveRequest(user_id=user, items=[images(2), EDIT]))).hold
    assert hold.amount_mc == 0
    committed = await accounts.stub.Commit(pb.CommitRequest(hold_id=hold.hold_id, items=[images(2)]))
    assert (committed.hold.charged_mc, committed.balance_mc) == (0, 0)
    assert not (await accounts.stub.ListLedgerEntries(pb.ListLedgerEntriesRequest(user_id=user))).entries


async def test_chat_is_for_premium_users_only(accounts):
    regular = await accounts.new_user(credits_mc=100_000)
    await expect_error(accounts.stub.Reserve(pb.ReserveRequest(user_id=regular, items=[CHAT])), "PREMIUM_REQUIRED")
    await expect_error(accounts.stub.Quote(pb.QuoteRequest(user_id=regular, items=[CHAT])), "PREMIUM_REQUIRED")
    premium = await accounts.new_user(premium=True)
    hold = (await accounts.stub.Reserve(pb.ReserveRequest(user_id=premium, items=[CHAT]))).hold
    assert hold.amount_mc == 0
    assert (await accounts.stub.Commit(pb.CommitRequest(hold_id=hold.hold_id))).hold.charged_mc == 0


async def test_quote_without_a_user_gives_list_prices(accounts):
    quote = await accounts.stub.Quote(pb.QuoteRequest(items=[images(2), EDIT]))
    assert (quote.amount_mc, list(quote.item_amounts_mc)) == (2500, [2000, 500])


async def test_idempotent_retry_after_commit_is_replayed_and_charged_once(accounts):
    user = await accounts.new_user(credits_mc=10_000)
    request = pb.ReserveRequest(user_id=user, items=[images(2)], idempotency_key="key-1",
                                request_fingerprint="sha256:aaa")
    first = await accounts.stub.Reserve(request)
    assert not first.replayed
    await accounts.stub.Commit(pb.CommitRequest(hold_id=first.hold.hold_id, response_body=b'{"data": []}',
                                                response_content_type="application/json"))
    retry = await accounts.stub.Reserve(request)
    assert retry.replayed
    assert retry.hold.hold_id == first.hold.hold_id
    assert retry.hold.state == pb.HOLD_STATE_COMMITTED
    assert (retry.stored_response, retry.stored_response_content_type) == (b'{"data": []}', "application/json")
    balance = await accounts.balance(user)
    assert (balance.balance_mc, balance.held_mc) == (8000, 0)
    # the same key for other work is refused
    other = pb.ReserveRequest(user_id=user, items=[images(2)], idempotency_key="key-1",
                              request_fingerprint="sha256:bbb")
    error = await expect_error(accounts.stub.Reserve(other), "IDEMPOTENCY_CONFLICT")
    assert error.param == "idempotency_key"
    # keys are per user
    someone_else = await accounts.new_user(credits_mc=10_000)
    request.user_id = someone_else
    assert not (await accounts.stub.Reserve(request)).replayed


async def test_idempotency_key_in_progress_conflicts_and_is_reusable_after_release(accounts):
    user = await accounts.new_user(credits_mc=10_000)
    request = pb.ReserveRequest(user_id=user, items=[EDIT], idempotency_key="k", request_fingerprint="f")
    first = await accounts.stub.Reserve(request)
    error = await expect_error(accounts.stub.Reserve(request), "IDEMPOTENCY_CONFLICT")
    assert "in progress" in error.message
    await accounts.stub.Release(pb.ReleaseRequest(hold_id=first.hold.hold_id))
    second = await accounts.stub.Reserve(request)
    assert not second.replayed and second.hold.hold_id != first.hold.hold_id
    await accounts.stub.Commit(pb.CommitRequest(hold_id=second.hold.hold_id))
    third = await accounts.stub.Reserve(request)
    assert third.replayed and third.hold.hold_id == second.hold.hold_id
    assert third.stored_response == b""
    assert (await accounts.balance(user)).balance_mc == 9500


async def test_concurrent_retries_with_one_key_hold_once(accounts):
    user = await accounts.new_user(credits_mc=10_000)
    request = pb.ReserveRequest(user_id=user, items=[EDIT], idempotency_key="k", request_fingerprint="f")
    results = await asyncio.gather(*(accounts.stub.Reserve(request) for _ in range(8)), return_exceptions=True)
    holds = [r for r in results if isinstance(r, pb.ReserveResponse)]
    assert len(holds) == 1
    assert (await accounts.balance(user)).held_mc == 500


async def test_large_responses_are_not_stored(start_accounts):
    async with start_accounts(max_stored_response_bytes=10) as accounts:
        user = await accounts.new_user(credits_mc=1000)
        request = pb.ReserveRequest(user_id=user, items=[EDIT], idempotency_key="k", request_fingerprint="f")
        hold = (await accounts.stub.Reserve(request)).hold
        await accounts.stub.Commit(pb.CommitRequest(hold_id=hold.hold_id, response_body=b"x" * 11,
                                                    response_content_type="image/png"))
        retry = await accounts.stub.Reserve(request)
        assert retry.replayed and retry.stored_response == b"" and retry.stored_response_content_type == ""


async def test_unsettled_holds_expire_on_the_next_reserve(accounts, engine):
    user = await accounts.new_user(credits_mc=1000)
    hold = (await accounts.stub.Reserve(pb.ReserveRequest(user_id=user, items=[images(1)], ttl_seconds=1))).hold
    await expect_error(accounts.stub.Reserve(pb.ReserveRequest(user_id=user, items=[EDIT])), "INSUFFICIENT_CREDITS")
    await asyncio.sleep(1.1)
    second = await accounts.stub.Reserve(pb.ReserveRequest(user_id=user, items=[images(1)]))
    assert second.hold.amount_mc == 1000
    released = await accounts.stub.Release(pb.ReleaseRequest(hold_id=hold.hold_id))
    assert released.hold.state == pb.HOLD_STATE_EXPIRED
    # A late commit charges at most what is free: all 1000 mc are held by the second hold, so nothing.
    late = await accounts.stub.Commit(pb.CommitRequest(hold_id=hold.hold_id))
    assert (late.hold.state, late.hold.charged_mc, late.balance_mc) == (pb.HOLD_STATE_COMMITTED, 0, 1000)
    balance = await accounts.balance(user)
    assert (balance.balance_mc, balance.held_mc) == (1000, 1000)


async def test_a_late_commit_of_an_expired_hold_charges_what_is_free(accounts):
    # The edge's outbox delivers a commit after the hold expired: the work was delivered, so it is
    # charged, but never beyond what the user has free at that moment.
    user = await accounts.new_user(credits_mc=1000)
    hold = (await accounts.stub.Reserve(pb.ReserveRequest(user_id=user, items=[EDIT], ttl_seconds=1))).hold
    await asyncio.sleep(1.1)
    assert (await accounts.balance(user)).held_mc == 0  # expired
    other = (await accounts.stub.Reserve(pb.ReserveRequest(user_id=user, items=[pb.ChargeItem(
        operation=Op.OPERATION_IMAGE_SEGMENTATION)]))).hold  # 250 mc, still held
    late = await accounts.stub.Commit(pb.CommitRequest(hold_id=hold.hold_id))
    assert (late.hold.state, late.hold.charged_mc, late.balance_mc) == (pb.HOLD_STATE_COMMITTED, 500, 500)
    again = await accounts.stub.Commit(pb.CommitRequest(hold_id=hold.hold_id))  # a retry charges nothing more
    assert (again.hold.charged_mc, again.balance_mc) == (500, 500)
    balance = await accounts.balance(user)
    assert (balance.balance_mc, balance.held_mc) == (500, other.amount_mc)
    entries = (await accounts.stub.ListLedgerEntries(pb.ListLedgerEntriesRequest(user_id=user))).entries
    assert sum(e.amount_mc for e in entries) == balance.balance_mc


async def test_renewed_holds_outlive_their_ttl_and_expired_ones_stay_expired(accounts):
    user = await accounts.new_user(credits_mc=2000)
    kept = (await accounts.stub.Reserve(pb.ReserveRequest(user_id=user, items=[EDIT], ttl_seconds=1))).hold
    left = (await accounts.stub.Reserve(pb.ReserveRequest(user_id=user, items=[EDIT], ttl_seconds=1))).hold
    done = (await accounts.stub.Reserve(pb.ReserveRequest(user_id=user, items=[EDIT], ttl_seconds=1))).hold
    await accounts.stub.Commit(pb.CommitRequest(hold_id=done.hold_id))
    for _ in range(4):  # 2 s in all, renewed every 0.5 s: twice its TTL
        await asyncio.sleep(0.5)
        renewed = await accounts.stub.RenewHolds(pb.RenewHoldsRequest(
            hold_ids=[kept.hold_id, done.hold_id, "hold_unknown"], ttl_seconds=1))
        states = {h.hold_id: h.state for h in renewed.holds}
        assert states == {kept.hold_id: pb.HOLD_STATE_HELD, done.hold_id: pb.HOLD_STATE_COMMITTED}
    assert (await accounts.balance(user)).held_mc == 500  # `left` expired, `kept` is still held
    late = await accounts.stub.RenewHolds(pb.RenewHoldsRequest(hold_ids=[left.hold_id]))
    assert [h.state for h in late.holds] == [pb.HOLD_STATE_EXPIRED]  # a renewal never revives a hold
    committed = await accounts.stub.Commit(pb.CommitRequest(hold_id=kept.hold_id))
    assert committed.hold.charged_mc == 500 and committed.balance_mc == 1000
    too_many = pb.RenewHoldsRequest(hold_ids=[f"hold_{i}" for i in range(1001)])
    assert (await expect_error(accounts.stub.RenewHolds(too_many), "INVALID_REQUEST")).param == "hold_ids"


async def test_the_background_sweep_expires_holds(start_accounts, engine):
    async with start_accounts(hold_sweep_seconds=0.2) as accounts:
        user = await accounts.new_user(credits_mc=1000)
        hold = (await accounts.stub.Reserve(pb.ReserveRequest(user_id=user, items=[EDIT], ttl_seconds=1))).hold
        for _ in range(50):  # no RPC touches the user meanwhile: only the sweep can expire the hold
            await asyncio.sleep(0.1)
            with engine.begin() as conn:
                state = conn.execute(text("SELECT state FROM holds WHERE id = :h"), {"h": hold.hold_id}).scalar()
            if state == "expired":
                break
        assert state == "expired"
        with engine.begin() as conn:
            assert conn.execute(text("SELECT held_mc FROM users WHERE id = :u"), {"u": user}).scalar() == 0


async def test_grants_and_purchases_with_bulk_discount(accounts):
    user = await accounts.new_user(email="buyer@example.com")
    grant = await accounts.stub.GrantCredits(pb.GrantCreditsRequest(user="buyer@example.com", amount_mc=2500,
                                                                    note="welcome"))
    assert (grant.entry.kind, grant.entry.amount_mc, grant.entry.description) == ("grant", 2500, "welcome")
    assert grant.discount_percent == 0

    small = await accounts.stub.GrantCredits(pb.GrantCreditsRequest(user=user, paid_cents=800))
    assert (small.entry.kind, small.entry.amount_mc, small.discount_percent) == ("purchase", 800_000, 0)
    tier1 = await accounts.stub.GrantCredits(pb.GrantCreditsRequest(user=user, paid_cents=900))
    assert (tier1.entry.amount_mc, tier1.discount_percent) == (1_000_000, 10)
    assert "1000 credits" in tier1.entry.description and "$9.00" in tier1.entry.description
    assert "10%" in tier1.entry.description
    tier2 = await accounts.stub.GrantCredits(pb.GrantCreditsRequest(user=user, paid_cents=8000, note="order 7"))
    assert (tier2.entry.amount_mc, tier2.discount_percent) == (10_000_000, 20)
    assert "order 7" in tier2.entry.description
    total = 2500 + 800_000 + 1_000_000 + 10_000_000
    assert tier2.entry.balance_after_mc == total
    assert (await accounts.balance(user)).balance_mc == total

    for bad in (pb.GrantCreditsRequest(user=user), pb.GrantCreditsRequest(user=user, amount_mc=-5),
                pb.GrantCreditsRequest(user=user, paid_cents=-1)):
        await expect_error(accounts.stub.GrantCredits(bad), "INVALID_REQUEST")
    await expect_error(accounts.stub.GrantCredits(pb.GrantCreditsRequest(user="nobody@x", amount_mc=1)),
                       "NOT_FOUND")


async def test_ledger_pages_newest_first(accounts):
    user = await accounts.new_user()
    for amount in range(1, 8):
        await accounts.stub.GrantCredits(pb.GrantCreditsRequest(user=user, amount_mc=amount))
    seen, token = [], ""
    while True:
        page = await accounts.stub.ListLedgerEntries(pb.ListLedgerEntriesRequest(user_id=user, page_size=3,
                                                                                  page_token=token))
        assert len(page.entries) <= 3
        seen += [e.amount_mc for e in page.entries]
        token = page.next_page_token
        if not token:
            break
    assert seen == [7, 6, 5, 4, 3, 2, 1]
    assert len({e.entry_id for e in page.entries}) == len(page.entries)
    error = await expect_error(accounts.stub.ListLedgerEntries(
        pb.ListLedgerEntriesRequest(user_id=user, page_token="garbage!")), "INVALID_REQUEST")
    assert error.param == "page_token"
