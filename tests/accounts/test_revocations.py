"""WatchRevocations over real gRPC, on SQLite and PostgreSQL: every change to a user's credentials (key
revoked, disabled, enabled, premium, session ended, password changed) reaches a subscriber before the RPC
that made it answers, and a change made on another replica sharing the database within a second."""

from __future__ import annotations

import asyncio
import time

from tests.accounts.test_people import FAST, PASSWORD, log_in, sign_up
from univence.accounts.v1 import accounts_pb2 as pb

ADMIN = {"admin_token": "revocations-test-admin-token", **FAST}


async def subscribe(accounts):
    """A subscription, once its first message (nothing revoked yet) says it is in place."""
    stream = accounts.stub.WatchRevocations(pb.WatchRevocationsRequest())
    first = await asyncio.wait_for(stream.read(), 5)
    assert list(first.user_ids) == [] and first.heartbeat_seconds > 0
    return stream


async def next_change(stream, seconds: float = 0.05) -> list[str]:
    """The next message's users; by default it must be there already (the changing RPC waited for it)."""
    return list((await asyncio.wait_for(stream.read(), seconds)).user_ids)


async def test_every_credential_change_is_told_before_its_rpc_answers(start_accounts):
    async with start_accounts(**ADMIN) as accounts:
        stream = await subscribe(accounts)
        user_id = await accounts.new_user()
        key = await accounts.stub.CreateApiKey(pb.CreateApiKeyRequest(user=user_id), metadata=accounts.admin)
        await accounts.stub.RevokeApiKey(pb.RevokeApiKeyRequest(key_id=key.api_key.key_id), metadata=accounts.admin)
        assert await next_change(stream) == [user_id]
        for change in ({"premium": True}, {"disabled": True}, {"disabled": False}):
            await accounts.stub.UpdateUser(pb.UpdateUserRequest(user=user_id, **change), metadata=accounts.admin)
            assert await next_change(stream) == [user_id], change

        person = (await sign_up(accounts, "person@example.com")).user.user_id
        session = await log_in(accounts, "person@example.com")
        await accounts.stub.RevokeSession(pb.RevokeSessionRequest(session_token=session.session_token))
        assert await next_change(stream) == [person]
        session = await log_in(accounts, "person@example.com")
        await accounts.stub.ChangePassword(pb.ChangePasswordRequest(
            session_token=session.session_token, current_password=PASSWORD, new_password=PASSWORD + "!"))
        assert await next_change(stream) == [person]
        stream.cancel()


async def test_nothing_is_told_for_a_change_that_changed_nothing(start_accounts):
    """Revoking a revoked key, or setting premium to what it is, tells nobody: the next message is the
    heartbeat, then the one real change."""
    async with start_accounts(**ADMIN) as accounts:
        stream = await subscribe(accounts)
        quiet, changed = await accounts.new_user(), await accounts.new_user()
        await accounts.stub.UpdateUser(pb.UpdateUserRequest(user=quiet, premium=False), metadata=accounts.admin)
        await accounts.stub.UpdateUser(pb.UpdateUserRequest(user=changed, premium=True), metadata=accounts.admin)
        assert await next_change(stream) == [changed]
        heartbeat = await asyncio.wait_for(stream.read(), 5)
        assert list(heartbeat.user_ids) == []
        stream.cancel()


async def test_a_change_made_on_another_replica_arrives_within_a_second(start_accounts):
    async with start_accounts(**ADMIN) as watched, start_accounts(**ADMIN) as other:
        stream = await subscribe(watched)
        user_id = await other.new_user()
        key = await other.stub.CreateApiKey(pb.CreateApiKeyRequest(user=user_id), metadata=other.admin)
        started = time.monotonic()
        await other.stub.RevokeApiKey(pb.RevokeApiKeyRequest(key_id=key.api_key.key_id), metadata=other.admin)
        assert await next_change(stream, seconds=1.0) == [user_id]
        assert time.monotonic() - started < 1.0
        stream.cancel()
