"""Credit leases: credits an edge spends in memory, charged per request in batches.

A lease is an ordinary hold (state `held`, counted in `users.held_mc`) of min(free balance, target) taken
in one call, so everything that keeps holds honest keeps leases honest too: RenewHolds keeps it while its
edge lives, Release returns what is left of it, and the sweep frees it when its edge dies. The edge takes
each request's price from the lease before the work starts and reports what the request really cost with
ChargeLeases, many requests per call. Each charge:

- is idempotent per request_id (a `lease_charges` row records it, charged or not), so the edge may
  deliver a batch again after an answer it lost, or after a restart from its durable journal;
- is priced here again with the shared univence.pricing function, capped by what the request took
  (`max_mc`, its quote), and by what the lease still holds: the lease shrinks by the charge
  (`holds.amount_mc` is what it still holds, `charged_mc` what it has charged so far);
- gets its own ledger entry, so the ledger still sums to the balance;
- once the lease is released or expired (its edge died and came back, or accounts was away longer than
  the TTL), follows the late-commit rule of ledger.commit: charged at most what the user has free.

A batch is one transaction (group commit), locking its users in id order so two edges' batches cannot
deadlock. The edge never overspends: it spends only what the lease holds, and this side never charges more.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, insert, select, update

from services.accounts.ledger import MAX_DESCRIPTION_LENGTH, EntryKind, Hold, HoldState, Ledger, _hold
from services.accounts.pricing import PriceTable
from services.accounts.store import lock_user, new_id, now_us
from services.accounts.tables import holds, lease_charges, ledger_entries, users
from services.common.database import writing
from services.common.errors import ServiceError, invalid
from univence.accounts.v1 import accounts_pb2 as pb

log = logging.getLogger(__name__)
MAX_CHARGES = 1000
MAX_REQUEST_ID = 64
LEASE_DESCRIPTION = "credit lease"


@dataclass(frozen=True)
class Charged:
    request_id: str
    charged_mc: int
    late: bool


class Leases:
    def __init__(self, ledger: Ledger, prices: PriceTable):
        self.ledger = ledger
        self.prices = prices

    def acquire(self, user_id: str, target_mc: int, minimum_mc: int, ttl_seconds: int = 0) -> tuple[Hold | None, int]:
        """A lease of min(free, target_mc), or None when less than max(minimum_mc, 1) is free; and what was free."""
        if target_mc <= 0:
            raise invalid(f"target_mc must be positive, got {target_mc}", "target_mc")
        if minimum_mc < 0:
            raise invalid(f"minimum_mc must not be negative, got {minimum_mc}", "minimum_mc")
        ttl_us = self.ledger.ttl_us(ttl_seconds)

        def action(conn: Connection) -> tuple[Hold | None, int]:
            now = now_us()
            user, _ = self.ledger.expire_due(conn, lock_user(conn, user_id), now)
            free = user.available_mc
            if free < max(minimum_mc, 1) or user.premium:
                return None, free
            amount = min(free, target_mc)
            hold = Hold(new_id("hold"), user.id, amount, HoldState.HELD, now + ttl_us, 0)
            conn.execute(insert(holds).values(
                id=hold.id, user_id=user.id, amount_mc=amount, state=hold.state.value, description=LEASE_DESCRIPTION,
                idempotency_key=None, request_fingerprint="", charged_mc=0, created_us=now,
                expires_us=hold.expires_us))
            conn.execute(update(users).where(users.c.id == user.id).values(held_mc=users.c.held_mc + amount))
            return hold, free

        with writing(self.ledger.engine) as conn:
            return action(conn)

    def charge(self, charges: Sequence[pb.LeaseCharge]) -> tuple[list[Charged], list[Hold]]:
        """Applies a batch of charges in one transaction; one result per charge, in order, and the leases
        as they are afterwards."""
        if len(charges) > MAX_CHARGES:
            raise invalid(f"at most {MAX_CHARGES} charges per call, got {len(charges)}", "charges")
        for i, c in enumerate(charges):
            if not c.hold_id:
                raise invalid("hold_id is required", f"charges[{i}].hold_id")
            if not c.request_id or len(c.request_id) > MAX_REQUEST_ID:
                raise invalid(f"request_id is required, at most {MAX_REQUEST_ID} characters",
                              f"charges[{i}].request_id")
            if c.max_mc < 0:
                raise invalid(f"max_mc must not be negative, got {c.max_mc}", f"charges[{i}].max_mc")
        prices = [self._price(c) for c in charges]
        done: dict[str, Charged] = {}
        with writing(self.ledger.engine) as conn:
            owners = dict(conn.execute(select(holds.c.id, holds.c.user_id).where(
                holds.c.id.in_({c.hold_id for c in charges}))).all())
            for owner in sorted(set(owners.values())):  # one lock order: no deadlock between two batches
                self._charge_user(conn, owner, [(c, p) for c, p in zip(charges, prices, strict=True)
                                                if owners.get(c.hold_id) == owner], done)
            leases = [_hold(row) for row in conn.execute(select(holds).where(holds.c.id.in_(set(owners))))]
        results = []
        for c in charges:
            if c.request_id not in done:
                log.error("charge %s names unknown lease %s: not charged", c.request_id, c.hold_id)
            results.append(done.get(c.request_id, Charged(c.request_id, 0, False)))
        return results, leases

    def _price(self, charge: pb.LeaseCharge) -> int:
        """The list price of what the request did, capped by what it took from the lease. Items this
        table cannot price (it changed since the edge priced them) cost what the edge quoted."""
        try:
            return min(self.prices.quote(charge.items).total_mc, charge.max_mc)
        except ServiceError as error:
            log.warning("charge %s could not be priced again (%s): charged its quote", charge.request_id, error)
            return charge.max_mc

    def _charge_user(self, conn: Connection, user_id: str, charges: list[tuple[pb.LeaseCharge, int]],
                     done: dict[str, Charged]) -> None:
        now = now_us()
        user, _ = self.ledger.expire_due(conn, lock_user(conn, user_id), now)
        # Read under the user's lock: a batch delivered twice at once (two edge workers sharing a journal)
        # finds the other's charges here once it gets the lock, and answers them instead of charging again.
        done.update({row.request_id: Charged(row.request_id, row.charged_mc, row.late) for row in conn.execute(
            select(lease_charges).where(lease_charges.c.request_id.in_({c.request_id for c, _ in charges})))})
        balance, held = user.balance_mc, user.held_mc
        for c, price in charges:
            if c.request_id in done:
                continue
            row = conn.execute(select(holds).where(holds.c.id == c.hold_id)).one()
            late = row.state != HoldState.HELD.value
            amount = 0 if user.premium else min(price, max(balance - held, 0) if late else row.amount_mc)
            seq = None
            if amount:
                balance -= amount
                seq = conn.execute(insert(ledger_entries).values(
                    user_id=user_id, amount_mc=-amount, kind=EntryKind.CHARGE.value, hold_id=None,
                    description=f"{self._description(c)} ({c.request_id})"[:MAX_DESCRIPTION_LENGTH],
                    balance_after_mc=balance, created_us=now).returning(ledger_entries.c.seq)).scalar_one()
                if not late:
                    held -= amount
                    conn.execute(update(holds).where(holds.c.id == c.hold_id).values(
                        amount_mc=holds.c.amount_mc - amount, charged_mc=holds.c.charged_mc + amount))
            if late:
                log.warning("late charge %s on %s lease %s: charged %d of %d mc", c.request_id, row.state,
                            c.hold_id, amount, price)
            conn.execute(insert(lease_charges).values(
                request_id=c.request_id, hold_id=c.hold_id, user_id=user_id, charged_mc=amount, late=late,
                entry_seq=seq, created_us=now))
            done[c.request_id] = Charged(c.request_id, amount, late)
        conn.execute(update(users).where(users.c.id == user_id).values(balance_mc=balance, held_mc=held))

    def _description(self, charge: pb.LeaseCharge) -> str:
        try:
            return self.prices.quote(charge.items).description
        except ServiceError:
            return "charge"
