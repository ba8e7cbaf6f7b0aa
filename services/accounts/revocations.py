"""Revocations: which users' credentials changed, told to every edge (the WatchRevocations stream) so that
an edge's cache of authentications never serves a revoked key, a disabled user or an ended session.

A change is a row in `revocations`, written in the transaction that makes the change (`record`), so no
replica can miss one: every replica polls the table every POLL_SECONDS and tells its own subscribers, and
a change made on this replica is told at once (`RevocationFeed.publish`, awaited by the RPC before it
answers, so the edges know before the operator who revoked a key hears "done").

Rows are read by time window, not by sequence number alone: on PostgreSQL a transaction can commit after
one holding a later sequence number, so each poll reads the last WINDOW_US and skips the numbers it already
told. A subscriber that (re)connects has nothing to catch up on: the edge's cache starts empty then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable

from sqlalchemy import Connection, Engine, delete, insert, select

from services.accounts.tables import revocations
from services.common.database import now_us, reading, writing

log = logging.getLogger(__name__)
# How often each replica looks for changes other replicas made (the bound on their delivery time).
POLL_SECONDS = 0.25
# A subscriber hears at least this often (an empty message when nothing changed), so it can tell a
# silent stream from a broken one.
HEARTBEAT_SECONDS = 2
# How far back each poll reads; a transaction that commits later than this after its change is missed.
WINDOW_US = 60 * 1_000_000
# Rows older than this are deleted (nobody reads them any more).
KEEP_US = 86_400 * 1_000_000
SWEEP_SECONDS = 3600.0
# The longest an RPC that changed credentials waits for its subscribers to be sent the change.
PUBLISH_WAIT_SECONDS = 1.0


def record(conn: Connection, user_ids: Iterable[str], reason: str) -> None:
    """Notes that these users' credentials changed, in the caller's transaction (so it commits with it)."""
    now = now_us()
    rows = [{"user_id": user_id, "reason": reason, "created_us": now} for user_id in dict.fromkeys(user_ids)]
    if rows:
        conn.execute(insert(revocations), rows)


class RevocationFeed:
    """This replica's subscribers and the poll that feeds them."""

    def __init__(self, engine: Engine, poll_seconds: float = POLL_SECONDS):
        self._engine = engine
        self._poll_seconds = poll_seconds
        # Each subscriber's queue of batches; None ends its stream (the replica is draining).
        self._subscribers: set[asyncio.Queue[list[str] | None]] = set()
        self._told: dict[int, int] = {}  # sequence number -> created_us, for the rows inside the window
        self._lock = asyncio.Lock()

    def _recent(self) -> list:
        with reading(self._engine) as conn:
            return conn.execute(select(revocations.c.seq, revocations.c.user_id, revocations.c.created_us)
                                .where(revocations.c.created_us >= now_us() - WINDOW_US)).all()

    async def poll(self) -> None:
        """Tells every subscriber the users of the rows not told yet."""
        async with self._lock:
            rows = await asyncio.to_thread(self._recent)
            cutoff = now_us() - WINDOW_US
            self._told = {seq: created for seq, created in self._told.items() if created >= cutoff}
            fresh = [row for row in rows if row.seq not in self._told]
            self._told.update((row.seq, row.created_us) for row in fresh)
            user_ids = list(dict.fromkeys(row.user_id for row in fresh))
            if user_ids:
                for queue in self._subscribers:
                    queue.put_nowait(user_ids)

    async def publish(self) -> None:
        """Tells the subscribers what this replica just changed, and waits (PUBLISH_WAIT_SECONDS at most, a
        stuck subscriber must not hold the RPC) until each stream was handed its message."""
        await self.poll()
        queues = list(self._subscribers)
        if queues:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(queue.join() for queue in queues)), PUBLISH_WAIT_SECONDS)

    async def stream(self) -> AsyncIterator[list[str]]:
        """One subscriber's messages: [] at once (subscribed), then each batch of users, or [] after
        HEARTBEAT_SECONDS of quiet. A batch counts as sent when the caller asks for the next message."""
        queue: asyncio.Queue[list[str] | None] = asyncio.Queue()
        self._subscribers.add(queue)
        try:
            yield []
            while True:
                try:
                    batch = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
                except TimeoutError:
                    yield []
                    continue
                if batch is None:
                    return
                yield batch
                queue.task_done()
        finally:
            self._subscribers.discard(queue)
            while not queue.empty():  # nobody waits for a subscriber that left
                queue.get_nowait()
                queue.task_done()

    async def close(self) -> None:
        """Ends every subscriber's stream (this replica is draining): the edges resubscribe elsewhere or
        after the restart, asking accounts on every request meanwhile, instead of the open streams holding
        the process for its whole drain time."""
        for queue in self._subscribers:
            queue.put_nowait(None)

    def sweep(self) -> None:
        with writing(self._engine) as conn:
            conn.execute(delete(revocations).where(revocations.c.created_us < now_us() - KEEP_US))

    async def run(self) -> None:
        """Polls forever (a failing poll, the database briefly away, is logged and retried), and deletes old
        rows now and then."""
        swept, failing = 0.0, False
        loop = asyncio.get_running_loop()
        while True:
            try:
                await self.poll()
                if loop.time() - swept >= SWEEP_SECONDS:
                    await asyncio.to_thread(self.sweep)
                    swept = loop.time()
                failing = False
            except Exception:  # the next poll retries; one log line per outage
                if not failing:
                    log.exception("revocations poll failed; retrying every %.2fs", self._poll_seconds)
                failing = True
            await asyncio.sleep(self._poll_seconds)
