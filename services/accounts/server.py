"""The accounts service process: `python -m services.accounts` or `univence serve accounts`."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import Engine

from services.accounts.config import AccountsSettings
from services.accounts.jwt_auth import JwtVerifier
from services.accounts.keys import ApiKeys
from services.accounts.ledger import Ledger
from services.accounts.migrations import MIGRATIONS, SERVICE
from services.accounts.pricing import PriceTable
from services.accounts.servicer import AccountsServicer, Backend
from services.accounts.store import Users
from services.common.database import make_engine, migrate
from services.common.server import GrpcService, ServiceDefinition, run
from univence.accounts.v1 import accounts_pb2, accounts_pb2_grpc

log = logging.getLogger(__name__)


def open_backend(settings: AccountsSettings) -> tuple[Backend, Engine]:
    """Checks the configuration, connects, migrates: everything that must work before SERVING."""
    prices = PriceTable(settings.pricing)
    verifier = JwtVerifier.from_settings(settings)
    engine = make_engine(settings.database_url)
    try:
        version = migrate(engine, SERVICE, MIGRATIONS)
    except Exception:
        engine.dispose()
        raise
    log.info("accounts database %s at schema version %d", engine.url.render_as_string(hide_password=True),
             version)
    log.info("JWT algorithms accepted: %s", ", ".join(verifier.algorithms) or "none (API keys only)")
    if not settings.admin_token:
        log.warning("no admin_token configured: admin RPCs are open to every caller that can reach this port")
    ledger = Ledger(engine, default_ttl_seconds=settings.hold_ttl_seconds,
                    max_ttl_seconds=settings.max_hold_ttl_seconds,
                    max_stored_response_bytes=settings.max_stored_response_bytes,
                    stored_response_retention_seconds=settings.stored_response_retention_hours * 3600)
    backend = Backend(Users(engine), ApiKeys(engine, settings.api_key_pepper), ledger, verifier, prices)
    return backend, engine


async def sweep_holds_forever(ledger: Ledger, interval_seconds: float) -> None:
    """Frees holds nobody settled; a failing sweep (database briefly away) is logged and retried."""
    while True:
        await asyncio.sleep(interval_seconds)
        try:
            await asyncio.to_thread(ledger.sweep)
        except Exception:  # the next sweep retries; Reserve also expires what is due
            log.exception("hold sweep failed")


def definition(settings: AccountsSettings) -> ServiceDefinition:
    servicer = AccountsServicer(settings)
    engine: Engine | None = None
    sweeper: asyncio.Task | None = None

    async def load() -> None:
        nonlocal engine, sweeper
        backend, engine = await asyncio.to_thread(open_backend, settings)
        servicer.attach(backend)
        sweeper = asyncio.create_task(sweep_holds_forever(backend.ledger, settings.hold_sweep_seconds))

    async def close() -> None:
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
        if engine is not None:
            await asyncio.to_thread(engine.dispose)

    return ServiceDefinition(
        name="accounts",
        services=[GrpcService.of(accounts_pb2, accounts_pb2_grpc, "AccountsService", servicer)],
        load=load, close=close, description="the accounts database",
    )


def main() -> None:
    run(AccountsSettings(), definition)
