"""JWT verification: HS256 with a shared secret and/or RS256 with a public key, and the keys by `kid`
(`jwt_keys`) that the service also signs its own access tokens with (see tokens.py).

The algorithm each key accepts is pinned by configuration, never read from the token: a token whose
header names a configured `kid` is verified by that key with that key's algorithm alone; any other token
(an externally issued one) by the key configured for its header's `alg`. So `alg: none` and the
HS256-signed-with-the-RSA-public-key trick are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

from services.accounts.config import AccountsSettings, JwtKey
from services.accounts.store import authentication_failed

MIN_HS256_SECRET_LENGTH = 32


@dataclass(frozen=True)
class LoadedKey:
    """One `jwt_keys` entry, ready to use: what verifies, and what signs (None: verification only)."""

    kid: str
    algorithm: str
    verify_key: Any
    sign_key: Any | None


def _pem(text: str, file: Path | None) -> str:
    return text or (file.read_text() if file else "")


def load_key(key: JwtKey) -> LoadedKey:
    """Raises ValueError naming the key when it cannot be used."""
    where = f"jwt_keys kid {key.kid!r}"
    if key.algorithm == "HS256":
        if len(key.secret) < MIN_HS256_SECRET_LENGTH:
            raise ValueError(f"{where}: an HS256 secret of at least {MIN_HS256_SECRET_LENGTH} characters is needed")
        return LoadedKey(key.kid, "HS256", key.secret, key.secret)
    private_pem = _pem(key.private_key, key.private_key_file)
    public_pem = _pem(key.public_key, key.public_key_file)
    try:
        private = load_pem_private_key(private_pem.encode(), password=None) if private_pem else None
        public = load_pem_public_key(public_pem.encode()) if public_pem else None
    except ValueError as exc:
        raise ValueError(f"{where}: not a PEM RSA key: {exc}") from None
    if private is not None and not isinstance(private, RSAPrivateKey):
        raise ValueError(f"{where}: private_key is not an RSA key")
    if public is not None and not isinstance(public, RSAPublicKey):
        raise ValueError(f"{where}: public_key is not an RSA key")
    if private is None and public is None:
        raise ValueError(f"{where}: RS256 needs private_key(_file) or public_key(_file)")
    return LoadedKey(key.kid, "RS256", public or private.public_key(), private)


def load_keys(settings: AccountsSettings) -> dict[str, LoadedKey]:
    """The `jwt_keys` by kid; ValueError for a duplicate kid or an unusable key."""
    loaded: dict[str, LoadedKey] = {}
    for key in settings.jwt_keys:
        if key.kid in loaded:
            raise ValueError(f"jwt_keys: kid {key.kid!r} appears twice")
        loaded[key.kid] = load_key(key)
    return loaded


@dataclass(frozen=True)
class Claims:
    subject: str
    payload: dict[str, Any]


class JwtVerifier:
    def __init__(self, keys: dict[str, Any], issuer: str = "", audience: str = "", leeway_seconds: int = 30,
                 by_kid: dict[str, LoadedKey] | None = None):
        """`keys` maps an algorithm name to the key that verifies it; `by_kid`, the keys tokens name by kid."""
        self._keys = keys
        self._by_kid = by_kid or {}
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
        return cls(keys, settings.jwt_issuer, settings.jwt_audience, settings.jwt_leeway_seconds,
                   load_keys(settings))

    @property
    def algorithms(self) -> list[str]:
        return sorted(self._keys)

    @property
    def kids(self) -> list[str]:
        return sorted(self._by_kid)

    def verify(self, token: str) -> Claims:
        """The verified claims; any problem is AUTHENTICATION_FAILED saying what was wrong."""
        if not self._keys and not self._by_kid:
            raise authentication_failed("JWT authentication is not configured on this server; use an API key")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise authentication_failed("the credential is neither an API key (sk-...) nor a JWT") from None
        algorithm, kid = header.get("alg"), header.get("kid")
        named = self._by_kid.get(kid) if isinstance(kid, str) else None
        if named is not None:
            if algorithm != named.algorithm:
                raise authentication_failed(f"JWT key {kid!r} signs with {named.algorithm}, not {algorithm!r}")
            key = named.verify_key
        else:
            key = self._keys.get(algorithm) if isinstance(algorithm, str) else None
        if key is None:
            if not self._keys:
                raise authentication_failed("JWTs from other issuers are not configured on this server (it accepts "
                                            "only the tokens it issues, POST /v1/auth/token); use an API key")
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
