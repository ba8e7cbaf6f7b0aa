"""Database plumbing the accounts modules share, and users.

All functions are synchronous (SQLAlchemy Core); the async servicer runs them in threads. A
transaction that changes a user's money or holds first locks the user's row (`lock_user`): on
PostgreSQL that is SELECT ... FOR UPDATE, on SQLite every write transaction is BEGIN IMMEDIATE, which
already serializes writers. Locking only one user row per transaction also rules out deadlocks.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, Row, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from services.accounts.revocations import record
from services.accounts.tables import users
from services.common.database import now_us, reading, writing
from services.common.errors import Reason, ServiceError, invalid, not_found

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
MAX_EMAIL_LENGTH = 320


def new_id(prefix: str) -> str:
    """`prefix_` and 96 random bits in hex: unguessable, URL- and log-safe."""
    return f"{prefix}_{secrets.token_hex(12)}"


def new_secret(prefix: str) -> str:
    """A bearer secret: `prefix` and 256 random bits (API keys, sessions, refresh and email tokens)."""
    return prefix + secrets.token_urlsafe(32)


def secret_hash(secret: str, pepper: bytes = b"") -> str:
    """How a random secret is stored: SHA-256 (HMAC with the server's pepper when it has one). 256 random
    bits cannot be brute-forced, so a fast hash is enough, and lookups by hash stay one index probe."""
    if pepper:
        return hmac.new(pepper, secret.encode(), hashlib.sha256).hexdigest()
    return hashlib.sha256(secret.encode()).hexdigest()


def authentication_failed(message: str) -> ServiceError:
    return ServiceError(Reason.ERROR_REASON_AUTHENTICATION_FAILED, message)


@dataclass(frozen=True)
class User:
    id: str
    email: str
    premium: bool
    created_us: int
    balance_mc: int
    held_mc: int
    disabled: bool = False
    email_verified: bool = True

    @property
    def available_mc(self) -> int:
        return self.balance_mc - self.held_mc

    def ensure_active(self) -> User:
        """The user, or AUTHENTICATION_FAILED when an operator disabled them (every credential stops)."""
        if self.disabled:
            raise authentication_failed("this account is disabled; contact the operator")
        return self


def user_from_row(row: Row) -> User:
    return User(row.id, row.email, bool(row.premium), row.created_us, row.balance_mc, row.held_mc,
                row.disabled_us is not None, row.email_verified_us is not None)


def page_size(requested: int) -> int:
    """The page size to use: 0 means the default, more than the maximum means the maximum."""
    if requested < 0:
        raise invalid(f"page_size must not be negative, got {requested}", "page_size")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def encode_page_token(kind: str, last_seq: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{last_seq}".encode()).decode()


def decode_page_token(kind: str, token: str) -> int | None:
    """The sequence number a page token continues after, or None for the first page."""
    if not token:
        return None
    try:
        found_kind, _, seq = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        if found_kind == kind:
            return int(seq)
    except (binascii.Error, UnicodeError, ValueError):
        pass
    raise invalid("page_token is not a token this list returned", "page_token")


def lock_user(conn: Connection, user_id: str, param: str = "user_id") -> User:
    """The user's row, locked until the transaction ends (FOR UPDATE is a no-op on SQLite)."""
    if not user_id:
        raise invalid(f"{param} is required", param)
    row = conn.execute(select(users).where(users.c.id == user_id).with_for_update()).first()
    if row is None:
        raise not_found(f"no user with id {user_id!r}", param)
    return user_from_row(row)


def find_user(conn: Connection, ref: str, param: str = "user") -> User:
    """A user by id (`usr_...`) or email."""
    ref = ref.strip()
    if not ref:
        raise invalid(f"{param} (a user id or email) is required", param)
    row = conn.execute(select(users).where(users.c.id == ref)).first()
    if row is None:
        row = conn.execute(select(users).where(func.lower(users.c.email) == func.lower(ref))).first()
    if row is None:
        raise not_found(f"no user with id or email {ref!r}", param)
    return user_from_row(row)


class Users:
    """Creating, finding, listing and updating users."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def create(self, email: str, premium: bool) -> User:
        email = email.strip()
        if not email:
            raise invalid("email is required", "email")
        if len(email) > MAX_EMAIL_LENGTH or not email.isprintable():
            raise invalid(f"email must be at most {MAX_EMAIL_LENGTH} printable characters", "email")
        return self.insert(email, premium=premium, password_hash=None, verified=True)

    def insert(self, email: str, *, premium: bool, password_hash: str | None, verified: bool) -> User:
        """A new user (the email already checked); INVALID_REQUEST when the email is taken."""
        now = now_us()
        user = User(new_id("usr"), email, premium, now, 0, 0, False, verified)
        duplicate = invalid(f"a user with email {email!r} already exists", "email")
        try:
            with writing(self.engine) as conn:
                if self.find_by_email(conn, email) is not None:
                    raise duplicate
                conn.execute(insert(users).values(
                    id=user.id, email=user.email, premium=premium, balance_mc=0, held_mc=0, created_us=now,
                    password_hash=password_hash, email_verified_us=now if verified else None))
        except IntegrityError:  # a concurrent create won the race
            raise duplicate from None
        return user

    @staticmethod
    def find_by_email(conn: Connection, email: str) -> Row | None:
        """The user row with this email (case-insensitive), password hash included; None when unknown."""
        return conn.execute(select(users).where(func.lower(users.c.email) == func.lower(email.strip()))).first()

    def get(self, ref: str) -> User:
        with reading(self.engine) as conn:
            return find_user(conn, ref)

    def get_by_id(self, user_id: str, param: str = "user_id") -> User:
        if not user_id:
            raise invalid(f"{param} is required", param)
        with reading(self.engine) as conn:
            row = conn.execute(select(users).where(users.c.id == user_id)).first()
        if row is None:
            raise not_found(f"no user with id {user_id!r}", param)
        return user_from_row(row)

    def list(self, requested_page_size: int, page_token: str) -> tuple[list[User], str]:
        """Oldest first; the token continues after the last user of the previous page."""
        size = page_size(requested_page_size)
        after = decode_page_token("users", page_token)
        query = select(users).order_by(users.c.seq).limit(size + 1)
        if after is not None:
            query = query.where(users.c.seq > after)
        with reading(self.engine) as conn:
            rows = conn.execute(query).all()
        more = len(rows) > size
        rows = rows[:size]
        return [user_from_row(r) for r in rows], encode_page_token("users", rows[-1].seq) if more else ""

    def update(self, ref: str, premium: bool | None, disabled: bool | None = None) -> User:
        with writing(self.engine) as conn:
            user = find_user(conn, ref)
            changes: dict[str, object] = {}
            if premium is not None and premium != user.premium:
                changes["premium"] = premium
            if disabled is not None and disabled != user.disabled:
                changes["disabled_us"] = now_us() if disabled else None
            if changes:
                conn.execute(update(users).where(users.c.id == user.id).values(**changes))
                record(conn, [user.id], "user_changed")
                user = find_user(conn, user.id)
        return user
