"""The platform for edge tests: real accounts and media services and a real uvicorn edge, in the
test's event loop, on free ports, with temp SQLite and media folders."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import uvicorn

from edge.app import create_app
from edge.config import EdgeSettings
from edge.http_protocol import EdgeHTTPProtocol
from services.accounts.config import AccountsSettings
from services.accounts.server import definition as accounts_definition
from services.media.config import MediaSettings
from services.media.server import definition as media_definition
from tests.support.admin import operator_channel
from tests.support.ports import free_port
from tests.support.runtime import running_service
from univence.accounts.v1 import accounts_pb2 as apb
from univence.accounts.v1 import accounts_pb2_grpc
from univence.media.v1 import media_pb2_grpc

JWT_SECRET = "test-hs256-secret-that-is-long-enough-for-hs256"


@dataclass
class Platform:
    """The running platform; `accounts` calls as the operator (with the admin token), as the CLI does."""

    base_url: str
    accounts: accounts_pb2_grpc.AccountsServiceStub
    media: media_pb2_grpc.MediaServiceStub
    edge_settings: EdgeSettings
    app: object

    async def user_with_key(self, email: str, *, credits_mc: int = 0, premium: bool = False) -> tuple[str, str]:
        """Creates a user (with credits) and an API key; returns (user_id, secret)."""
        user = (await self.accounts.CreateUser(apb.CreateUserRequest(email=email, premium=premium))).user
        if credits_mc:
            await self.accounts.GrantCredits(apb.GrantCreditsRequest(user=user.user_id, amount_mc=credits_mc))
        key = await self.accounts.CreateApiKey(apb.CreateApiKeyRequest(user=user.user_id, name="test"))
        return user.user_id, key.secret

    async def balance(self, user_id: str) -> apb.GetBalanceResponse:
        return await self.accounts.GetBalance(apb.GetBalanceRequest(user_id=user_id))


@contextlib.asynccontextmanager
async def running_edge(settings: EdgeSettings, app=None) -> AsyncIterator[tuple[str, object]]:
    app = app or create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=settings.port, log_level="warning",
                                           lifespan="on", http=EdgeHTTPProtocol))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{settings.port}", app
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def running_platform(tmp_path: Path, *, modalities: list[str] | None = None,
                           modality_addresses: dict[str, str] | None = None, customize_app=None,
                           accounts_overrides: dict | None = None, media_overrides: dict | None = None,
                           **edge_overrides) -> AsyncIterator[Platform]:
    accounts_settings = AccountsSettings(**{
        "port": 0, "metrics_port": 0, "database_url": f"sqlite:///{tmp_path}/accounts.db",
        "jwt_hs256_secret": JWT_SECRET, "hold_sweep_seconds": 0.2, "admin_token_file": tmp_path / "admin-token",
        **(accounts_overrides or {})})
    media_settings = MediaSettings(**{"port": 0, "metrics_port": 0, "root": str(tmp_path / "media"),
                                      **(media_overrides or {})})
    async with running_service(accounts_definition(accounts_settings), accounts_settings) as accounts, \
            running_service(media_definition(media_settings), media_settings) as media:
        edge_settings = EdgeSettings(**{
            "port": free_port(), "metrics_port": 0, "accounts_address": f"127.0.0.1:{accounts.port}",
            "media_address": f"127.0.0.1:{media.port}", "modalities": modalities or [],
            "modality_addresses": modality_addresses or {}, "auth_cache_seconds": 0,
            "maintenance_file": str(tmp_path / "maintenance"), "outbox_path": str(tmp_path / "edge-outbox.db"),
            **edge_overrides})
        app = create_app(edge_settings)
        if customize_app is not None:
            customize_app(app)
        async with running_edge(edge_settings, app) as (base_url, app), \
                operator_channel(f"127.0.0.1:{accounts.port}", accounts_settings) as accounts_channel, \
                grpc.aio.insecure_channel(f"127.0.0.1:{media.port}") as media_channel:
            yield Platform(base_url, accounts_pb2_grpc.AccountsServiceStub(accounts_channel),
                           media_pb2_grpc.MediaServiceStub(media_channel), edge_settings, app)
