"""Tokens the service issues: short-lived access JWTs (HS256 or RS256, `kid` in the header) and opaque
refresh tokens (`uvr_…`, stored only as a hash) that work once each.

A refresh token belongs to a family (one per grant: a login with a password, or a session). Using it
marks it used and issues the next one of the family; using a used one again means it was copied, so the
whole family is revoked. Logging a session out revokes the families issued from it; a password change
revokes all of the user's.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.engine import make_url

from services.accounts.config import AccountsSettings, JwtKey
from services.accounts.jwt_auth import load_keys
from services.accounts.store import (
    User,
    authentication_failed,
    new_id,
    new_secret,
    now_us,
    secret_hash,
    user_from_row,
)
from services.accounts.tables import refresh_tokens, users
from services.common.database import writing
from services.common.errors import Reason, ServiceError, invalid
from univence.home import read_or_create_secret

REFRESH_PREFIX = "uvr_"
SECOND_US = 1_000_000
AUTO_KEY_FILE = "jwt-signing.key"


def auto_key_file(settings: AccountsSettings) -> Path | None:
    """Where the generated signing key lives: beside a SQLite database, when nothing else is configured."""
    if not settings.jwt_auto_key or settings.jwt_keys:
        return None
    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database).parent / AUTO_KEY_FILE


def with_auto_key(settings: AccountsSettings) -> AccountsSettings:
    """The settings, plus the generated HS256 key (made on first use, mode 0600) where `auto_key_file` says."""
    path = auto_key_file(settings)
    if path is None:
        return settings
    secret, _ = read_or_create_secret(path, nbytes=48)
    kid = "local-" + hashlib.sha256(secret.encode()).hexdigest()[:12]
    return settings.model_copy(update={"jwt_keys": [JwtKey(kid=kid, algorithm="HS256", secret=secret)]})


class JwtSigner:
    """Signs access tokens with the configured signing key."""

    def __init__(self, algorithm: str, key: Any, kid: str, ttl_seconds: int, issuer: str = "", audience: str = ""):
        self.algorithm, self.kid, self.ttl_seconds = algorithm, kid, ttl_seconds
        self._key, self._issuer, self._audience = key, issuer, audience

    @classmethod
    def from_settings(cls, settings: AccountsSettings) -> JwtSigner | None:
        """The signer `jwt_signing_kid` (or the first key of `jwt_keys` that can sign) names, else None (no
        JWTs are issued; `jwt_hs256_secret` and `jwt_rs256_public_key` only verify other issuers' tokens).
        ValueError for a kid that cannot sign."""
        keys = load_keys(settings)
        ttl = settings.access_token_ttl_seconds
        claims = {"issuer": settings.jwt_issuer, "audience": settings.jwt_audience}
        if settings.jwt_signing_kid:
            key = keys.get(settings.jwt_signing_kid)
            if key is None or key.sign_key is None:
                raise ValueError(f"jwt_signing_kid {settings.jwt_signing_kid!r} is not a key of jwt_keys that can "
                                 "sign (HS256 with a secret, or RS256 with a private key)")
            return cls(key.algorithm, key.sign_key, key.kid, ttl, **claims)
        signing = next((k for k in keys.values() if k.sign_key is not None), None)
        if signing is not None:
            return cls(signing.algorithm, signing.sign_key, signing.kid, ttl, **claims)
        return None

    def sign(self, user_id: str) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {"sub": user_id, "iat": now, "exp": now + self.ttl_seconds,
                                   "jti": secrets.token_urlsafe(12)}
        if self._issuer:
            payload["iss"] = self._issuer
        if self._audience:
            payload["aud"] = self._audience
        return jwt.encode(payload, self._key, algorithm=self.algorithm,
                          headers={"kid": self.kid} if self.kid else None)


@dataclass(frozen=True)
class Issued:
    access_token: str
    expires_in_seconds: int
    refresh_token: str
    refresh_expires_us: int
    user: User


class Tokens:
    def __init__(self, engine: Engine, settings: AccountsSettings, signer: JwtSigner | None):
        self.engine = engine
        self._pepper = settings.api_key_pepper.encode()
        self._refresh_ttl_us = settings.refresh_token_ttl_seconds * SECOND_US
        self._signer = signer

    def _require_signer(self) -> JwtSigner:
        if self._signer is None:
            raise ServiceError(Reason.ERROR_REASON_PERMISSION_DENIED,
                               "this server does not issue JWTs: its operator has configured no signing key "
                               "(accounts.jwt_keys); use an API key")
        return self._signer

    def issue(self, user: User, session_id: str | None = None) -> Issued:
        """An access JWT and the first refresh token of a new family (tied to the session, if any)."""
        signer = self._require_signer()
        with writing(self.engine) as conn:
            refresh, expires_us = self._new_refresh(conn, user.id, new_id("rtf"), session_id)
        return Issued(signer.sign(user.id), signer.ttl_seconds, refresh, expires_us, user)

    def refresh(self, token: str) -> Issued:
        """Uses the refresh token up and issues the next pair; a reused token revokes its whole family."""
        signer = self._require_signer()
        if not token:
            raise invalid("refresh_token is required", "refresh_token")
        now = now_us()
        reused = False
        with writing(self.engine) as conn:
            row = conn.execute(select(refresh_tokens).where(
                refresh_tokens.c.token_hash == secret_hash(token, self._pepper)).with_for_update()).first()
            if row is None or row.revoked_us is not None:
                raise authentication_failed("invalid refresh token; log in again")
            if row.expires_us <= now:
                raise authentication_failed("the refresh token has expired; log in again")
            if row.used_us is not None:
                conn.execute(update(refresh_tokens).where(refresh_tokens.c.family_id == row.family_id,
                                                          refresh_tokens.c.revoked_us.is_(None))
                             .values(revoked_us=now))
                reused = True
            else:
                user = user_from_row(conn.execute(select(users).where(users.c.id == row.user_id)).one())
                user.ensure_active()
                conn.execute(update(refresh_tokens).where(refresh_tokens.c.id == row.id).values(used_us=now))
                refresh, expires_us = self._new_refresh(conn, row.user_id, row.family_id, row.session_id)
        if reused:  # after the commit, so the family stays revoked
            raise authentication_failed("this refresh token was already used; every token issued with it is "
                                        "revoked: log in again")
        return Issued(signer.sign(user.id), signer.ttl_seconds, refresh, expires_us, user)

    def _new_refresh(self, conn: Connection, user_id: str, family_id: str,
                     session_id: str | None) -> tuple[str, int]:
        token = new_secret(REFRESH_PREFIX)
        now = now_us()
        expires_us = now + self._refresh_ttl_us
        conn.execute(insert(refresh_tokens).values(
            id=new_id("rt"), user_id=user_id, family_id=family_id, session_id=session_id,
            token_hash=secret_hash(token, self._pepper), created_us=now, expires_us=expires_us))
        return token, expires_us

    def sweep(self) -> None:
        with writing(self.engine) as conn:
            conn.execute(refresh_tokens.delete().where(refresh_tokens.c.expires_us < now_us() - 86400 * SECOND_US))
