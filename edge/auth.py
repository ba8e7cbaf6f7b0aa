"""Who is calling: the authentication dependency (X-API-Key, `Authorization: Bearer sk-…` or a JWT, or
the login session's cookie), resolved by the accounts service and reused for a few seconds, then the
per-key rate limit; failed authentications are limited per client address before accounts is asked
(edge.ratelimit.AuthFailureLimiter). A request the session cookie authenticates that changes something
must come from this site's own pages (edge.sessions)."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPBearer

from edge.clients import ServiceClients, call
from edge.config import EdgeSettings
from edge.errors import APIError
from edge.sessions import SAFE_METHODS, require_same_origin, session_token
from univence.accounts.v1 import accounts_pb2


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    user_id: str
    premium: bool
    # The API key's id, or "" for a JWT or a session; rate limits are per key (per user for the others).
    key_id: str
    email: str = ""

    @property
    def limit_key(self) -> str:
        return self.key_id or self.user_id


def credential_from(request: Request) -> str | None:
    """The API key or JWT the request carries: X-API-Key first, then a Bearer token."""
    api_key = request.headers.get("x-api-key")
    if api_key:
        return api_key.strip()
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def credentials_from(request: Request) -> tuple[str | None, bool]:
    """The credential and whether it is the session cookie (used only when no header carries one)."""
    credential = credential_from(request)
    if credential:
        return credential, False
    cookie = session_token(request)
    return (cookie, True) if cookie else (None, False)


class Authenticator:
    """Resolves credentials through the accounts service, caching successes for `cache_seconds`
    (keyed by a digest, so secrets are not kept around). Failures are never cached."""

    def __init__(self, clients: ServiceClients, cache_seconds: float, max_entries: int = 100_000):
        self._clients = clients
        self._cache_seconds = cache_seconds
        self._max_entries = max_entries
        self._cache: dict[bytes, tuple[float, Principal]] = {}

    def cached(self, credential: str) -> Principal | None:
        """The caller a recent success resolved `credential` to, if it is still reused."""
        hit = self._cache.get(hashlib.sha256(credential.encode()).digest())
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    async def authenticate(self, credential: str) -> Principal:
        digest = hashlib.sha256(credential.encode()).digest()
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        response = await call("accounts", self._clients.accounts.Authenticate,
                              accounts_pb2.AuthenticateRequest(credential=credential), timeout=10)
        principal = Principal(response.user.user_id, response.user.premium, response.key_id, response.user.email)
        if self._cache_seconds > 0:
            if len(self._cache) >= self._max_entries:
                self._cache.clear()
            self._cache[digest] = (now + self._cache_seconds, principal)
        return principal

    def forget(self, credential: str) -> None:
        """Drops a cached success (a session this edge just logged out)."""
        self._cache.pop(hashlib.sha256(credential.encode()).digest(), None)


# The ways to authenticate, as the OpenAPI document's security schemes: declared on require_principal, so
# every operation that depends on it lists them (and no other does). None of them checks anything
# (auto_error=False): require_principal reads the credential itself (credentials_from), in that order.
API_KEY_HEADER = APIKeyHeader(name="X-API-Key", scheme_name="ApiKeyHeader", auto_error=False,
                              description="An API key: `X-API-Key: sk-…`")
BEARER = HTTPBearer(scheme_name="BearerAuth", bearerFormat="API key or JWT", auto_error=False,
                    description="`Authorization: Bearer sk-…` (an API key) or `Authorization: Bearer <JWT>` "
                                "(from POST /v1/auth/token)")
SESSION_COOKIE = APIKeyCookie(name=EdgeSettings.model_fields["session_cookie"].default, scheme_name="SessionCookie",
                              auto_error=False, description="The login session's cookie (set by /login); a "
                              "request that changes something must come from this site's own pages")


async def _declared(_key: Annotated[str | None, Security(API_KEY_HEADER)],
                    _bearer: Annotated[object, Security(BEARER)],
                    _cookie: Annotated[str | None, Security(SESSION_COOKIE)]) -> None:
    """Only declares the security schemes (for the document); require_principal does the reading."""


async def require_principal(request: Request, _: Annotated[None, Depends(_declared)]) -> Principal:
    """FastAPI dependency for every authenticated endpoint."""
    credential, from_cookie = credentials_from(request)
    if not credential:
        raise APIError(401, "Missing API key: send `X-API-Key: sk-…` or `Authorization: Bearer <key or JWT>`, "
                       "or log in at /login", "authentication_error", code="missing_api_key")
    if from_cookie and request.method not in SAFE_METHODS:
        require_same_origin(request)
    authenticator: Authenticator = request.app.state.authenticator
    principal = authenticator.cached(credential)
    if principal is None:
        # An address that failed too often is refused before accounts is asked (a recent success is not).
        failures = request.app.state.auth_failures
        address = request.client.host if request.client else ""
        failures.check(address)
        try:
            if len(credential) > 8192:
                raise APIError(401, "Invalid API key or token", "authentication_error", code="invalid_api_key")
            principal = await authenticator.authenticate(credential)
        except APIError as error:
            if error.status == 401:
                failures.failed(address)
            raise
    request.app.state.rate_limiter.check(principal.limit_key, request)
    request.state.principal = principal
    return principal


# The authenticated caller of an endpoint: `async def endpoint(caller: Caller)`.
Caller = Annotated[Principal, Depends(require_principal)]
