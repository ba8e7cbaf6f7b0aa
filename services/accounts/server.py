"""The accounts service process: `python -m services.accounts` or `univence serve accounts`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from sqlalchemy import Engine

from services.accounts.config import AccountsSettings
from services.accounts.jwt_auth import JwtVerifier
from services.accounts.keys import ApiKeys
from services.accounts.ledger import Ledger
from services.accounts.mail import Mailer
from services.accounts.migrations import MIGRATIONS, SERVICE
from services.accounts.passwords import Passwords
from services.accounts.people import People
from services.accounts.pricing import PriceTable
from services.accounts.revocations import RevocationFeed
from services.accounts.servicer import AccountsServicer, Backend
from services.accounts.sessions import Sessions
from services.accounts.store import Users
from services.accounts.throttle import LoginThrottle
from services.accounts.tokens import JwtSigner, Tokens, auto_key_file, with_auto_key
from services.common.database import make_engine, migrate
from services.common.server import GrpcService, ServiceDefinition, run
from univence.accounts.v1 import accounts_pb2, accounts_pb2_grpc
from univence.home import read_or_create_secret

log = logging.getLogger(__name__)
# How often expired sessions, refresh tokens and forgotten login failures are deleted.
PEOPLE_SWEEP_SECONDS = 600.0


def open_backend(settings: AccountsSettings) -> tuple[Backend, Engine]:
    """Checks the configuration, connects, migrates: everything that must work before SERVING."""
    prices = PriceTable(settings.pricing)
    generated = auto_key_file(settings)
    settings = with_auto_key(settings)
    verifier = JwtVerifier.from_settings(settings)
    signer = JwtSigner.from_settings(settings)
    passwords = Passwords(settings)
    engine = make_engine(settings.database_url)
    try:
        version = migrate(engine, SERVICE, MIGRATIONS)
    except Exception:
        engine.dispose()
        raise
    log.info("accounts database %s at schema version %d", engine.url.render_as_string(hide_password=True),
             version)
    log.info("JWT algorithms accepted: %s; key ids: %s", ", ".join(verifier.algorithms) or "none",
             ", ".join(verifier.kids) or "none")
    log.info("JWTs issued: %s", f"{signer.algorithm} kid {signer.kid or '(none)'}" if signer else "no (no signing key)")
    if generated is not None:
        log.info("JWT signing key generated in %s (one machine only: give several replicas jwt_keys)", generated)
    log.info("sign-up %s, email verification %s", "open" if settings.signup_enabled else "closed",
             "on" if settings.email_verification else "off")
    token, generated_in = admin_token(settings)
    if generated_in is not None:
        log.info("admin token generated in %s (owner-only; the univence CLI on this machine reads it)",
                 generated_in)
    elif not settings.admin_token:
        log.info("admin token: %s", settings.admin_token_file)
    ledger = Ledger(engine, default_ttl_seconds=settings.hold_ttl_seconds,
                    max_ttl_seconds=settings.max_hold_ttl_seconds,
                    max_stored_response_bytes=settings.max_stored_response_bytes,
                    stored_response_retention_seconds=settings.stored_response_retention_hours * 3600)
    users = Users(engine)
    sessions = Sessions(engine, settings.api_key_pepper, settings.session_ttl_seconds)
    people = People(engine, settings, users, passwords, LoginThrottle(engine, settings), sessions, Mailer(settings))
    backend = Backend(users, ApiKeys(engine, settings.api_key_pepper), ledger, verifier, prices, people, sessions,
                      Tokens(engine, settings, signer), RevocationFeed(engine), admin_token=token)
    return backend, engine


def admin_token(settings: AccountsSettings) -> tuple[str, Path | None]:
    """The token admin RPCs require: the configured one, else the one in `admin_token_file`, generated
    there at the first start (so a fresh install is closed); and the file, when it was generated now.
    The token itself is never logged."""
    if settings.admin_token:
        return settings.admin_token, None
    token, created = read_or_create_secret(settings.admin_token_file.expanduser())
    return token, settings.admin_token_file if created else None


async def sweep_forever(what: str, sweep, interval_seconds: float) -> None:
    """Runs `sweep` (blocking) every interval; a failing sweep (database briefly away) is logged and retried."""
    while True:
        await asyncio.sleep(interval_seconds)
        try:
            await asyncio.to_thread(sweep)
        except Exception:  # the next sweep retries; Reserve also expires what is due
            log.exception("%s sweep failed", what)


def sweep_people(backend: Backend) -> None:
    """Deletes ended sessions, expired refresh tokens and forgotten login failures."""
    backend.sessions.sweep()
    backend.tokens.sweep()
    backend.people.throttle.sweep()


def definition(settings: AccountsSettings) -> ServiceDefinition:
    servicer = AccountsServicer(settings)
    engine: Engine | None = None
    feed: RevocationFeed | None = None
    sweepers: list[asyncio.Task] = []

    async def load() -> None:
        nonlocal engine, feed
        backend, engine = await asyncio.to_thread(open_backend, settings)
        feed = backend.revocations
        servicer.attach(backend)
        sweepers.append(asyncio.create_task(sweep_forever("hold", backend.ledger.sweep, settings.hold_sweep_seconds)))
        sweepers.append(asyncio.create_task(sweep_forever("session", lambda: sweep_people(backend),
                                                          PEOPLE_SWEEP_SECONDS)))
        sweepers.append(asyncio.create_task(backend.revocations.run()))

    async def draining() -> None:
        if feed is not None:
            await feed.close()

    async def close() -> None:
        for sweeper in sweepers:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
        if engine is not None:
            await asyncio.to_thread(engine.dispose)

    return ServiceDefinition(
        name="accounts",
        services=[GrpcService.of(accounts_pb2, accounts_pb2_grpc, "AccountsService", servicer)],
        load=load, close=close, draining=draining, description="the accounts database",
    )


def main() -> None:
    run(AccountsSettings(), definition)
