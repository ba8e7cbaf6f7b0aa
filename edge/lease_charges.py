"""The charges of requests served from credit leases (edge.leases): written to disk before the request
answers, then reported to accounts in batches.

A request's charge is appended to the process's journal (edge.charge_journal: one write(2), made by the
request itself on the event loop's thread) before the request answers. So an edge killed right after
answering loses no charge: the next start takes over its journal and delivers it. The sender reports what
the journal holds to accounts every `flush_seconds` (sooner once a batch is full) in one ChargeLeases call,
which accounts applies in one transaction and idempotently per request id; delivered charges are marked so
in the journal. While accounts does not take them (unreachable, or failing) the charges stay (in memory and
on disk) and are sent again with a backoff; only a batch accounts calls malformed (INVALID_ARGUMENT) is
dropped, logged.
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
    """Journals charges and delivers them to accounts in batches. `delivered` is called with each
    delivered charge's hold id (edge.leases counts what each lease still has to deliver)."""

    def __init__(self, clients: ServiceClients, journal: Journal, flush_seconds: float,
                 delivered: Callable[[str], None]):
        self.clients, self.journal = clients, journal
        self.flush_seconds = flush_seconds
        self._delivered = delivered
        self._to_send: list[accounts_pb2.LeaseCharge] = []
        self._ready = asyncio.Event()
        self._sending = asyncio.Lock()
        self._tasks: list[asyncio.Task] = []
        self._stopped = False

    def add(self, charge: accounts_pb2.LeaseCharge) -> None:
        """`charge` on disk when this returns (written here, on the event loop's thread: one write(2); a
        writer task batching the requests' charges cost two loop turns more than the write), and queued for
        accounts."""
        try:
            self.journal.put([charge])
        except OSError as exc:  # not durable, but still delivered while this process lives
            log.error("a lease charge could not be journaled (%s); delivered from memory only", exc)
        if not self._stopped:  # else (a request that outlived shutdown) it waits in the journal for the next start
            self._to_send.append(charge)
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
                self.journal.delete([c.request_id for c in batch])
            for charge in batch:
                self._delivered(charge.hold_id)
        return True

    async def flush(self, timeout: float) -> None:
        """Sends what is written, without waiting for the next round."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.send_once(), max(timeout, 0.001))

    async def start(self) -> list[accounts_pb2.LeaseCharge]:
        """Starts sending; queues what earlier runs left in their journals (taken over into this one's), and
        returns it. Before any request: the journal is used from the loop's thread from here on."""
        left = await asyncio.to_thread(self.journal.all)
        if left:
            log.info("delivering %d lease charge(s) an earlier run of the edge left in %s", len(left),
                     self.journal.path)
            self._to_send += left
            self._ready.set()
        self._tasks = [asyncio.create_task(self._send_forever())]
        return left

    async def stop(self, timeout: float) -> None:
        """Stops the tasks, then delivers what is left as far as `timeout` allows (the journal keeps the rest)."""
        self._stopped = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.send_once(), timeout)
        if self._to_send:
            log.warning("%d lease charge(s) stay in %s for the next start", len(self._to_send), self.journal.path)
        self.journal.close()
