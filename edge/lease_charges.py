"""The charges of requests served from credit leases (edge.leases): written to disk before the request
answers, then reported to accounts in batches.

A request's charge is appended to the process's journal (edge.charge_journal: one write(2) of every charge
waiting at that moment, so 8 concurrent requests share one) by a writer on the event loop's thread, and the
request answers once its write is done. So an edge killed right after answering loses no charge: the next
start takes over its journal and delivers it. The sender reports what the journal holds to accounts every
`flush_seconds` (sooner once a batch is full) in one ChargeLeases call, which accounts applies in one
transaction and idempotently per request id; delivered charges are marked so in the journal. While accounts
does not take them (unreachable, or failing) the charges stay (in memory and on disk) and are sent again with
a backoff; only a batch accounts calls malformed (INVALID_ARGUMENT) is dropped, logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import grpc

from edge.charge_journal import Journal
from edge.clients import ServiceClients
from edge.settlement import SETTLE_TIMEOUT_SECONDS, redeliver_forever
from univence.accounts.v1 import accounts_pb2
from univence.telemetry import inject_metadata

log = logging.getLogger(__name__)
MAX_BATCH = 1000  # accounts' limit per ChargeLeases call


class ChargeSender:
    """Journals charges (group commit) and delivers them to accounts in batches. `delivered` is called
    with each delivered charge's hold id (edge.leases counts what each lease still has to deliver)."""

    def __init__(self, clients: ServiceClients, journal: Journal, flush_seconds: float,
                 delivered: Callable[[str], None]):
        self.clients, self.journal = clients, journal
        self.flush_seconds = flush_seconds
        self._delivered = delivered
        self._to_write: list[tuple[accounts_pb2.LeaseCharge, asyncio.Future]] = []
        self._writing: list[tuple[accounts_pb2.LeaseCharge, asyncio.Future]] = []  # the batch on its way to disk
        self._to_send: list[accounts_pb2.LeaseCharge] = []
        self._written, self._ready = asyncio.Event(), asyncio.Event()
        self._sending = asyncio.Lock()
        self._tasks: list[asyncio.Task] = []
        self._stopped = False

    async def add(self, charge: accounts_pb2.LeaseCharge) -> None:
        """Returns once `charge` is on disk. The charge is queued before the first await, so a request
        cancelled while it waits still has its charge written and delivered."""
        if self._stopped:  # a request that outlived shutdown: straight to the journal, for the next start
            await asyncio.to_thread(self.journal.put, [charge])
            return
        future = asyncio.get_running_loop().create_future()
        self._to_write.append((charge, future))
        self._written.set()
        await asyncio.shield(future)

    async def _write_forever(self) -> None:
        while True:
            await self._written.wait()
            self._written.clear()
            batch, self._to_write = self._to_write, []
            if batch:
                await self._write(batch)

    async def _write(self, batch: list[tuple[accounts_pb2.LeaseCharge, asyncio.Future]]) -> None:
        """Journals `batch` in one transaction, queues it for sending, and lets its requests answer."""
        self._writing = batch
        try:
            async with self.journal.lock:
                self.journal.put([charge for charge, _ in batch])  # one write(2), on this thread
        except OSError as exc:  # not durable, but still delivered while this process lives
            log.error("lease charges could not be journaled (%s); delivered from memory only", exc)
        self._to_send += [charge for charge, _ in batch]
        for _, future in batch:
            if not future.done():
                future.set_result(None)
        self._writing = []
        self._ready.set()

    async def _send_forever(self) -> None:
        """Sends whenever charges are written, letting a batch fill a little first (one call for many)."""
        await redeliver_forever(self._ready, self.send_once, "lease charges",
                                lambda: self.flush_seconds if len(self._to_send) < MAX_BATCH else 0.0)

    async def send_once(self) -> bool:
        """Sends what waits, in batches; False when accounts did not answer (the charges stay queued). One
        sender at a time: a flush waits for a batch already on its way, so it returns once that is in too."""
        async with self._sending:
            return await self._send_waiting()

    async def _send_waiting(self) -> bool:
        while self._to_send:
            batch, self._to_send = self._to_send[:MAX_BATCH], self._to_send[MAX_BATCH:]
            try:
                await self.clients.accounts.ChargeLeases(accounts_pb2.ChargeLeasesRequest(charges=batch),
                                                         timeout=SETTLE_TIMEOUT_SECONDS, metadata=inject_metadata({}))
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.INVALID_ARGUMENT:  # only a malformed batch is final
                    self._to_send[:0] = batch
                    log.warning("%d lease charge(s) not taken by accounts (%s); kept", len(batch), exc.code().name)
                    return False
                log.error("accounts refused %d lease charge(s), dropped: %s %s", len(batch), exc.code().name,
                          exc.details())
            with contextlib.suppress(OSError):
                async with self.journal.lock:
                    await asyncio.to_thread(self.journal.delete, [c.request_id for c in batch])
            for charge in batch:
                self._delivered(charge.hold_id)
        return True

    async def flush(self, timeout: float) -> None:
        """Sends what is written (once the charges being written are), without waiting for the next round."""
        deadline = asyncio.get_running_loop().time() + max(timeout, 0)
        if writing := [future for _, future in (*self._writing, *self._to_write) if not future.done()]:
            await asyncio.wait(writing, timeout=max(timeout, 0))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.send_once(), max(deadline - asyncio.get_running_loop().time(), 0.001))

    async def start(self) -> list[accounts_pb2.LeaseCharge]:
        """Starts writing and sending; queues what an earlier run left in the journal, and returns it."""
        async with self.journal.lock:
            left = await asyncio.to_thread(self.journal.all)
        if left:
            log.info("delivering %d lease charge(s) an earlier run of the edge left in %s", len(left),
                     self.journal.path)
            self._to_send += left
            self._ready.set()
        self._tasks = [asyncio.create_task(self._write_forever()), asyncio.create_task(self._send_forever())]
        return left

    async def stop(self, timeout: float) -> None:
        """Stops the tasks, then delivers what is left as far as `timeout` allows (the journal keeps the rest)."""
        self._stopped = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._to_write:  # stopped between queueing and writing: write them now
            batch, self._to_write = self._to_write, []
            await self._write(batch)
        with contextlib.suppress(TimeoutError, OSError):
            await asyncio.wait_for(self.send_once(), timeout)
        if self._to_send:
            log.warning("%d lease charge(s) stay in %s for the next start", len(self._to_send), self.journal.path)
        async with self.journal.lock:
            self.journal.close()
