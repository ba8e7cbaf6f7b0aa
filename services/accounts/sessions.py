"""Login sessions: an opaque random token (`uvs_…`, the edge's cookie) stored only as a hash, with an
absolute expiry, revoked at logout, at a password change, and refused while the user is disabled."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, Engine, insert, select, update

from services.accounts.revocations import record as record_revocation
from services.accounts.store import (
    User,
    authentication_failed,
    new_id,
    new_secret,
    now_us,
    secret_hash,
    user_from_row,
)
from services.accounts.tables import refresh_tokens, sessions, users
from services.common.database import reading, writing
from services.common.errors import invalid

SESSION_PREFIX = "uvs_"
MAX_USER_AGENT_LENGTH = 255
MAX_CLIENT_IP_LENGTH = 64
# Expired and revoked sessions are deleted this long after they ended.
KEEP_ENDED_US = 30 * 86400 * 1_000_000


@dataclass(frozen=True)
class Session:
    id: str
    user_id: str
    created_us: int
    expires_us: int


class Sessions:
    def __init__(self, engine: Engine, pepper: str, ttl_seconds: int):
        self.engine = engine
        self._pepper = pepper.encode()
        self._ttl_us = ttl_seconds * 1_000_000

    def hash(self, token: str) -> str:
        return secret_hash(token, self._pepper)

    def create(self, conn: Connection, user_id: str, client_ip: str, user_agent: str) -> tuple[Session, str]:
        """A new session for the user, in the caller's transaction; the token exists only in the return."""
        token = new_secret(SESSION_PREFIX)
        now = now_us()
        session = Session(new_id("ses"), user_id, now, now + self._ttl_us)
        conn.execute(insert(sessions).values(
            id=session.id, user_id=user_id, token_hash=self.hash(token), created_us=now,
            expires_us=session.expires_us, client_ip=client_ip[:MAX_CLIENT_IP_LENGTH],
            user_agent=user_agent[:MAX_USER_AGENT_LENGTH]))
        return session, token

    def authenticate(self, token: str) -> tuple[User, Session]:
        """The session's (active) user; an unknown, ended or expired session fails saying which."""
        if not token.startswith(SESSION_PREFIX):
            raise authentication_failed("invalid session")
        query = (select(users, sessions.c.id.label("session_id"), sessions.c.created_us.label("session_created_us"),
                        sessions.c.expires_us, sessions.c.revoked_us)
                 .select_from(sessions.join(users, users.c.id == sessions.c.user_id))
                 .where(sessions.c.token_hash == self.hash(token)))
        with reading(self.engine) as conn:
            row = conn.execute(query).first()
        if row is None:
            raise authentication_failed("invalid session; log in again")
        if row.revoked_us is not None:
            raise authentication_failed("this session has ended (logged out); log in again")
        if row.expires_us <= now_us():
            raise authentication_failed("this session has expired; log in again")
        user = user_from_row(row).ensure_active()
        return user, Session(row.session_id, user.id, row.session_created_us, row.expires_us)

    def revoke(self, token: str) -> None:
        """Ends the session and the refresh tokens issued from it; an unknown token is no error."""
        if not token:
            raise invalid("session_token is required", "session_token")
        with writing(self.engine) as conn:
            self.end_token(conn, token)

    def end_token(self, conn: Connection, token: str) -> None:
        """Revokes the session with this token, if any, and its refresh tokens (the caller's transaction)."""
        session_id = conn.execute(select(sessions.c.id).where(sessions.c.token_hash == self.hash(token))).scalar()
        if session_id is not None:
            self.end(conn, sessions.c.id == session_id, refresh_tokens.c.session_id == session_id)

    @staticmethod
    def end(conn: Connection, which_sessions, which_refresh_tokens) -> None:
        """Revokes the sessions and refresh tokens the conditions pick (the caller's transaction)."""
        now = now_us()
        live = (which_sessions, sessions.c.revoked_us.is_(None))
        record_revocation(conn, conn.execute(select(sessions.c.user_id).where(*live)).scalars(), "session_revoked")
        conn.execute(update(sessions).where(*live).values(revoked_us=now))
        conn.execute(update(refresh_tokens).where(which_refresh_tokens, refresh_tokens.c.revoked_us.is_(None))
                     .values(revoked_us=now))

    @classmethod
    def end_all(cls, conn: Connection, user_id: str) -> None:
        """Revokes every session and refresh token of the user (a password change)."""
        cls.end(conn, sessions.c.user_id == user_id, refresh_tokens.c.user_id == user_id)

    def sweep(self) -> None:
        with writing(self.engine) as conn:
            cutoff = now_us() - KEEP_ENDED_US
            conn.execute(sessions.delete().where(sessions.c.expires_us < cutoff))
            conn.execute(sessions.delete().where(sessions.c.revoked_us < cutoff))
