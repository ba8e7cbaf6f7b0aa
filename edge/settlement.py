"""Getting every hold settled, whatever crashes: the keeper and the settlement outbox.

Accounts gives a hold a short life (its hold TTL, ~40 s) so that the holds of an edge that died free
themselves within a minute. The edge keeps the holds of its running work alive instead: one keeper task
per process renews every unsettled edge.metering.Hold (and every hold whose settlement waits in the
outbox) in one batched RenewHolds call every TTL/4. A job that holds credits for minutes needs nothing
more than to keep its Hold unsettled until it ends.

A commit or release that cannot reach accounts (UNAVAILABLE, DEADLINE_EXCEEDED: accounts restarting,
the network away) is not lost and not left to expiry: it is written to the outbox, a SQLite file in the
data folder, before the request answers, and delivered again with a backoff bounded by
RETRY_MAX_SECONDS until accounts answers. Accounts' Commit and Release are idempotent, so delivering one
twice (an answer lost on the way, two edge workers sharing the file) changes nothing. The outbox is
delivered when the edge starts (a restart loses nothing) and once more at shutdown; what accounts still
does not take then stays on disk for the next start. Any other answer (the hold is unknown, or was
released before the commit came) is final: it is logged and the entry is dropped.

A commit that reaches accounts after its hold expired (the edge was down longer than the TTL) is charged
at most what the user has free then (services/accounts/ledger.py): no overspend, and no free result while
the user still has credits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
import weakref
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import grpc

from edge.clients import ServiceClients, call
from edge.errors import APIError, from_grpc
from univence.accounts.v1 import accounts_pb2
from univence.telemetry import inject_metadata

log = logging.getLogger(__name__)
# gRPC codes that mean "accounts did not answer": the settlement is kept and tried again.
UNREACHABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
RETRY_FIRST_SECONDS = 0.25
# The longest wait between two deliveries of the outbox while accounts is away: a hold is settled within
# this (plus gRPC's reconnect backoff, at most 2 s) of accounts coming back.
RETRY_MAX_SECONDS = 2.0
# A settlement call gets this long before it counts as unanswered and goes to the outbox.
SETTLE_TIMEOUT_SECONDS = 10.0
# How often holds are renewed before the keeper has seen a hold's TTL, and the bounds of that period.
DEFAULT_RENEW_SECONDS = 10.0
MIN_RENEW_SECONDS = 0.2
RENEW_BATCH = 1000  # accounts' limit per RenewHolds call
COMMIT, RELEASE = "commit", "release"
_REQUESTS = {COMMIT: accounts_pb2.CommitRequest, RELEASE: accounts_pb2.ReleaseRequest}


async def redeliver_forever(ready: asyncio.Event, deliver: Callable[[], Awaitable[bool]], what: str,
                            gather_seconds: Callable[[], float] = lambda: 0.0) -> None:
    """Runs `deliver` each time `ready` is set (after `gather_seconds()`, to let a batch fill), and again,
    backing off from RETRY_FIRST_SECONDS up to RETRY_MAX_SECONDS, while it answers False (accounts did not
    take everything) or fails: the one retry loop of the outbox and of the lease charges."""
    delay = RETRY_FIRST_SECONDS
    while True:
        await ready.wait()
        if (pause := gather_seconds()) > 0:
            await asyncio.sleep(pause)
        ready.clear()
        try:
            done = await deliver()
        except Exception:
            log.exception("delivering %s failed", what)
            done = False
        if done:
            delay = RETRY_FIRST_SECONDS
            continue
        ready.set()
        await asyncio.sleep(delay)
        delay = min(delay * 2, RETRY_MAX_SECONDS)


# The outbox file's tables: the settlements below, and the lease charges an earlier version left
# undelivered (they are journaled in files of their own now, and taken over from here: edge.charge_journal).
OUTBOX_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS settlements (
        hold_id TEXT PRIMARY KEY, kind TEXT NOT NULL, request BLOB NOT NULL,
        created REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0)""",
    """CREATE TABLE IF NOT EXISTS lease_charges (
        request_id TEXT PRIMARY KEY, hold_id TEXT NOT NULL, charge BLOB NOT NULL, created REAL NOT NULL)""",
)


def open_outbox(path: str | Path, *, create: bool = True, **options: Any) -> sqlite3.Connection:
    """A connection to the outbox file (`options` go to sqlite3.connect), the one way both its users open
    it: its folder made private, the tables in place, WAL with synchronous=NORMAL (a commit survives the
    process being killed, the case the file is for, without an fsync per write; only losing power may
    lose the last writes), and a writer waiting up to 10 s for another (several edge workers may share it).
    `create=False` for a file this process has already opened so: WAL is the file's own setting, so only
    synchronous (a connection's) is set, without the folder, WAL and tables' statements every time."""
    path = Path(path)
    if create:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=10, **options)
    try:
        db.execute("PRAGMA synchronous=NORMAL")
        if create:
            db.execute("PRAGMA journal_mode=WAL")
            for statement in OUTBOX_SCHEMA:
                db.execute(statement)
            db.commit()
    except BaseException:
        db.close()
        raise
    return db


class Outbox:
    """Settlements accounts has not taken yet, one row per hold, in the outbox file. Every call opens its
    own connection (they are few and short, and several edge workers may share the file)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        open_outbox(self.path).close()

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = open_outbox(self.path, create=False)  # made in __init__
        try:
            with db:  # one transaction, committed on success
                yield db
        finally:
            db.close()

    def put(self, kind: str, request: Any) -> None:
        with self._connect() as db:
            db.execute("INSERT OR REPLACE INTO settlements (hold_id, kind, request, created) VALUES (?, ?, ?, ?)",
                       (request.hold_id, kind, request.SerializeToString(), time.time()))

    def entries(self) -> list[tuple[str, Any, int]]:
        """(kind, request, attempts) of every waiting settlement, oldest first."""
        with self._connect() as db:
            rows = db.execute("SELECT kind, request, attempts FROM settlements ORDER BY created").fetchall()
        return [(kind, _REQUESTS[kind].FromString(blob), attempts) for kind, blob, attempts in rows]

    def hold_ids(self) -> list[str]:
        with self._connect() as db:
            return [row[0] for row in db.execute("SELECT hold_id FROM settlements")]

    def done(self, hold_id: str) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM settlements WHERE hold_id = ?", (hold_id,))

    def failed(self, hold_id: str) -> None:
        with self._connect() as db:
            db.execute("UPDATE settlements SET attempts = attempts + 1 WHERE hold_id = ?", (hold_id,))


class Kept(Protocol):
    """What the keeper renews: a request's hold (edge.metering.Hold) or a credit lease (edge.leases)."""

    hold: accounts_pb2.Hold

    def lost(self, hold: accounts_pb2.Hold) -> None:
        """The keeper found it no longer held (`hold`: as accounts has it now)."""


class Settlements:
    """Settles holds (commit, release) through the outbox when accounts is away, and keeps the live
    holds alive (the keeper). One per edge process, started and stopped by the app's lifespan."""

    def __init__(self, clients: ServiceClients, outbox: Outbox):
        self.clients = clients
        self.outbox = outbox
        # Unsettled holds by id; weak, so a Hold dropped without being settled stops being renewed.
        self._live: weakref.WeakValueDictionary[str, Kept] = weakref.WeakValueDictionary()
        self._ttl: float | None = None  # the shortest hold TTL seen (accounts' setting)
        self._waiting = asyncio.Event()  # set when the outbox has something to deliver
        self._tasks: list[asyncio.Task] = []

    # -- the holds of running work ------------------------------------------------------------------

    def track(self, hold: Kept) -> None:
        """Keeps `hold` (an edge.metering.Hold, an edge.leases lease) renewed until it is settled (`untrack`)."""
        self._live[hold.hold.hold_id] = hold
        self._learn_ttl(hold.hold)

    def untrack(self, hold_id: str) -> None:
        self._live.pop(hold_id, None)

    def _learn_ttl(self, hold: accounts_pb2.Hold) -> None:
        if hold.HasField("expire_time"):
            ttl = hold.expire_time.ToNanoseconds() / 1e9 - time.time()
            if ttl > 0:
                self._ttl = ttl if self._ttl is None else min(self._ttl, ttl)

    @property
    def renew_seconds(self) -> float:
        """A quarter of the hold TTL: a hold survives three renewals lost in a row."""
        if self._ttl is None:
            return DEFAULT_RENEW_SECONDS
        return min(max(self._ttl / 4, MIN_RENEW_SECONDS), DEFAULT_RENEW_SECONDS)

    async def renew(self) -> None:
        """One round of the keeper: every live hold and every hold waiting in the outbox, in batches."""
        waiting = await asyncio.to_thread(self.outbox.hold_ids)
        hold_ids = list(dict.fromkeys([*self._live.keys(), *waiting]))
        for start in range(0, len(hold_ids), RENEW_BATCH):
            batch = hold_ids[start:start + RENEW_BATCH]
            answer = await call("accounts", self.clients.accounts.RenewHolds,
                                accounts_pb2.RenewHoldsRequest(hold_ids=batch), timeout=SETTLE_TIMEOUT_SECONDS)
            for hold in answer.holds:
                if hold.state == accounts_pb2.HOLD_STATE_HELD:
                    self._learn_ttl(hold)
                elif hold.hold_id in self._live and hold.state == accounts_pb2.HOLD_STATE_EXPIRED:
                    log.warning("hold %s expired while its work was running", hold.hold_id)
                if hold.state != accounts_pb2.HOLD_STATE_HELD and (kept := self._live.get(hold.hold_id)) is not None:
                    kept.lost(hold)

    async def _keep(self) -> None:
        """Renews every renew_seconds, looking often enough that a shorter TTL learnt meanwhile (the
        first hold seen) is kept to at once."""
        last = time.monotonic()
        while True:
            await asyncio.sleep(MIN_RENEW_SECONDS)
            if time.monotonic() - last < self.renew_seconds:
                continue
            last = time.monotonic()
            try:
                await self.renew()
            except (APIError, sqlite3.Error) as exc:  # the next round tries again: the TTL has slack
                log.warning("renewing holds failed: %s", exc)

    # -- settling -----------------------------------------------------------------------------------

    async def commit(self, request: accounts_pb2.CommitRequest) -> accounts_pb2.CommitResponse | None:
        """Commits; None when accounts did not answer and the commit waits in the outbox."""
        self.untrack(request.hold_id)
        return await self._settle(COMMIT, request)

    async def release(self, request: accounts_pb2.ReleaseRequest) -> None:
        self.untrack(request.hold_id)
        await self._settle(RELEASE, request)

    async def _settle(self, kind: str, request: Any) -> Any:
        try:
            return await self._send(kind, request)
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in UNREACHABLE:
                raise from_grpc(exc, "accounts") from None
            await asyncio.to_thread(self.outbox.put, kind, request)
            self._waiting.set()
            log.warning("%s of %s did not reach accounts (%s); kept in the outbox", kind, request.hold_id,
                        exc.code().name)
            return None

    async def _send(self, kind: str, request: Any) -> Any:
        rpc = self.clients.accounts.Commit if kind == COMMIT else self.clients.accounts.Release
        return await rpc(request, timeout=SETTLE_TIMEOUT_SECONDS, metadata=inject_metadata({}))

    async def deliver(self) -> bool:
        """One pass over the outbox, oldest first; stops at the first settlement accounts does not answer.
        True when the outbox is empty afterwards."""
        for kind, request, attempts in await asyncio.to_thread(self.outbox.entries):
            try:
                await self._send(kind, request)
            except grpc.aio.AioRpcError as exc:
                if exc.code() in UNREACHABLE:
                    await asyncio.to_thread(self.outbox.failed, request.hold_id)
                    return False
                log.error("%s of %s from the outbox refused by accounts, dropped: %s %s", kind,
                          request.hold_id, exc.code().name, exc.details())
            else:
                log.info("%s of %s delivered from the outbox after %d failed tries", kind, request.hold_id,
                         attempts + 1)
            await asyncio.to_thread(self.outbox.done, request.hold_id)
        return True

    async def _deliver_forever(self) -> None:
        """Delivers the outbox whenever it has something (see `redeliver_forever`)."""
        self._waiting.set()  # what an earlier run of the edge left
        await redeliver_forever(self._waiting, self.deliver, "the settlement outbox")

    # -- the process's life -------------------------------------------------------------------------

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._keep()), asyncio.create_task(self._deliver_forever())]

    async def stop(self, timeout: float = 5.0) -> None:
        """Stops the keeper and delivers what the outbox still holds, as far as `timeout` allows."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        try:
            if not await asyncio.wait_for(self.deliver(), timeout):
                log.warning("accounts did not take every settlement; the outbox %s keeps them for the next "
                            "start", self.outbox.path)
        except (TimeoutError, sqlite3.Error) as exc:  # the file keeps the rest
            log.warning("the outbox %s was not delivered at shutdown (%s); the next start delivers it",
                        self.outbox.path, exc)
