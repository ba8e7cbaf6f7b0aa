"""Credits: balances, holds and the ledger.

Invariants every transaction keeps (and the tests check under concurrency):
- `users.balance_mc` == the sum of the user's ledger entries (each balance change writes one entry);
- `users.held_mc` == the sum of the user's holds in state `held`;
- a hold is charged at most once: it leaves `held` only through an UPDATE guarded by `state = 'held'`
  under the user's row lock, and the ledger allows one charge entry per hold;
- nothing is spent beyond the balance: a hold is only made from `balance - held`, and a commit never
  charges more than its hold (a late commit of an expired hold, no more than what is free then).

Holds live a short TTL unless renewed (`renew`): the edge renews the holds of its running work, so the
holds of an edge that died are freed by the sweep within TTL + sweep interval. Commit and release are
idempotent, so an edge may retry a settlement whose answer it lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TypeVar

from sqlalchemy import Connection, Engine, Row, insert, literal_column, select, update

from services.accounts.pricing import Quote
from services.accounts.store import (
    User,
    decode_page_token,
    encode_page_token,
    find_user,
    lock_user,
    new_id,
    now_us,
    page_size,
)
from services.accounts.tables import holds, ledger_entries, users
from services.common.database import reading, writing
from services.common.errors import Reason, ServiceError, invalid, not_found

log = logging.getLogger(__name__)
MAX_KEY_LENGTH = 255
MAX_DESCRIPTION_LENGTH = 1000
MAX_REASON_LENGTH = 200
SWEEP_BATCH_USERS = 500
MAX_RENEW_HOLDS = 1000
T = TypeVar("T")


class HoldState(StrEnum):
    HELD = "held"
    COMMITTED = "committed"
    RELEASED = "released"
    EXPIRED = "expired"


# Inlined rather than bound, so the planners can use the partial indexes on `state = 'held'`.
IS_HELD = holds.c.state == literal_column("'held'")


class EntryKind(StrEnum):
    GRANT = "grant"
    PURCHASE = "purchase"
    CHARGE = "charge"


@dataclass(frozen=True)
class Hold:
    id: str
    user_id: str
    amount_mc: int
    state: HoldState
    expires_us: int
    charged_mc: int


def _hold(row: Row) -> Hold:
    return Hold(row.id, row.user_id, row.amount_mc, HoldState(row.state), row.expires_us, row.charged_mc)


@dataclass(frozen=True)
class Reservation:
    hold: Hold
    # The idempotency key's first request was committed: replay, do not run the work again.
    replayed: bool = False
    stored_response: bytes = b""
    stored_response_content_type: str = ""


@dataclass(frozen=True)
class Settlement:
    hold: Hold
    balance_mc: int


@dataclass(frozen=True)
class Balance:
    balance_mc: int
    held_mc: int
    premium: bool


@dataclass(frozen=True)
class Entry:
    seq: int
    user_id: str
    amount_mc: int
    kind: str
    hold_id: str | None
    description: str
    balance_after_mc: int
    created_us: int

    @property
    def id(self) -> str:
        return f"le_{self.seq}"


def _entry(row: Row) -> Entry:
    return Entry(row.seq, row.user_id, row.amount_mc, row.kind, row.hold_id, row.description,
                 row.balance_after_mc, row.created_us)


def credits_text(mc: int) -> str:
    """`1.250 credits (1250 mc)`, exact: no floats near money."""
    whole, milli = divmod(abs(mc), 1000)
    return f"{'-' if mc < 0 else ''}{whole}.{milli:03d} credits ({mc} mc)"


def idempotency_conflict(message: str) -> ServiceError:
    return ServiceError(Reason.ERROR_REASON_IDEMPOTENCY_CONFLICT, message, param="idempotency_key")


class Ledger:
    def __init__(self, engine: Engine, *, default_ttl_seconds: int, max_ttl_seconds: int,
                 max_stored_response_bytes: int, stored_response_retention_seconds: int):
        self.engine = engine
        self._default_ttl = default_ttl_seconds
        self._max_ttl = max_ttl_seconds
        self._max_stored = max_stored_response_bytes
        self._retention_us = stored_response_retention_seconds * 1_000_000

    # -- settling under the user's lock -------------------------------------------------------------

    def _locked(self, action: Callable[[Connection], T]) -> T:
        """Runs `action` in a transaction and commits it even when the action refuses the request
        (a ServiceError), so holds it expired on the way stay expired; the refusal is raised after."""
        refusal: ServiceError | None = None
        with writing(self.engine) as conn:
            try:
                result = action(conn)
            except ServiceError as error:
                refusal = error
        if refusal is not None:
            raise refusal
        return result

    @staticmethod
    def expire_due(conn: Connection, user: User, now: int) -> tuple[User, int]:
        """Expires the user's holds past their time. The caller holds the user's lock."""
        due = conn.execute(select(holds.c.id, holds.c.amount_mc).where(
            holds.c.user_id == user.id, IS_HELD, holds.c.expires_us <= now)).all()
        if not due:
            return user, 0
        total = sum(r.amount_mc for r in due)
        done = conn.execute(update(holds).where(holds.c.id.in_([r.id for r in due]), IS_HELD)
                            .values(state=HoldState.EXPIRED.value, settled_us=now))
        if done.rowcount != len(due):
            raise RuntimeError(f"holds of {user.id} changed while its row was locked")
        conn.execute(update(users).where(users.c.id == user.id).values(held_mc=users.c.held_mc - total))
        log.info("expired %d unsettled hold(s) of %s, freeing %d mc", len(due), user.id, total)
        return replace(user, held_mc=user.held_mc - total), len(due)

    def _lock_hold_owner(self, conn: Connection, hold_id: str) -> tuple[User, Row]:
        """Locks the hold's user (always the user first: one lock order, no deadlocks), expires what
        is due, and reads the hold as it is now."""
        if not hold_id:
            raise invalid("hold_id is required", "hold_id")
        owner = conn.execute(select(holds.c.user_id).where(holds.c.id == hold_id)).scalar()
        if owner is None:
            raise not_found(f"no hold with id {hold_id!r}", "hold_id")
        user, _ = self.expire_due(conn, lock_user(conn, owner), now_us())
        return user, conn.execute(select(holds).where(holds.c.id == hold_id)).one()

    def ttl_us(self, ttl_seconds: int) -> int:
        """A hold's life in µs: `ttl_seconds`, 0 for the default; refused past the maximum."""
        if ttl_seconds < 0 or ttl_seconds > self._max_ttl:
            raise invalid(f"ttl_seconds must be between 0 and {self._max_ttl}, got {ttl_seconds}", "ttl_seconds")
        return (ttl_seconds or self._default_ttl) * 1_000_000

    @property
    def max_stored_response_bytes(self) -> int:
        """The largest response a commit keeps for replays (the edge keeps larger ones in media)."""
        return self._max_stored

    # -- reserve, commit, release ------------------------------------------------------------------

    def reserve(self, user_id: str, quote: Quote, idempotency_key: str = "", fingerprint: str = "",
                ttl_seconds: int = 0) -> Reservation:
        ttl_us = self.ttl_us(ttl_seconds)
        if len(idempotency_key) > MAX_KEY_LENGTH:
            raise invalid(f"idempotency_key must be at most {MAX_KEY_LENGTH} characters", "idempotency_key")
        if len(fingerprint) > MAX_KEY_LENGTH:
            raise invalid(f"request_fingerprint must be at most {MAX_KEY_LENGTH} characters",
                          "request_fingerprint")

        def action(conn: Connection) -> Reservation:
            now = now_us()
            user, _ = self.expire_due(conn, lock_user(conn, user_id), now)
            if idempotency_key:
                replay = self._previous_attempt(conn, user.id, idempotency_key, fingerprint)
                if replay is not None:
                    return replay
            amount = quote.for_user(user.premium).total_mc
            if amount > user.available_mc:
                raise ServiceError(Reason.ERROR_REASON_INSUFFICIENT_CREDITS,
                                   f"insufficient credits: this request needs {credits_text(amount)}, "
                                   f"{credits_text(user.available_mc)} available")
            hold = Hold(new_id("hold"), user.id, amount, HoldState.HELD, now + ttl_us, 0)
            conn.execute(insert(holds).values(
                id=hold.id, user_id=user.id, amount_mc=amount, state=hold.state.value,
                description=quote.description[:MAX_DESCRIPTION_LENGTH],
                idempotency_key=idempotency_key or None, request_fingerprint=fingerprint,
                charged_mc=0, created_us=now, expires_us=hold.expires_us))
            if amount:
                conn.execute(update(users).where(users.c.id == user.id)
                             .values(held_mc=users.c.held_mc + amount))
            return Reservation(hold)

        return self._locked(action)

    @staticmethod
    def _previous_attempt(conn: Connection, user_id: str, key: str, fingerprint: str) -> Reservation | None:
        """The replay of the key's committed attempt; None when the key is new or its last attempt
        was freed (then a new attempt may start); a conflict when the key is busy or for other work."""
        attempts = conn.execute(select(holds).where(holds.c.user_id == user_id, holds.c.idempotency_key == key)
                                .order_by(holds.c.created_us)).all()
        if not attempts:
            return None
        live = [a for a in attempts if a.state in (HoldState.HELD, HoldState.COMMITTED)]
        prior = live[0] if live else attempts[-1]
        if prior.request_fingerprint != fingerprint:
            raise idempotency_conflict("this Idempotency-Key was already used for a different request")
        if prior.state == HoldState.HELD:
            raise idempotency_conflict("a request with this Idempotency-Key is still in progress; "
                                       "retry after it finishes")
        if prior.state == HoldState.COMMITTED:
            return Reservation(_hold(prior), True, prior.response_body or b"", prior.response_content_type)
        return None

    def commit(self, hold_id: str, quote: Quote | None, response_body: bytes = b"",
               response_content_type: str = "") -> Settlement:
        """Charges min(price of `quote`, hold) (the whole hold without a quote); a second commit of the
        same hold returns the first one's result and charges nothing.

        A commit that comes after its hold expired (the edge could not reach accounts for longer than the
        TTL, and its outbox delivers the commit now) still charges, but no more than the user has free at
        that moment: the work was done and delivered, so it is not free, and the credits that expiry gave
        back may already be held or spent elsewhere, so it never overspends. A released hold stays
        released (the edge released it: the work was not delivered)."""
        keep_response = bool(response_body) and len(response_body) <= self._max_stored

        def action(conn: Connection) -> Settlement:
            user, row = self._lock_hold_owner(conn, hold_id)
            state = HoldState(row.state)
            if state == HoldState.COMMITTED:
                return Settlement(_hold(row), user.balance_mc)
            if state not in (HoldState.HELD, HoldState.EXPIRED):
                raise invalid(f"hold {hold_id} was {state.value} and can no longer be committed; "
                              "reserve again", "hold_id")
            late = state == HoldState.EXPIRED
            price = row.amount_mc if quote is None else (0 if user.premium else quote.total_mc)
            charge = min(price, row.amount_mc, max(user.available_mc, 0) if late else row.amount_mc)
            now = now_us()
            values: dict[str, object] = dict(
                state=HoldState.COMMITTED.value, charged_mc=charge, settled_us=now,
                response_body=response_body if keep_response else None,
                response_content_type=response_content_type[:255] if keep_response else "")
            if late and row.idempotency_key and self._key_taken(conn, row):
                values["idempotency_key"] = None  # a newer attempt owns the key now: it replays, not this
            done = conn.execute(update(holds).where(holds.c.id == hold_id, holds.c.state == state.value)
                                .values(**values))
            if done.rowcount != 1:
                raise RuntimeError(f"hold {hold_id} changed while its owner's row was locked")
            if late:
                log.warning("late commit of expired hold %s: charged %d of %d mc", hold_id, charge, price)
            balance = user.balance_mc - charge
            if charge:
                conn.execute(insert(ledger_entries).values(
                    user_id=user.id, amount_mc=-charge, kind=EntryKind.CHARGE.value, hold_id=hold_id,
                    description=row.description, balance_after_mc=balance, created_us=now))
            conn.execute(update(users).where(users.c.id == user.id).values(
                balance_mc=users.c.balance_mc - charge, held_mc=users.c.held_mc - (0 if late else row.amount_mc)))
            hold = replace(_hold(row), state=HoldState.COMMITTED, charged_mc=charge)
            return Settlement(hold, balance)

        return self._locked(action)

    @staticmethod
    def _key_taken(conn: Connection, row: Row) -> bool:
        """Whether another live (held or committed) hold has `row`'s idempotency key."""
        return conn.execute(select(holds.c.id).where(
            holds.c.user_id == row.user_id, holds.c.idempotency_key == row.idempotency_key, holds.c.id != row.id,
            holds.c.state.in_([HoldState.HELD.value, HoldState.COMMITTED.value]))).first() is not None

    def release(self, hold_id: str, reason: str = "") -> Hold:
        """Frees a held hold; releasing a hold that is already settled (committed, released) or expired
        changes nothing and answers it as it is (a retried release must not fail)."""

        def action(conn: Connection) -> Hold:
            user, row = self._lock_hold_owner(conn, hold_id)
            state = HoldState(row.state)
            if state != HoldState.HELD:
                return _hold(row)
            conn.execute(update(holds).where(holds.c.id == hold_id, IS_HELD).values(
                state=HoldState.RELEASED.value, settled_us=now_us(),
                release_reason=reason.strip()[:MAX_REASON_LENGTH]))
            conn.execute(update(users).where(users.c.id == user.id)
                         .values(held_mc=users.c.held_mc - row.amount_mc))
            return replace(_hold(row), state=HoldState.RELEASED)

        return self._locked(action)

    def renew(self, hold_ids: list[str], ttl_seconds: int = 0) -> list[Hold]:
        """Moves the expiry of each hold still held to now + TTL; returns every known hold as it is
        now (unknown ids are left out). One short transaction per owner, expiring what is due first,
        so a hold that has already passed its time stays expired: a renewal never revives one."""
        if len(hold_ids) > MAX_RENEW_HOLDS:
            raise invalid(f"at most {MAX_RENEW_HOLDS} hold_ids per call, got {len(hold_ids)}", "hold_ids")
        ttl_us = self.ttl_us(ttl_seconds)
        with reading(self.engine) as conn:
            owners = conn.execute(select(holds.c.user_id).where(holds.c.id.in_(set(hold_ids)))
                                  .distinct()).scalars().all()
        renewed: list[Hold] = []
        for owner in owners:
            with writing(self.engine) as conn:
                user, _ = self.expire_due(conn, lock_user(conn, owner), now_us())
                mine = holds.c.id.in_(set(hold_ids)) & (holds.c.user_id == user.id)
                conn.execute(update(holds).where(mine, IS_HELD).values(expires_us=now_us() + ttl_us))
                renewed += [_hold(row) for row in conn.execute(select(holds).where(mine)).all()]
        return renewed

    # -- balances, grants, the ledger --------------------------------------------------------------

    def balance(self, user_id: str) -> Balance:
        """The balance, with holds past their time already freed (the sweep may not have run yet)."""
        if not user_id:
            raise invalid("user_id is required", "user_id")
        with writing(self.engine) as conn:
            user = lock_user(conn, user_id)
            user, _ = self.expire_due(conn, user, now_us())
        return Balance(user.balance_mc, user.held_mc, user.premium)

    def grant(self, user_ref: str, amount_mc: int, kind: EntryKind, description: str) -> Entry:
        """Adds credits (a free grant or a purchase) with its ledger entry."""
        if amount_mc <= 0:
            raise invalid(f"amount_mc must be positive, got {amount_mc}", "amount_mc")
        with writing(self.engine) as conn:
            user = lock_user(conn, find_user(conn, user_ref).id, "user")
            now = now_us()
            balance = user.balance_mc + amount_mc
            seq = conn.execute(insert(ledger_entries).values(
                user_id=user.id, amount_mc=amount_mc, kind=kind.value, hold_id=None,
                description=description[:MAX_DESCRIPTION_LENGTH], balance_after_mc=balance, created_us=now,
            ).returning(ledger_entries.c.seq)).scalar_one()
            conn.execute(update(users).where(users.c.id == user.id)
                         .values(balance_mc=users.c.balance_mc + amount_mc))
        return Entry(seq, user.id, amount_mc, kind.value, None, description, balance, now)

    def entries(self, user_id: str, requested_page_size: int, page_token: str) -> tuple[list[Entry], str]:
        """Newest first; the token continues after the last entry of the previous page."""
        size = page_size(requested_page_size)
        before = decode_page_token("ledger", page_token)
        query = (select(ledger_entries).where(ledger_entries.c.user_id == user_id)
                 .order_by(ledger_entries.c.seq.desc()).limit(size + 1))
        if before is not None:
            query = query.where(ledger_entries.c.seq < before)
        with reading(self.engine) as conn:
            if not user_id:
                raise invalid("user_id is required", "user_id")
            if conn.execute(select(users.c.id).where(users.c.id == user_id)).first() is None:
                raise not_found(f"no user with id {user_id!r}", "user_id")
            rows = conn.execute(query).all()
        more = len(rows) > size
        rows = rows[:size]
        return [_entry(r) for r in rows], encode_page_token("ledger", rows[-1].seq) if more else ""

    # -- the background sweep ----------------------------------------------------------------------

    def sweep(self) -> int:
        """Expires every hold past its time (one short transaction per user) and drops stored
        responses older than the retention; returns how many holds expired."""
        now = now_us()
        with writing(self.engine) as conn:
            owners = conn.execute(select(holds.c.user_id).where(IS_HELD, holds.c.expires_us <= now)
                                  .distinct().limit(SWEEP_BATCH_USERS)).scalars().all()
        expired = 0
        for owner in owners:
            with writing(self.engine) as conn:
                _, count = self.expire_due(conn, lock_user(conn, owner), now_us())
                expired += count
        with writing(self.engine) as conn:
            conn.execute(update(holds).where(holds.c.response_body.is_not(None),
                                             holds.c.settled_us < now - self._retention_us)
                         .values(response_body=None, response_content_type=""))
        return expired
