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
from tests.support.runtime import running_service
from univence.accounts.v1 import accounts_pb2 as pb
from univence.accounts.v1 import accounts_pb2_grpc

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(autouse=True)
def _no_outside_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from the test alone, whatever the shell running pytest exports."""
    import os

    for name in list(os.environ):
        if name.startswith("UNIVENCE_"):
            monkeypatch.delenv(name)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'accounts.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def make_settings(database_url: str) -> Callable[..., AccountsSettings]:
    def make(**overrides: Any) -> AccountsSettings:
        return AccountsSettings(**{"port": 0, "metrics_port": 0, "database_url": database_url, **overrides})
    return make


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A separate engine on the service's database, to check what it stored."""
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@dataclass
class Accounts:
    """A running accounts service and a client for it."""

    stub: accounts_pb2_grpc.AccountsServiceStub
    settings: AccountsSettings
    runtime: ServiceRuntime

    @property
    def admin(self) -> tuple[tuple[str, str], ...]:
        """Call metadata for admin RPCs."""
        token = self.settings.admin_token
        return (("x-univence-admin-token", token),) if token else ()

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
                grpc.aio.insecure_channel(f"127.0.0.1:{runtime.port}") as channel:
            yield Accounts(accounts_pb2_grpc.AccountsServiceStub(channel), settings, runtime)

    return start


@pytest.fixture
async def accounts(start_accounts) -> AsyncIterator[Accounts]:
    async with start_accounts() as accounts:
        yield accounts
