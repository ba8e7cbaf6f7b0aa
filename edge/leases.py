"""Credit leases: a priced request without an Idempotency-Key costs no accounts round trip in the common case.

Each edge process holds, per active user, a lease: a hold of a bounded amount of the user's credits taken
in one AcquireLease call (services/accounts/leases.py). A request is priced here, from accounts' price
table (GetPriceTable, refreshed every PRICE_REFRESH_SECONDS) with the same function accounts charges with
(univence.pricing), and takes its price from the lease in memory before its work starts: the lease can
never be overspent. A failure or a client that goes away gives the price back; a success keeps what it
really cost (at most its quote) and gives back the rest, and its charge is written to the durable journal
before the response is answered, then reported in batches (edge.lease_charges). Accounts charges each
request once, with its own ledger entry.

A lease that falls below a quarter of its target asks accounts for the next one in the background, so the
request that would have emptied it does not wait for AcquireLease; the new lease replaces it, and it is
returned once its requests are done.

A lease is an ordinary hold: the keeper (edge.settlement) renews it while this process lives, so a killed
edge's leases free themselves within the hold TTL; it is returned (Release of what is left, once all its
charges are delivered) when unused for `lease_idle_seconds`, when a new lease replaces it, and at shutdown.

Per-request holds (edge.metering's Reserve/Commit) remain for what needs accounts on the request's path:
requests with an Idempotency-Key (a replay is in accounts), users whose free balance is below
`lease_minimum_mc` (so a user with one credit left can spend exactly that credit, whichever replica they
hit), work the local table cannot price or that is premium-only for a non-premium user (accounts answers
the error), and every request while `credit_leases` is off. Work that costs nothing (premium users, free
operations) needs neither: it touches accounts only through the cached authentication.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from edge.auth import Principal
from edge.charge_journal import Journal
from edge.clients import ServiceClients, call
from edge.config import EdgeSettings
from edge.errors import APIError
from edge.lease_charges import ChargeSender
from edge.settlement import Settlements
from edge.tasks import started
from univence.accounts.v1 import accounts_pb2
from univence.pricing import Prices, PricingError

log = logging.getLogger(__name__)
PRICE_REFRESH_SECONDS = 60.0
IDLE_CHECK_SECONDS = 0.5
# After accounts found too little free for a lease, the user's requests use per-request holds this long
# without asking again (a purchase is seen within it).
NO_LEASE_SECONDS = 1.0


@dataclass(eq=False)
class Lease:
    """One lease as this process spends it. `hold` is accounts' Hold (the keeper renews it by its id)."""

    hold: accounts_pb2.Hold
    left_mc: int  # not yet taken by a request
    in_flight: int = 0  # requests that took from it and have not ended
    undelivered: int = 0  # charges made from it that accounts has not confirmed
    last_used: float = field(default_factory=time.monotonic)
    open: bool = True  # new requests may take from it

    def lost(self, hold: accounts_pb2.Hold) -> None:
        """The keeper found it no longer held (expired: this process could not renew it in time)."""
        if self.open:
            log.warning("credit lease %s is %s: no longer spent from", hold.hold_id,
                        accounts_pb2.HoldState.Name(hold.state))
        self.open = False


class LeaseBook:
    """The leases of one process, by user: taking and giving back, in memory (no I/O: unit-tested)."""

    def __init__(self) -> None:
        self.current: dict[str, Lease] = {}
        self.retiring: set[Lease] = set()

    def take(self, user_id: str, amount_mc: int) -> Lease | None:
        lease = self.current.get(user_id)
        if lease is None or not lease.open or lease.left_mc < amount_mc:
            return None
        lease.left_mc -= amount_mc
        lease.in_flight += 1
        lease.last_used = time.monotonic()
        return lease

    @staticmethod
    def end(lease: Lease, given_back_mc: int, charged: bool) -> None:
        """A request that took from `lease` has ended: `given_back_mc` returns to it; `charged`, its charge
        is on its way to accounts."""
        lease.left_mc += given_back_mc
        lease.in_flight -= 1
        lease.undelivered += charged

    def add(self, lease: Lease) -> None:
        """The user's new lease; the one it replaces is retired (returned once its requests are done)."""
        old = self.current.get(lease.hold.user_id)
        if old is not None:
            self.retire(old)
        self.current[lease.hold.user_id] = lease

    def retire(self, lease: Lease) -> None:
        lease.open = False
        if self.current.get(lease.hold.user_id) is lease:
            del self.current[lease.hold.user_id]
        self.retiring.add(lease)

    def retire_idle(self, idle_seconds: float) -> None:
        now = time.monotonic()
        for lease in list(self.current.values()):
            if not lease.open or (lease.in_flight == 0 and now - lease.last_used >= idle_seconds):
                self.retire(lease)

    def returnable(self) -> list[Lease]:
        """Retired leases with nothing in flight and every charge delivered: what is left may go back."""
        done = [lease for lease in self.retiring if lease.in_flight == 0 and lease.undelivered == 0]
        self.retiring.difference_update(done)
        return done


class LeasedHold:
    """A request's share of a lease, with the interface of edge.metering.Hold (commit, release, settled).
    `lease` is None for work that costs nothing."""

    replay = None
    keyed = False

    def __init__(self, leases: Leases, lease: Lease | None, taken_mc: int,
                 items: list[accounts_pb2.ChargeItem] | None = None):
        self._leases, self.lease, self.taken_mc = leases, lease, taken_mc
        self.quoted = items or []  # what the price was taken for: charged when the commit names nothing
        self.settled = False

    async def commit(self, items: list[accounts_pb2.ChargeItem] | None = None, response_body: bytes = b"",
                     content_type: str = "application/json", headers: Mapping[str, str] | None = None,
                     media_id: str = "") -> None:
        """Charges what was done (None: the quote), at most the quote; durable before it returns."""
        if self.settled:
            return
        self.settled = True
        if self.lease is None:
            return
        cost = self.taken_mc if not items else min(self._leases.price(items, self.taken_mc), self.taken_mc)
        LeaseBook.end(self.lease, self.taken_mc - cost, charged=cost > 0)
        if cost:
            self._leases.sender.add(accounts_pb2.LeaseCharge(
                hold_id=self.lease.hold.hold_id, request_id=f"lc_{secrets.token_hex(12)}",
                items=items or self.quoted, max_mc=cost))

    async def release(self, reason: str) -> None:
        if self.settled:
            return
        self.settled = True
        if self.lease is not None:
            LeaseBook.end(self.lease, self.taken_mc, charged=False)


class Leases:
    """The credit leases of one edge process; started and stopped by the app's lifespan."""

    def __init__(self, clients: ServiceClients, settlements: Settlements, settings: EdgeSettings):
        self.clients, self.settlements, self.settings = clients, settlements, settings
        self.book = LeaseBook()
        self.prices: Prices | None = None
        self.sender = ChargeSender(clients, Journal(settings.outbox_path), settings.lease_flush_ms / 1000,
                                   self._delivered)
        self._acquiring: dict[str, asyncio.Future[bool]] = {}
        self._refused: dict[str, float] = {}  # user → when a lease may be asked for again
        self._by_hold: dict[str, Lease] = {}  # every lease not yet returned, by hold id
        self._tasks: list[asyncio.Task] = []

    # -- a request's share -------------------------------------------------------------------------

    async def spend(self, principal: Principal, items: list[accounts_pb2.ChargeItem]) -> LeasedHold | None:
        """The request's price taken from the user's lease; None when it needs a per-request hold."""
        if self.prices is None:
            return None
        try:
            price = sum(self.prices.amounts(items))
        except PricingError:
            return None  # accounts' Reserve answers the error
        if not principal.premium and self.prices.is_premium_only(items):
            return None  # accounts refuses it (PREMIUM_REQUIRED), as always
        if principal.premium or price == 0:
            return LeasedHold(self, None, 0)
        for _ in range(2):
            lease = self.book.take(principal.user_id, price)
            if lease is not None:
                if lease.left_mc < max(2 * price, self.settings.lease_target_mc // 4):
                    self._refill(principal.user_id, price)
                return LeasedHold(self, lease, price, list(items))
            if not await self._acquire(principal.user_id, price):
                return None
        return None

    def price(self, items: list[accounts_pb2.ChargeItem], quote_mc: int) -> int:
        """What `items` cost by the local table (the quote when it cannot price them)."""
        try:
            return sum(self.prices.amounts(items)) if self.prices is not None else quote_mc
        except PricingError:
            return quote_mc

    async def _acquire(self, user_id: str, price_mc: int) -> bool:
        """A new lease for the user, waited for (one call at a time per user; the others wait for it). False
        when the user has too little free for a lease, or accounts refused or did not answer. The call runs
        as its own task: a request cancelled meanwhile does not lose a lease accounts has granted."""
        task = self._acquisition(user_id, price_mc)
        if task is not None and await asyncio.shield(task):
            return True
        # The current lease (too small for this price) goes back once its requests end, so the per-request
        # holds that follow can use what it still holds.
        current = self.book.current.get(user_id)
        if current is not None:
            self.book.retire(current)
        return False

    def _refill(self, user_id: str, price_mc: int) -> None:
        """The user's next lease asked for while the current one still serves (it is below a quarter of the
        target, or two prices): the request that would have found it empty does not wait for accounts
        (an AcquireLease round trip, which was on every 40th edit's path). The current lease is replaced
        when the new one comes (LeaseBook.add) and returned once its requests are done; a refusal leaves it
        in use until a request finds it too small (_acquire)."""
        self._acquisition(user_id, price_mc)

    def _acquisition(self, user_id: str, price_mc: int) -> asyncio.Future[bool] | None:
        """The user's AcquireLease in flight (started if none is); None while accounts recently refused."""
        if user_id in self._refused:
            if self._refused[user_id] > time.monotonic():
                return None
            del self._refused[user_id]
        task = self._acquiring.get(user_id)
        if task is None:
            # A refill's is awaited by nobody: started() retrieves a failure (_take_lease logs its own).
            task = self._acquiring[user_id] = started(self._take_lease(user_id, price_mc))
            task.add_done_callback(lambda done: self._acquiring.pop(user_id, None)
                                   if self._acquiring.get(user_id) is done else None)
        return task

    async def _take_lease(self, user_id: str, price_mc: int) -> bool:
        try:
            answer = await call("accounts", self.clients.accounts.AcquireLease, accounts_pb2.AcquireLeaseRequest(
                user_id=user_id, target_mc=max(self.settings.lease_target_mc, price_mc),
                minimum_mc=max(self.settings.lease_minimum_mc, price_mc)), timeout=10)
        except APIError as exc:
            log.warning("no credit lease for %s (%s): a per-request hold instead", user_id, exc.message)
            return False
        if not answer.HasField("lease"):
            # Too little free for a lease: per-request holds for a while (once the current lease is too small:
            # _acquire retires it).
            self._refused[user_id] = time.monotonic() + NO_LEASE_SECONDS
            return False
        lease = Lease(answer.lease, answer.lease.amount_mc)
        self.book.add(lease)
        self._by_hold[lease.hold.hold_id] = lease
        self.settlements.track(lease)
        return True

    def _delivered(self, hold_id: str) -> None:
        lease = self._by_hold.get(hold_id)  # None: a charge an earlier run of the edge left in the journal
        if lease is not None:
            lease.undelivered -= 1

    # -- the background work -------------------------------------------------------------------------

    async def _refresh_prices(self) -> None:
        while True:
            try:
                table = await call("accounts", self.clients.accounts.GetPriceTable,
                                   accounts_pb2.GetPriceTableRequest(), timeout=10)
                self.prices = Prices(table.prices)
            except APIError as exc:
                log.warning("the price table could not be read (%s); per-request holds meanwhile", exc.message)
            await asyncio.sleep(PRICE_REFRESH_SECONDS if self.prices is not None else 1.0)

    async def _return_idle(self) -> None:
        while True:
            await asyncio.sleep(IDLE_CHECK_SECONDS)
            self.book.retire_idle(self.settings.lease_idle_seconds)
            await self._return(self.book.returnable())

    async def _return(self, leases: list[Lease]) -> None:
        for lease in leases:
            self._by_hold.pop(lease.hold.hold_id, None)
            with contextlib.suppress(APIError):  # refused: the hold expires by itself
                await self.settlements.release(accounts_pb2.ReleaseRequest(hold_id=lease.hold.hold_id,
                                                                           reason="lease_returned"))

    async def return_all(self, timeout: float = 5.0) -> None:
        """Delivers every charge and returns every lease nothing spends from at this moment: at shutdown,
        and for tests that read the ledger as it settles. Leases still in use stay."""
        deadline = time.monotonic() + timeout
        for lease in list(self.book.current.values()):
            if lease.in_flight == 0:
                self.book.retire(lease)
        while time.monotonic() < deadline:
            await self.sender.flush(deadline - time.monotonic())
            await self._return(self.book.returnable())
            if all(lease.in_flight for lease in self.book.retiring):
                return
            await asyncio.sleep(0.01)

    async def start(self) -> None:
        await self.sender.start()
        self._tasks = [asyncio.create_task(self._refresh_prices()), asyncio.create_task(self._return_idle())]

    async def stop(self, timeout: float = 5.0) -> None:
        """Stops taking, delivers the charges, and returns every lease whose charges are all delivered
        (the others expire by themselves; their charges wait in the journal for the next start)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._acquiring:  # a lease being granted (a refill) is returned with the others, not left to expire
            await asyncio.wait(list(self._acquiring.values()), timeout=timeout)
        for lease in list(self.book.current.values()):
            self.book.retire(lease)
        await self.sender.stop(timeout)
        await self._return(self.book.returnable())
