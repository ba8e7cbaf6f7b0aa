"""Fixtures for the accounts tests: the real service over real gRPC, on SQLite and on PostgreSQL."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from sqlalchemy import Engine

from services.accounts.config import AccountsSettings
from services.accounts.server import definition
from services.common.database import make_engine
from services.common.server import ServiceRuntime
from tests.support.admin import admin_token_of, operator_channel
from tests.support.runtime import running_service
from univence import admin
from univence.accounts.v1 import accounts_pb2 as pb
from univence.accounts.v1 import accounts_pb2_grpc

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(autouse=True)
def _no_outside_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from the test alone, whatever the shell running pytest exports; UNIVENCE_HOME
    stays (tests/conftest.py points it at a temporary folder, never the user's data folder)."""
    import os

    for name in list(os.environ):
        if name.startswith("UNIVENCE_") and name != "UNIVENCE_HOME":
            monkeypatch.delenv(name)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'accounts.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def make_settings(database_url: str, tmp_path) -> Callable[..., AccountsSettings]:
    """Settings on the test's database; no admin token configured, so the service generates its own in
    the test's folder (closed by default), which `Accounts.stub` sends."""
    def make(**overrides: Any) -> AccountsSettings:
        return AccountsSettings(**{"port": 0, "metrics_port": 0, "database_url": database_url,
                                   "admin_token_file": tmp_path / "admin-token", **overrides})
    return make


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A separate engine on the service's database, to check what it stored."""
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@dataclass
class Accounts:
    """A running accounts service and clients for it: `stub` calls as the operator (its unary calls carry
    the admin token, as the CLI's do), `anonymous` as anyone who can reach the port."""

    stub: accounts_pb2_grpc.AccountsServiceStub
    settings: AccountsSettings
    runtime: ServiceRuntime
    anonymous: accounts_pb2_grpc.AccountsServiceStub

    @property
    def admin(self) -> tuple[tuple[str, str], ...]:
        """Call metadata for admin RPCs (for a stub without the token)."""
        return admin.metadata(admin_token_of(self.settings))

    async def new_user(self, *, credits_mc: int = 0, premium: bool = False, email: str = "") -> str:
        email = email or f"user{next(_user_numbers)}@example.com"
        response = await self.stub.CreateUser(pb.CreateUserRequest(email=email, premium=premium),
                                              metadata=self.admin)
        if credits_mc:
            await self.stub.GrantCredits(pb.GrantCreditsRequest(user=response.user.user_id, amount_mc=credits_mc),
                                         metadata=self.admin)
        return response.user.user_id

    async def balance(self, user_id: str) -> pb.GetBalanceResponse:
        return await self.stub.GetBalance(pb.GetBalanceRequest(user_id=user_id))


_user_numbers = itertools.count(1)


@pytest.fixture
def start_accounts(make_settings: Callable[..., AccountsSettings]):
    """`async with start_accounts(**settings) as accounts:` runs a service with those settings."""

    @contextlib.asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[Accounts]:
        settings = make_settings(**overrides)
        async with running_service(definition(settings), settings) as runtime, \
                operator_channel(f"127.0.0.1:{runtime.port}", settings) as channel, \
                grpc.aio.insecure_channel(f"127.0.0.1:{runtime.port}") as anonymous:
            yield Accounts(accounts_pb2_grpc.AccountsServiceStub(channel), settings, runtime,
                           accounts_pb2_grpc.AccountsServiceStub(anonymous))

    return start


@pytest.fixture
async def accounts(start_accounts) -> AsyncIterator[Accounts]:
    async with start_accounts() as accounts:
        yield accounts
