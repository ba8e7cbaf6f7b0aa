"""Revocation reaches the edge at once: a real edge (authentications cached for a long time) subscribed to
real accounts services' WatchRevocations. A revoked key or a disabled user is refused by the very next
request, without waiting; while the stream is down (accounts stopped) nothing is served from the cache,
and caching resumes once accounts is back."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from prometheus_client import REGISTRY

from edge.auth import Authenticator
from edge.config import EdgeSettings
from services.accounts.config import AccountsSettings
from services.accounts.server import definition
from tests.edge.test_auth import assert_envelope
from tests.support.platform import running_edge
from tests.support.ports import free_port
from tests.support.runtime import running_service
from tests.support.waiting import eventually
from univence import admin
from univence.accounts.v1 import accounts_pb2 as apb
from univence.accounts.v1 import accounts_pb2_grpc

ADMIN_TOKEN = "edge-revocation-test-admin-token"
# Far longer than any test: whatever is refused below was refused because of the stream, not the clock.
CACHE_SECONDS = 600
ADMIN = admin.metadata(ADMIN_TOKEN)


def accounts_settings(tmp_path: Path) -> AccountsSettings:
    return AccountsSettings(port=free_port(), metrics_port=0, database_url=f"sqlite:///{tmp_path}/accounts.db",
                            admin_token=ADMIN_TOKEN, admin_token_file=tmp_path / "admin-token")


@pytest.fixture(autouse=True)
def _own_data_folder(tmp_path, monkeypatch) -> None:
    """Every default path (the edge's outbox, tokens) in the test's folder, not the user's data folder."""
    monkeypatch.setenv("UNIVENCE_HOME", str(tmp_path / "home"))


def caching_edge(tmp_path: Path, accounts: AccountsSettings, cache_seconds: float = CACHE_SECONDS) -> EdgeSettings:
    """An edge of these accounts that caches authentications (no modality or media service is needed)."""
    return EdgeSettings(port=free_port(), metrics_port=0, accounts_address=f"127.0.0.1:{accounts.port}",
                        media_address=f"127.0.0.1:{free_port()}", auth_cache_seconds=cache_seconds,
                        maintenance_file=str(tmp_path / "maintenance"))


@contextlib.asynccontextmanager
async def admin_client(settings: AccountsSettings) -> AsyncIterator[accounts_pb2_grpc.AccountsServiceStub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{settings.port}") as channel:
        yield accounts_pb2_grpc.AccountsServiceStub(channel)


@dataclass
class Stack:
    http: httpx.AsyncClient
    accounts: accounts_pb2_grpc.AccountsServiceStub
    authenticator: Authenticator
    settings: AccountsSettings

    async def key(self, email: str) -> tuple[str, str, str]:
        """A new user and API key: (user id, key id, secret)."""
        user = (await self.accounts.CreateUser(apb.CreateUserRequest(email=email), metadata=ADMIN)).user
        key = await self.accounts.CreateApiKey(apb.CreateApiKeyRequest(user=user.user_id), metadata=ADMIN)
        return user.user_id, key.api_key.key_id, key.secret

    async def models(self, secret: str) -> httpx.Response:
        return await self.http.get("/v1/models", headers={"X-API-Key": secret})

    async def cached_ok(self, secret: str) -> None:
        """A request that succeeds and leaves the key in the edge's cache."""
        assert (await self.models(secret)).status_code == 200
        assert self.authenticator.cached(secret) is not None


@contextlib.asynccontextmanager
async def caching_stack(tmp_path: Path, cache_seconds: float = CACHE_SECONDS) -> AsyncIterator[Stack]:
    settings = accounts_settings(tmp_path)
    edge_settings = caching_edge(tmp_path, settings, cache_seconds)
    async with running_service(definition(settings), settings), admin_client(settings) as accounts, \
            running_edge(edge_settings) as (base_url, app), httpx.AsyncClient(base_url=base_url) as http:
        authenticator: Authenticator = app.state.authenticator
        assert await eventually(lambda: authenticator.live, seconds=10)
        yield Stack(http, accounts, authenticator, settings)


@pytest.fixture
async def stack(tmp_path) -> AsyncIterator[Stack]:
    async with caching_stack(tmp_path) as stack:
        yield stack


def authentications() -> float:
    """Authenticate calls the accounts services of this process answered (their metrics)."""
    return REGISTRY.get_sample_value("univence_grpc_server_handled_total",
                                     {"service": "accounts", "method": "Authenticate", "code": "OK"}) or 0.0


async def test_a_caller_who_keeps_sending_is_renewed_in_the_background_before_the_entry_expires(tmp_path):
    """Past half its time, the entry a request finds is renewed beside it: that caller's requests do not wait
    for accounts again, and the entry outlives the time it was first given. An idle caller's is not renewed."""
    async with caching_stack(tmp_path, cache_seconds=1.0) as stack:
        _, _, steady = await stack.key("steady@example.com")
        _, _, idle = await stack.key("idle@example.com")
        await stack.cached_ok(steady)
        await stack.cached_ok(idle)
        first_expiry = time.monotonic() + 1.0  # no earlier than the entries' own
        asked = authentications()
        await asyncio.sleep(0.6)
        assert (await stack.models(steady)).status_code == 200  # from the cache; its renewal starts
        assert await eventually(lambda: authentications() == asked + 1, seconds=5)
        await asyncio.sleep(first_expiry + 0.1 - time.monotonic())
        assert stack.authenticator.cached(steady) is not None  # renewed: it outlived its first time
        assert stack.authenticator.cached(idle) is None  # nobody asked for it: it expired
        assert authentications() == asked + 1


async def test_a_revoked_key_is_refused_by_the_very_next_request(stack):
    for attempt in range(5):  # each one a race the stream must win every time
        _, key_id, secret = await stack.key(f"revoked{attempt}@example.com")
        await stack.cached_ok(secret)
        await stack.accounts.RevokeApiKey(apb.RevokeApiKeyRequest(key_id=key_id), metadata=ADMIN)
        error = assert_envelope(await stack.models(secret), 401, "authentication_error")
        assert "revoked" in error["message"]


async def test_a_disabled_user_is_refused_at_once_and_a_premium_change_is_seen_at_once(stack):
    user_id, _, secret = await stack.key("disabled@example.com")
    _, _, bystander = await stack.key("bystander@example.com")
    await stack.cached_ok(secret)
    await stack.cached_ok(bystander)
    await stack.accounts.UpdateUser(apb.UpdateUserRequest(user=user_id, disabled=True), metadata=ADMIN)
    assert "disabled" in assert_envelope(await stack.models(secret), 401, "authentication_error")["message"]
    assert stack.authenticator.cached(bystander) is not None  # only the changed user's entries go
    await stack.accounts.UpdateUser(apb.UpdateUserRequest(user=user_id, disabled=False), metadata=ADMIN)
    await stack.cached_ok(secret)
    assert not stack.authenticator.cached(secret).premium
    await stack.accounts.UpdateUser(apb.UpdateUserRequest(user=user_id, premium=True), metadata=ADMIN)
    # The very next request is answered as premium (as the very next after disabling was refused). Not the
    # cache looked at as UpdateUser returns: the change reached the edge's stream before the answer left
    # accounts, but on another connection, and a loaded machine may hand this test the answer first.
    await stack.cached_ok(secret)
    assert stack.authenticator.cached(secret).premium


async def test_a_revocation_on_another_accounts_replica_reaches_the_edge_within_a_second(stack):
    other = AccountsSettings(**{**stack.settings.model_dump(), "port": free_port()})
    async with running_service(definition(other), other), admin_client(other) as replica:
        _, key_id, secret = await stack.key("replica@example.com")
        await stack.cached_ok(secret)
        started = time.monotonic()
        await replica.RevokeApiKey(apb.RevokeApiKeyRequest(key_id=key_id), metadata=ADMIN)
        assert await eventually(lambda: stack.authenticator.cached(secret) is None, seconds=1.0, every=0.01)
        assert time.monotonic() - started < 1.0
        assert_envelope(await stack.models(secret), 401, "authentication_error")


async def test_while_accounts_is_down_nothing_is_served_from_the_cache(tmp_path):
    settings = accounts_settings(tmp_path)
    edge_settings = caching_edge(tmp_path, settings)
    async with running_edge(edge_settings) as (base_url, app), httpx.AsyncClient(base_url=base_url) as http:
        authenticator: Authenticator = app.state.authenticator
        async with running_service(definition(settings), settings), admin_client(settings) as accounts:
            stack = Stack(http, accounts, authenticator, settings)
            assert await eventually(lambda: authenticator.live, seconds=10)
            _, _, secret = await stack.key("down@example.com")
            await stack.cached_ok(secret)
        # Accounts stopped: the stream broke, the cache is dropped and off, so the edge cannot vouch for
        # the key and says so (a revocation made now could not reach it).
        assert await eventually(lambda: not authenticator.live, seconds=10)
        assert authenticator.cached(secret) is None
        assert_envelope(await stack.models(secret), 503, "processing_error")
        async with running_service(definition(settings), settings):
            assert await eventually(lambda: authenticator.live, seconds=10)
            await stack.cached_ok(secret)


async def test_a_draining_accounts_ends_its_subscriptions_instead_of_waiting_its_whole_grace(tmp_path):
    """An edge's open WatchRevocations stream never ends by itself: draining ends it, so a stopping accounts
    takes seconds, not its whole drain time (30 s here), and the edge stops caching at once."""
    settings = accounts_settings(tmp_path)
    async with running_edge(caching_edge(tmp_path, settings)) as (_, app):
        authenticator: Authenticator = app.state.authenticator
        async with running_service(definition(settings), settings) as runtime:
            assert await eventually(lambda: authenticator.live, seconds=10)
            started = time.monotonic()
            await runtime.stop(grace=30)
            assert time.monotonic() - started < 10, "the subscription held the drain"
        assert await eventually(lambda: not authenticator.live, seconds=5)
