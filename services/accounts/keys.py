"""API keys: `sk-` secrets shown once, stored only as a hash, revocable at once.

A secret carries 256 random bits, so one SHA-256 (HMAC with the optional server pepper) is enough: it
cannot be brute-forced, and a stolen database does not reveal usable keys. Secrets are never logged.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, Row, insert, select, update

from services.accounts.revocations import record as record_revocation
from services.accounts.store import (
    User,
    authentication_failed,
    find_user,
    new_id,
    new_secret,
    now_us,
    secret_hash,
    user_from_row,
)
from services.accounts.tables import api_keys, users
from services.common.database import reading, writing
from services.common.errors import invalid, not_found

SECRET_PREFIX = "sk-"
DISPLAY_PREFIX_LENGTH = 8
MAX_NAME_LENGTH = 200
# last_used_us is rewritten at most this often per key, so authentication is normally a read only.
TOUCH_INTERVAL_US = 60_000_000


@dataclass(frozen=True)
class ApiKey:
    id: str
    user_id: str
    name: str
    prefix: str
    created_us: int
    last_used_us: int | None
    revoked_us: int | None


def _key(row: Row) -> ApiKey:
    return ApiKey(row.id, row.user_id, row.name, row.prefix, row.created_us, row.last_used_us, row.revoked_us)


class ApiKeys:
    def __init__(self, engine: Engine, pepper: str = ""):
        self.engine = engine
        self._pepper = pepper.encode()

    def hash_secret(self, secret: str) -> str:
        return secret_hash(secret, self._pepper)

    def create(self, user_ref: str, name: str) -> tuple[ApiKey, str]:
        """A new key and its secret; the secret exists only in the return value."""
        name = name.strip()
        if len(name) > MAX_NAME_LENGTH:
            raise invalid(f"name must be at most {MAX_NAME_LENGTH} characters", "name")
        secret = new_secret(SECRET_PREFIX)
        with writing(self.engine) as conn:
            user = find_user(conn, user_ref)
            key = ApiKey(new_id("key"), user.id, name, secret[:DISPLAY_PREFIX_LENGTH], now_us(), None, None)
            conn.execute(insert(api_keys).values(
                id=key.id, user_id=key.user_id, name=key.name, prefix=key.prefix,
                secret_hash=self.hash_secret(secret), created_us=key.created_us))
        return key, secret

    def list(self, user_ref: str) -> list[ApiKey]:
        """Oldest first, revoked keys included."""
        with reading(self.engine) as conn:
            user = find_user(conn, user_ref)
            rows = conn.execute(select(api_keys).where(api_keys.c.user_id == user.id)
                                .order_by(api_keys.c.created_us, api_keys.c.id)).all()
        return [_key(r) for r in rows]

    def revoke(self, key_id: str, owner_id: str | None = None) -> ApiKey:
        """Revokes the key (only if `owner_id` owns it, when given); revoking a revoked key changes nothing."""
        if not key_id:
            raise invalid("key_id is required", "key_id")
        owned = [api_keys.c.id == key_id] + ([api_keys.c.user_id == owner_id] if owner_id is not None else [])
        with writing(self.engine) as conn:
            changed = conn.execute(update(api_keys).where(*owned, api_keys.c.revoked_us.is_(None))
                                   .values(revoked_us=now_us())).rowcount
            row = conn.execute(select(api_keys).where(*owned)).first()
            if changed and row is not None:
                record_revocation(conn, [row.user_id], "api_key_revoked")
        if row is None:
            raise not_found(f"no API key with id {key_id!r}", "key_id")
        return _key(row)

    def authenticate(self, secret: str) -> tuple[User, str]:
        """The key's user and the key id; unknown and revoked keys fail the same way callers see."""
        query = (select(users, api_keys.c.id.label("key_id"), api_keys.c.last_used_us,
                        api_keys.c.revoked_us)
                 .select_from(api_keys.join(users, users.c.id == api_keys.c.user_id))
                 .where(api_keys.c.secret_hash == self.hash_secret(secret)))
        with reading(self.engine) as conn:
            row = conn.execute(query).first()
        if row is None:
            raise authentication_failed("invalid API key")
        if row.revoked_us is not None:
            raise authentication_failed("this API key has been revoked")
        user = user_from_row(row).ensure_active()
        now = now_us()
        if row.last_used_us is None or now - row.last_used_us >= TOUCH_INTERVAL_US:
            self._touch(row.key_id, now)
        return user, row.key_id

    def _touch(self, key_id: str, now: int) -> None:
        """Records use; the condition keeps concurrent requests from all writing within the interval."""
        with writing(self.engine) as conn:
            conn.execute(update(api_keys).where(
                api_keys.c.id == key_id,
                (api_keys.c.last_used_us.is_(None)) | (api_keys.c.last_used_us <= now - TOUCH_INTERVAL_US),
            ).values(last_used_us=now))
