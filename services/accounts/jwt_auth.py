"""JWT verification: HS256 with a shared secret and/or RS256 with a public key.

The algorithm each key accepts is pinned by configuration, never read from the token: the header's
`alg` only picks which configured key to try, and that key verifies with its own algorithm alone.
So `alg: none` and the HS256-signed-with-the-RSA-public-key trick are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from services.accounts.config import AccountsSettings
from services.accounts.keys import authentication_failed


@dataclass(frozen=True)
class Claims:
    subject: str
    payload: dict[str, Any]


class JwtVerifier:
    def __init__(self, keys: dict[str, Any], issuer: str = "", audience: str = "", leeway_seconds: int = 30):
        """`keys` maps an algorithm name to the key that verifies it."""
        self._keys = keys
        self._issuer = issuer or None
        self._audience = audience or None
        self._leeway = leeway_seconds

    @classmethod
    def from_settings(cls, settings: AccountsSettings) -> JwtVerifier:
        """Raises ValueError for a key that cannot be used (the service then reports it and does not start)."""
        keys: dict[str, Any] = {}
        if settings.jwt_hs256_secret:
            keys["HS256"] = settings.jwt_hs256_secret
        pem = settings.jwt_rs256_public_key
        if not pem and settings.jwt_rs256_public_key_file:
            pem = settings.jwt_rs256_public_key_file.read_text()
        if pem:
            try:
                keys["RS256"] = load_pem_public_key(pem.encode())
            except ValueError as exc:
                raise ValueError(f"jwt_rs256_public_key is not a PEM public key: {exc}") from None
        return cls(keys, settings.jwt_issuer, settings.jwt_audience, settings.jwt_leeway_seconds)

    @property
    def algorithms(self) -> list[str]:
        return sorted(self._keys)

    def verify(self, token: str) -> Claims:
        """The verified claims; any problem is AUTHENTICATION_FAILED saying what was wrong."""
        if not self._keys:
            raise authentication_failed("JWT authentication is not configured on this server; use an API key")
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
        except jwt.InvalidTokenError:
            raise authentication_failed("the credential is neither an API key (sk-...) nor a JWT") from None
        key = self._keys.get(algorithm) if isinstance(algorithm, str) else None
        if key is None:
            raise authentication_failed(f"JWT algorithm {algorithm!r} is not accepted; "
                                        f"accepted: {', '.join(self.algorithms)}")
        try:
            payload = jwt.decode(
                token, key, algorithms=[algorithm], issuer=self._issuer, audience=self._audience,
                leeway=self._leeway,
                options={"require": ["exp", "sub"], "verify_aud": self._audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise authentication_failed("the JWT has expired") from None
        except jwt.InvalidTokenError as exc:
            raise authentication_failed(f"invalid JWT: {exc}") from None
        subject = payload["sub"]
        if not isinstance(subject, str) or not subject or not subject.isprintable():
            raise authentication_failed("the JWT's sub claim must be a user id")
        return Claims(subject, payload)
