"""Who is calling: the authentication dependency (X-API-Key, `Authorization: Bearer sk-…` or a JWT, or
the login session's cookie), resolved by the accounts service and reused for a few seconds (only while
accounts' revocation stream is connected, so a revoked credential is never served from the cache), then the
per-key rate limit; failed authentications are limited per client address before accounts is asked
(edge.ratelimit.AuthFailureLimiter). A request the session cookie authenticates that changes something
must come from this site's own pages (edge.sessions)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated

import grpc
from fastapi import Depends, Request
from fastapi.encoders import jsonable_encoder
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPBearer
from starlette.routing import BaseRoute

from edge.clients import ServiceClients, call
from edge.config import EdgeSettings
from edge.errors import APIError
from edge.routing import operations
from edge.sessions import SAFE_METHODS, require_same_origin, session_token
from univence.accounts.v1 import accounts_pb2

log = logging.getLogger(__name__)
# Reconnecting to the revocation stream: the first retry after this, doubling up to the maximum.
RECONNECT_SECONDS, MAX_RECONNECT_SECONDS = 0.2, 2.0
# How long the stream's first message may take (the subscription is in place once it came).
SUBSCRIBE_TIMEOUT_SECONDS = 5.0


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
    (keyed by a digest, so secrets are not kept around). Failures are never cached.

    The cache is used only while `watch` is subscribed to accounts' WatchRevocations stream: a change to a
    user's credentials drops their entries the moment it arrives, and while the stream is down (accounts
    away, not subscribed yet) every request asks accounts. An authentication that was in flight while
    entries were dropped is not cached (the epoch moved), so it cannot put back what a revocation removed.

    An entry past half its time is renewed in the background by the request that finds it (`cached(...,
    renew=True)`), so a caller who keeps sending never waits for accounts once cached: every `cache_seconds`
    one of their requests used to, an accounts round trip on its path (a p99 item). An entry is still never
    served past the time it was given; a renewal that fails leaves it to expire, and the request after that
    asks accounts itself and gets its answer."""

    def __init__(self, clients: ServiceClients, cache_seconds: float, max_entries: int = 100_000):
        self._clients = clients
        self._cache_seconds = cache_seconds
        self._max_entries = max_entries
        self._cache: dict[bytes, tuple[float, Principal]] = {}
        self._by_user: dict[str, set[bytes]] = {}
        self._live = False
        self._epoch = 0
        self._renewals: dict[bytes, asyncio.Task[None]] = {}

    @property
    def live(self) -> bool:
        """Whether the revocation stream is connected, so the cache is in use."""
        return self._live

    def cached(self, credential: str, *, renew: bool = False) -> Principal | None:
        """The caller a recent success resolved `credential` to, if it is still reused; with `renew`, an
        entry past half its time starts its renewal (see the class)."""
        if not self._live:
            return None
        digest = hashlib.sha256(credential.encode()).digest()
        hit = self._cache.get(digest)
        if hit is None:
            return None
        left = hit[0] - time.monotonic()
        if left <= 0:
            return None
        if renew and left < self._cache_seconds / 2 and digest not in self._renewals:
            self._renewals[digest] = asyncio.get_running_loop().create_task(self._renewal(credential, digest))
        return hit[1]

    async def authenticate(self, credential: str) -> Principal:
        principal = self.cached(credential)
        if principal is not None:
            return principal
        return await self._resolve(credential, hashlib.sha256(credential.encode()).digest())

    async def _renewal(self, credential: str, digest: bytes) -> None:
        try:
            await self._resolve(credential, digest)
        except APIError:
            pass  # refused now, or accounts away: the entry expires when it was to
        finally:
            self._renewals.pop(digest, None)

    async def _resolve(self, credential: str, digest: bytes) -> Principal:
        """Asks accounts, caching a success while the revocation stream is live and no revocation came
        in meanwhile."""
        epoch = self._epoch
        response = await call("accounts", self._clients.accounts.Authenticate,
                              accounts_pb2.AuthenticateRequest(credential=credential), timeout=10)
        principal = Principal(response.user.user_id, response.user.premium, response.key_id, response.user.email)
        if self._cache_seconds > 0 and self._live and epoch == self._epoch:
            if len(self._cache) >= self._max_entries:
                self._drop_all()
            self._cache[digest] = (time.monotonic() + self._cache_seconds, principal)
            self._by_user.setdefault(principal.user_id, set()).add(digest)
        return principal

    def forget(self, credential: str) -> None:
        """Drops a cached success (a session this edge just logged out); an authentication of it in flight
        (a renewal, another request's) does not put it back."""
        digest = hashlib.sha256(credential.encode()).digest()
        self._epoch += 1
        self._cache.pop(digest, None)
        if (renewal := self._renewals.get(digest)) is not None:
            renewal.cancel()

    def revoked(self, user_ids: list[str]) -> None:
        """Drops every cached success of these users (their credentials changed)."""
        if not user_ids:
            return
        self._epoch += 1
        for user_id in user_ids:
            for digest in self._by_user.pop(user_id, ()):
                self._cache.pop(digest, None)

    def _drop_all(self) -> None:
        self._epoch += 1
        self._cache.clear()
        self._by_user.clear()

    def _subscribed(self, live: bool) -> None:
        """Starts or stops using the cache; either way it starts empty (changes in between were not heard),
        and renewals in flight stop (the edge stopping cancels the watch, so they end with it)."""
        self._drop_all()
        self._live = live
        for renewal in list(self._renewals.values()):
            renewal.cancel()

    async def watch(self) -> None:
        """Follows accounts' revocation stream for as long as the edge runs (a background task), reconnecting
        after a failure; the cache is in use only between the stream's first message and its failure."""
        delay = RECONNECT_SECONDS
        while True:
            stream = self._clients.accounts.WatchRevocations(accounts_pb2.WatchRevocationsRequest())
            try:
                timeout = SUBSCRIBE_TIMEOUT_SECONDS
                while True:
                    message = await asyncio.wait_for(stream.read(), timeout)
                    if message is grpc.aio.EOF:
                        raise ConnectionError("accounts ended the stream")
                    if not self._live:
                        self._subscribed(True)
                        delay = RECONNECT_SECONDS
                        log.info("subscribed to accounts' revocations: authentications are cached for %ss",
                                 self._cache_seconds)
                    self.revoked(list(message.user_ids))
                    # Silence for two heartbeats means a broken stream, not a quiet one.
                    timeout = 2 * max(message.heartbeat_seconds, 1) + 1
            except (grpc.aio.AioRpcError, TimeoutError, ConnectionError) as exc:
                if self._live:
                    why = exc.details() if isinstance(exc, grpc.aio.AioRpcError) else str(exc) or "silent too long"
                    log.warning("accounts' revocation stream is down (%s): every request asks accounts until it "
                                "is back", why)
            except Exception:  # a bug here must not end the watching (the cache would stay off)
                log.exception("following accounts' revocations failed; retrying")
            finally:
                self._subscribed(False)
                stream.cancel()
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RECONNECT_SECONDS)


# The ways to authenticate, as the OpenAPI document's security schemes: every operation that depends on
# require_principal lists them (and no other does; see document_security). None of them is run as a
# dependency: require_principal reads the credential itself (credentials_from), in that order. (Run as
# FastAPI Security dependencies, they were four more dependencies to solve on every request, for nothing.)
API_KEY_HEADER = APIKeyHeader(name="X-API-Key", scheme_name="ApiKeyHeader", auto_error=False,
                              description="An API key: `X-API-Key: sk-…`")
BEARER = HTTPBearer(scheme_name="BearerAuth", bearerFormat="API key or JWT", auto_error=False,
                    description="`Authorization: Bearer sk-…` (an API key) or `Authorization: Bearer <JWT>` "
                                "(from POST /v1/auth/token)")
SESSION_COOKIE = APIKeyCookie(name=EdgeSettings.model_fields["session_cookie"].default, scheme_name="SessionCookie",
                              auto_error=False, description="The login session's cookie (set by /login); a "
                              "request that changes something must come from this site's own pages")
SECURITY_SCHEMES = (API_KEY_HEADER, BEARER, SESSION_COOKIE)


def document_security(document: dict, routes: Iterable[BaseRoute], session_cookie: str) -> None:
    """Adds the security schemes to an OpenAPI document, and to each operation whose route authenticates
    its caller (depends on require_principal) the list of them, unless the operation says its own."""
    schemes = document.setdefault("components", {}).setdefault("securitySchemes", {})
    for scheme in SECURITY_SCHEMES:
        schemes[scheme.scheme_name] = jsonable_encoder(scheme.model, by_alias=True, exclude_none=True)
    schemes[SESSION_COOKIE.scheme_name]["name"] = session_cookie
    every = [{scheme.scheme_name: []} for scheme in SECURITY_SCHEMES]
    for operation in operations(document, routes, require_principal):
        operation.setdefault("security", every)


async def require_principal(request: Request) -> Principal:
    """FastAPI dependency for every authenticated endpoint."""
    credential, from_cookie = credentials_from(request)
    if not credential:
        raise APIError(401, "Missing API key: send `X-API-Key: sk-…` or `Authorization: Bearer <key or JWT>`, "
                       "or log in at /login", "authentication_error", code="missing_api_key")
    if from_cookie and request.method not in SAFE_METHODS:
        require_same_origin(request)
    authenticator: Authenticator = request.app.state.authenticator
    principal = authenticator.cached(credential, renew=True)
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
