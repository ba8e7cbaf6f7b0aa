"""Login throttling: failed attempts counted per account (email) and per client IP, in the database so every
replica of the service sees the same counts; sign-ups are counted per client IP the same way.

Past the allowed failures, each further attempt must wait, the wait doubling with every failure (up to a
cap); a refused attempt is not checked at all (no password work), and it does not count. An account's
failures are forgotten at its next successful login, every key's after a quiet window. Keys are hashes of
the lower-cased email and of the address, the same for registered and unknown emails: the throttle tells
nothing about which emails exist.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from sqlalchemy import Engine, case, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from services.accounts.config import AccountsSettings
from services.accounts.tables import login_throttle
from services.common.database import now_us, reading, writing
from services.common.errors import Reason, ServiceError

SECOND_US = 1_000_000


@dataclass(frozen=True)
class Key:
    value: str
    max_failures: int


def too_many_attempts(retry_after_seconds: int, what: str) -> ServiceError:
    return ServiceError(Reason.ERROR_REASON_RATE_LIMITED, f"too many {what}; retry in {retry_after_seconds}s",
                        metadata={"retry_after_seconds": str(retry_after_seconds)})


class LoginThrottle:
    def __init__(self, engine: Engine, settings: AccountsSettings):
        self.engine = engine
        self._s = settings
        self._window_us = settings.login_failure_window_seconds * SECOND_US
        dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        self._insert = dialect.insert

    def keys(self, email: str, client_ip: str) -> list[Key]:
        """The keys one attempt counts against: the account's, and the address's when the edge sent one."""
        keys = [Key("e:" + _digest(email.strip().lower()), self._s.login_max_failures)]
        if client_ip:
            keys.append(Key("i:" + _digest(client_ip.strip()), self._s.login_max_failures_per_ip))
        return keys

    def wait_us(self, failures: int, max_failures: int) -> int:
        """How long after the last failure the next attempt must wait."""
        if failures < max_failures:
            return 0
        doubled = self._s.login_lockout_seconds * 2 ** min(failures - max_failures, 20)
        return min(doubled, self._s.login_max_lockout_seconds) * SECOND_US

    def signup_keys(self, client_ip: str) -> list[Key]:
        """Sign-ups count against the address (every sign-up, not only failed ones)."""
        return [Key("s:" + _digest(client_ip.strip()), self._s.signup_max_per_ip)] if client_ip else []

    def check(self, keys: list[Key], what: str = "failed login attempts") -> None:
        """RATE_LIMITED (with the seconds to wait) when any key must still wait."""
        now = now_us()
        by_value = {k.value: k for k in keys}
        with reading(self.engine) as conn:
            rows = conn.execute(select(login_throttle).where(login_throttle.c.throttle_key.in_(by_value))).all()
        waits = [row.last_failure_us + self.wait_us(row.failures, by_value[row.throttle_key].max_failures) - now
                 for row in rows if now - row.last_failure_us < self._window_us]
        longest = max(waits, default=0)
        if longest > 0:
            raise too_many_attempts(max(1, math.ceil(longest / SECOND_US)), what)

    def failed(self, keys: list[Key]) -> None:
        """Counts a failure against every key (a quiet window since the last one starts the count again)."""
        now = now_us()
        table = login_throttle
        with writing(self.engine) as conn:
            for key in keys:
                statement = self._insert(table).values(throttle_key=key.value, failures=1, last_failure_us=now)
                conn.execute(statement.on_conflict_do_update(index_elements=[table.c.throttle_key], set_={
                    "failures": case((table.c.last_failure_us <= now - self._window_us, 1),
                                     else_=table.c.failures + 1),
                    "last_failure_us": now,
                }))

    def succeeded(self, keys: list[Key]) -> None:
        """Forgets the account's failures (the address keeps its count)."""
        with writing(self.engine) as conn:
            conn.execute(delete(login_throttle).where(login_throttle.c.throttle_key == keys[0].value))

    def sweep(self) -> None:
        """Drops the keys whose failures are forgotten anyway."""
        with writing(self.engine) as conn:
            conn.execute(delete(login_throttle).where(login_throttle.c.last_failure_us < now_us() - self._window_us))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
