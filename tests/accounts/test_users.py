"""Users: create, find by id or email, list, update, over gRPC on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.support.grpc_errors import expect_error
from univence.accounts.v1 import accounts_pb2 as pb


async def test_create_and_get_by_id_or_email(accounts):
    created = (await accounts.stub.CreateUser(pb.CreateUserRequest(email=" Ada@Example.com ", premium=True))).user
    assert created.user_id.startswith("usr_") and len(created.user_id) > 20
    assert (created.email, created.premium) == ("Ada@Example.com", True)
    assert created.create_time.seconds > 0
    for ref in (created.user_id, "Ada@Example.com", "ada@example.com"):
        assert (await accounts.stub.GetUser(pb.GetUserRequest(user=ref))).user == created
    balance = await accounts.balance(created.user_id)
    assert (balance.balance_mc, balance.held_mc, balance.available_mc, balance.premium) == (0, 0, 0, True)


async def test_duplicate_and_missing_emails_are_invalid(accounts):
    await accounts.stub.CreateUser(pb.CreateUserRequest(email="bob@example.com"))
    error = await expect_error(accounts.stub.CreateUser(pb.CreateUserRequest(email="BOB@example.com")),
                               "INVALID_REQUEST")
    assert error.param == "email" and "already exists" in error.message
    error = await expect_error(accounts.stub.CreateUser(pb.CreateUserRequest(email="  ")), "INVALID_REQUEST")
    assert error.param == "email"
    await expect_error(accounts.stub.CreateUser(pb.CreateUserRequest(email="x" * 400)), "INVALID_REQUEST")


async def test_unknown_users_are_not_found(accounts):
    for call in (accounts.stub.GetUser(pb.GetUserRequest(user="usr_nope")),
                 accounts.stub.UpdateUser(pb.UpdateUserRequest(user="nobody@example.com", premium=True)),
                 accounts.stub.CreateApiKey(pb.CreateApiKeyRequest(user="usr_nope")),
                 accounts.stub.ListApiKeys(pb.ListApiKeysRequest(user="usr_nope")),
                 accounts.stub.ListLedgerEntries(pb.ListLedgerEntriesRequest(user_id="usr_nope"))):
        await expect_error(call, "NOT_FOUND")
    error = await expect_error(accounts.stub.GetUser(pb.GetUserRequest()), "INVALID_REQUEST")
    assert error.param == "user"


async def test_update_changes_premium_only_when_given(accounts):
    user = await accounts.new_user()
    updated = (await accounts.stub.UpdateUser(pb.UpdateUserRequest(user=user, premium=True))).user
    assert updated.premium
    unchanged = (await accounts.stub.UpdateUser(pb.UpdateUserRequest(user=user))).user
    assert unchanged.premium
    assert not (await accounts.stub.UpdateUser(pb.UpdateUserRequest(user=user, premium=False))).user.premium


async def test_list_users_oldest_first_in_pages(accounts):
    made = [await accounts.new_user(email=f"list{i}@example.com") for i in range(5)]
    seen, token = [], ""
    while True:
        page = await accounts.stub.ListUsers(pb.ListUsersRequest(page_size=2, page_token=token))
        seen += [u.user_id for u in page.users]
        token = page.next_page_token
        if not token:
            break
    assert seen == made
    everyone = await accounts.stub.ListUsers(pb.ListUsersRequest())
    assert [u.user_id for u in everyone.users] == made and not everyone.next_page_token
    await expect_error(accounts.stub.ListUsers(pb.ListUsersRequest(page_size=-1)), "INVALID_REQUEST")
    # a ledger token is not a users token
    await expect_error(accounts.stub.ListUsers(pb.ListUsersRequest(page_token="bGVkZ2VyOjU=")), "INVALID_REQUEST")
