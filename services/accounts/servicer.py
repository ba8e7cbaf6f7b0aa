"""The AccountsService RPCs: validate, run the synchronous store code in a thread, answer."""

from __future__ import annotations

import asyncio
import functools
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import Message

from services.accounts import messages
from services.accounts.config import AccountsSettings
from services.accounts.jwt_auth import JwtVerifier
from services.accounts.keys import SECRET_PREFIX, ApiKeys
from services.accounts.leases import Leases
from services.accounts.ledger import EntryKind, Ledger
from services.accounts.people import People
from services.accounts.pricing import PriceTable, purchase
from services.accounts.revocations import HEARTBEAT_SECONDS, RevocationFeed
from services.accounts.sessions import SESSION_PREFIX, Sessions
from services.accounts.store import User, Users, authentication_failed
from services.accounts.tokens import REFRESH_PREFIX, Tokens
from services.common.errors import Reason, ServiceError, invalid
from univence import admin
from univence.accounts.v1 import accounts_pb2 as pb
from univence.accounts.v1 import accounts_pb2_grpc

ADMIN_TOKEN_METADATA = admin.METADATA_KEY
# Far beyond any real purchase, and far inside int64 once turned into milli-credits.
MAX_PAID_CENTS = 10**10
MAX_GRANT_MC = 10**15


def reject_nul_characters(message: Message, prefix: str = "") -> None:
    """PostgreSQL cannot store NUL in text, so it is refused up front in every string of a request
    (protobuf strings may carry it) instead of failing deep in the database."""
    for field, value in message.ListFields():
        name = f"{prefix}{field.name}"
        items = [(f"{name}[{i}]", item) for i, item in enumerate(value)] if field.is_repeated else [(name, value)]
        for item_name, item in items:
            if field.type == field.TYPE_STRING and "\x00" in item:
                raise invalid(f"{item_name} must not contain NUL characters", item_name)
            if field.type == field.TYPE_MESSAGE:
                reject_nul_characters(item, f"{item_name}.")


def validated(method: Callable[[Any, Message, Any], Awaitable[Message]]):
    """Wraps an RPC with the checks every request gets."""

    @functools.wraps(method)
    async def rpc(self: Any, request: Message, context: Any) -> Message:
        reject_nul_characters(request)
        return await method(self, request, context)

    return rpc


@dataclass
class Backend:
    """What the RPCs work with; built by the service's `load` once the database is ready."""

    users: Users
    keys: ApiKeys
    ledger: Ledger
    jwt: JwtVerifier
    prices: PriceTable
    people: People
    sessions: Sessions
    tokens: Tokens
    revocations: RevocationFeed
    # The token admin RPCs require (configured, or generated in the data folder: `server.admin_token`);
    # empty refuses every admin RPC.
    admin_token: str = ""


def dollars(cents: int) -> str:
    return f"${cents // 100}.{cents % 100:02d}"


class AccountsServicer(accounts_pb2_grpc.AccountsServiceServicer):
    def __init__(self, settings: AccountsSettings):
        self._settings = settings
        self._backend: Backend | None = None

    def attach(self, backend: Backend) -> None:
        self._backend = backend

    @property
    def backend(self) -> Backend:
        if self._backend is None:  # the runtime's readiness gate keeps RPCs out until load is done
            raise ServiceError(Reason.ERROR_REASON_MODEL_UNAVAILABLE, "the accounts database is not ready yet")
        return self._backend

    def _require_admin(self, context: grpc.aio.ServicerContext) -> None:
        """Admin RPCs are closed by default (a token always exists, see `server.admin_token`); the
        comparison takes the same time wherever the tokens differ, so timing reveals nothing of it."""
        expected = self.backend.admin_token
        sent = next((value for key, value in context.invocation_metadata() or ()
                     if key == ADMIN_TOKEN_METADATA), "")
        if not sent:
            raise ServiceError(Reason.ERROR_REASON_PERMISSION_DENIED,
                               f"admin RPCs need the admin token in the {ADMIN_TOKEN_METADATA} metadata: the "
                               "univence CLI on the service's machine reads it from the data folder "
                               "(admin-token); elsewhere pass --admin-token")
        if not isinstance(sent, str) or not expected or \
                not hmac.compare_digest(sent.encode(), expected.encode()):
            raise ServiceError(Reason.ERROR_REASON_PERMISSION_DENIED,
                               f"the admin token in the {ADMIN_TOKEN_METADATA} metadata is not this service's")

    # -- for the edge --------------------------------------------------------------------------------

    # Not @validated: any malformed credential, NUL included, is an authentication failure.
    async def Authenticate(self, request: pb.AuthenticateRequest, context) -> pb.AuthenticateResponse:
        credential = request.credential.strip()
        if not credential:
            raise authentication_failed("no credential: send an API key (sk-...) or a JWT")
        if credential.startswith(SECRET_PREFIX):
            user, key_id = await asyncio.to_thread(self.backend.keys.authenticate, credential)
            return pb.AuthenticateResponse(user=messages.user_message(user), kind=pb.CREDENTIAL_KIND_API_KEY,
                                           key_id=key_id)
        if credential.startswith(SESSION_PREFIX):
            user, _ = await asyncio.to_thread(self.backend.sessions.authenticate, credential)
            return pb.AuthenticateResponse(user=messages.user_message(user), kind=pb.CREDENTIAL_KIND_SESSION)
        if credential.startswith(REFRESH_PREFIX):
            raise authentication_failed("a refresh token is not a credential: exchange it for an access token "
                                        "(POST /v1/auth/refresh)")
        user = await asyncio.to_thread(self._authenticate_jwt, credential)
        return pb.AuthenticateResponse(user=messages.user_message(user), kind=pb.CREDENTIAL_KIND_JWT)

    def _authenticate_jwt(self, token: str) -> User:
        claims = self.backend.jwt.verify(token)
        try:
            return self.backend.users.get_by_id(claims.subject, "credential").ensure_active()
        except ServiceError as error:
            if error.reason == Reason.ERROR_REASON_NOT_FOUND:
                raise authentication_failed("the JWT's subject is not a known user") from None
            raise

    async def WatchRevocations(self, request: pb.WatchRevocationsRequest, context):
        async for user_ids in self.backend.revocations.stream():
            yield pb.WatchRevocationsResponse(user_ids=user_ids, heartbeat_seconds=HEARTBEAT_SECONDS)

    @validated
    async def Quote(self, request: pb.QuoteRequest, context) -> pb.QuoteResponse:
        quote = self.backend.prices.quote(request.items)
        if request.user_id:
            user = await asyncio.to_thread(self.backend.users.get_by_id, request.user_id)
            quote = quote.for_user(user.premium)
        return pb.QuoteResponse(amount_mc=quote.total_mc, item_amounts_mc=quote.item_amounts_mc)

    @validated
    async def Reserve(self, request: pb.ReserveRequest, context) -> pb.ReserveResponse:
        quote = self.backend.prices.quote(request.items)
        r = await asyncio.to_thread(self.backend.ledger.reserve, request.user_id, quote,
                                    request.idempotency_key, request.request_fingerprint, request.ttl_seconds)
        return pb.ReserveResponse(hold=messages.hold_message(r.hold), replayed=r.replayed,
                                  stored_response=r.stored_response,
                                  stored_response_content_type=r.stored_response_content_type,
                                  max_stored_response_bytes=self.backend.ledger.max_stored_response_bytes)

    @validated
    async def Commit(self, request: pb.CommitRequest, context) -> pb.CommitResponse:
        quote = self.backend.prices.quote(request.items) if request.items else None
        s = await asyncio.to_thread(self.backend.ledger.commit, request.hold_id, quote,
                                    request.response_body, request.response_content_type)
        return pb.CommitResponse(hold=messages.hold_message(s.hold), balance_mc=s.balance_mc)

    @validated
    async def Release(self, request: pb.ReleaseRequest, context) -> pb.ReleaseResponse:
        hold = await asyncio.to_thread(self.backend.ledger.release, request.hold_id, request.reason)
        return pb.ReleaseResponse(hold=messages.hold_message(hold))

    @validated
    async def RenewHolds(self, request: pb.RenewHoldsRequest, context) -> pb.RenewHoldsResponse:
        holds = await asyncio.to_thread(self.backend.ledger.renew, list(request.hold_ids), request.ttl_seconds)
        return pb.RenewHoldsResponse(holds=[messages.hold_message(h) for h in holds])

    @validated
    async def AcquireLease(self, request: pb.AcquireLeaseRequest, context) -> pb.AcquireLeaseResponse:
        leases = Leases(self.backend.ledger, self.backend.prices)
        lease, free = await asyncio.to_thread(leases.acquire, request.user_id, request.target_mc,
                                              request.minimum_mc, request.ttl_seconds)
        return pb.AcquireLeaseResponse(lease=messages.hold_message(lease) if lease else None, available_mc=free)

    @validated
    async def ChargeLeases(self, request: pb.ChargeLeasesRequest, context) -> pb.ChargeLeasesResponse:
        leases = Leases(self.backend.ledger, self.backend.prices)
        results, held = await asyncio.to_thread(leases.charge, list(request.charges))
        return pb.ChargeLeasesResponse(
            results=[pb.LeaseChargeResult(request_id=r.request_id, charged_mc=r.charged_mc, late=r.late)
                     for r in results], leases=[messages.hold_message(h) for h in held])

    @validated
    async def GetBalance(self, request: pb.GetBalanceRequest, context) -> pb.GetBalanceResponse:
        b = await asyncio.to_thread(self.backend.ledger.balance, request.user_id)
        return pb.GetBalanceResponse(balance_mc=b.balance_mc, held_mc=b.held_mc,
                                     available_mc=b.balance_mc - b.held_mc, premium=b.premium)

    @validated
    async def ListLedgerEntries(self, request: pb.ListLedgerEntriesRequest,
                                context) -> pb.ListLedgerEntriesResponse:
        entries, token = await asyncio.to_thread(self.backend.ledger.entries, request.user_id,
                                                 request.page_size, request.page_token)
        return pb.ListLedgerEntriesResponse(entries=[messages.entry_message(e) for e in entries],
                                            next_page_token=token)

    # -- admin ---------------------------------------------------------------------------------------

    @validated
    async def CreateUser(self, request: pb.CreateUserRequest, context) -> pb.CreateUserResponse:
        self._require_admin(context)
        user = await asyncio.to_thread(self.backend.users.create, request.email, request.premium)
        return pb.CreateUserResponse(user=messages.user_message(user))

    @validated
    async def GetUser(self, request: pb.GetUserRequest, context) -> pb.GetUserResponse:
        self._require_admin(context)
        user = await asyncio.to_thread(self.backend.users.get, request.user)
        return pb.GetUserResponse(user=messages.user_message(user))

    @validated
    async def ListUsers(self, request: pb.ListUsersRequest, context) -> pb.ListUsersResponse:
        self._require_admin(context)
        users, token = await asyncio.to_thread(self.backend.users.list, request.page_size, request.page_token)
        return pb.ListUsersResponse(users=[messages.user_message(u) for u in users], next_page_token=token)

    @validated
    async def UpdateUser(self, request: pb.UpdateUserRequest, context) -> pb.UpdateUserResponse:
        self._require_admin(context)
        premium = request.premium if request.HasField("premium") else None
        disabled = request.disabled if request.HasField("disabled") else None
        user = await asyncio.to_thread(self.backend.users.update, request.user, premium, disabled)
        await self.backend.revocations.publish()
        return pb.UpdateUserResponse(user=messages.user_message(user))

    @validated
    async def CreateApiKey(self, request: pb.CreateApiKeyRequest, context) -> pb.CreateApiKeyResponse:
        self._require_admin(context)
        key, secret = await asyncio.to_thread(self.backend.keys.create, request.user, request.name)
        return pb.CreateApiKeyResponse(api_key=messages.api_key_message(key), secret=secret)

    @validated
    async def ListApiKeys(self, request: pb.ListApiKeysRequest, context) -> pb.ListApiKeysResponse:
        self._require_admin(context)
        keys = await asyncio.to_thread(self.backend.keys.list, request.user)
        return pb.ListApiKeysResponse(api_keys=[messages.api_key_message(k) for k in keys])

    @validated
    async def RevokeApiKey(self, request: pb.RevokeApiKeyRequest, context) -> pb.RevokeApiKeyResponse:
        self._require_admin(context)
        key = await asyncio.to_thread(self.backend.keys.revoke, request.key_id)
        await self.backend.revocations.publish()
        return pb.RevokeApiKeyResponse(api_key=messages.api_key_message(key))

    @validated
    async def GrantCredits(self, request: pb.GrantCreditsRequest, context) -> pb.GrantCreditsResponse:
        self._require_admin(context)
        note = request.note.strip()
        if request.paid_cents:
            if not 0 < request.paid_cents <= MAX_PAID_CENTS:
                raise invalid(f"paid_cents must be between 1 and {MAX_PAID_CENTS}, got {request.paid_cents}",
                              "paid_cents")
            bought = purchase(request.paid_cents, self._settings.pricing.bulk_discount_percent)
            description = f"purchase of {bought.credits} credits for {dollars(bought.price_cents)}"
            if bought.discount_percent:
                description += f" ({bought.discount_percent}% bulk discount)"
            if bought.price_cents != request.paid_cents:
                description += f", paid {dollars(request.paid_cents)}"
            description += f"; {note}" if note else ""
            entry = await asyncio.to_thread(self.backend.ledger.grant, request.user, bought.credits * 1000,
                                            EntryKind.PURCHASE, description)
            return pb.GrantCreditsResponse(entry=messages.entry_message(entry),
                                           discount_percent=bought.discount_percent)
        if request.amount_mc > MAX_GRANT_MC:
            raise invalid(f"amount_mc must be at most {MAX_GRANT_MC}", "amount_mc")
        entry = await asyncio.to_thread(self.backend.ledger.grant, request.user, request.amount_mc,
                                        EntryKind.GRANT, note or "grant")
        return pb.GrantCreditsResponse(entry=messages.entry_message(entry))

    # -- self-service (the edge's pages) -------------------------------------------------------------
    # Passwords and tokens are in these requests: nothing here logs a request.

    @validated
    async def SignUp(self, request: pb.SignUpRequest, context) -> pb.SignUpResponse:
        user, verification = await asyncio.to_thread(self.backend.people.sign_up, request.email, request.password,
                                                     request.client_ip)
        return pb.SignUpResponse(user=messages.user_message(user) if user else None,
                                 verification_required=verification)

    @validated
    async def VerifyEmail(self, request: pb.VerifyEmailRequest, context) -> pb.VerifyEmailResponse:
        user = await asyncio.to_thread(self.backend.people.verify_email, request.token)
        return pb.VerifyEmailResponse(user=messages.user_message(user))

    @validated
    async def CreateSession(self, request: pb.CreateSessionRequest, context) -> pb.CreateSessionResponse:
        session, token, user = await asyncio.to_thread(
            self.backend.people.create_session, request.email, request.password, request.client_ip,
            request.user_agent, request.previous_session_token)
        if request.previous_session_token:  # a new login ends the session it replaces
            await self.backend.revocations.publish()
        return pb.CreateSessionResponse(session=messages.session_message(session), session_token=token,
                                        user=messages.user_message(user))

    @validated
    async def RevokeSession(self, request: pb.RevokeSessionRequest, context) -> pb.RevokeSessionResponse:
        await asyncio.to_thread(self.backend.sessions.revoke, request.session_token)
        await self.backend.revocations.publish()
        return pb.RevokeSessionResponse()

    @validated
    async def ChangePassword(self, request: pb.ChangePasswordRequest, context) -> pb.ChangePasswordResponse:
        session, token = await asyncio.to_thread(
            self.backend.people.change_password, request.session_token, request.current_password,
            request.new_password, request.client_ip, request.user_agent)
        await self.backend.revocations.publish()
        return pb.ChangePasswordResponse(session=messages.session_message(session), session_token=token)

    @validated
    async def IssueToken(self, request: pb.IssueTokenRequest, context) -> pb.IssueTokenResponse:
        issued = await asyncio.to_thread(self._issue_token, request)
        return pb.IssueTokenResponse(tokens=messages.issued_message(issued))

    def _issue_token(self, request: pb.IssueTokenRequest):
        grant = request.WhichOneof("grant")
        if grant == "password":
            user = self.backend.people.login(request.password.email, request.password.password, request.client_ip)
            return self.backend.tokens.issue(user)
        if grant == "session_token":
            user, session = self.backend.sessions.authenticate(request.session_token)
            return self.backend.tokens.issue(user, session.id)
        raise invalid("a grant is required: password (email and password) or session_token", "grant")

    @validated
    async def RefreshToken(self, request: pb.RefreshTokenRequest, context) -> pb.RefreshTokenResponse:
        issued = await asyncio.to_thread(self.backend.tokens.refresh, request.refresh_token)
        return pb.RefreshTokenResponse(tokens=messages.issued_message(issued))

    async def _session_user(self, session_token: str) -> User:
        user, _ = await asyncio.to_thread(self.backend.sessions.authenticate, session_token)
        return user

    @validated
    async def ListOwnApiKeys(self, request: pb.ListOwnApiKeysRequest, context) -> pb.ListOwnApiKeysResponse:
        user = await self._session_user(request.session_token)
        keys = await asyncio.to_thread(self.backend.keys.list, user.id)
        return pb.ListOwnApiKeysResponse(api_keys=[messages.api_key_message(k) for k in keys])

    @validated
    async def CreateOwnApiKey(self, request: pb.CreateOwnApiKeyRequest, context) -> pb.CreateOwnApiKeyResponse:
        user = await self._session_user(request.session_token)
        key, secret = await asyncio.to_thread(self.backend.keys.create, user.id, request.name)
        return pb.CreateOwnApiKeyResponse(api_key=messages.api_key_message(key), secret=secret)

    @validated
    async def RevokeOwnApiKey(self, request: pb.RevokeOwnApiKeyRequest, context) -> pb.RevokeOwnApiKeyResponse:
        user = await self._session_user(request.session_token)
        key = await asyncio.to_thread(self.backend.keys.revoke, request.key_id, user.id)
        await self.backend.revocations.publish()
        return pb.RevokeOwnApiKeyResponse(api_key=messages.api_key_message(key))

    async def GetPriceTable(self, request: pb.GetPriceTableRequest, context) -> pb.GetPriceTableResponse:
        prices = self.backend.prices
        return pb.GetPriceTableResponse(prices=prices.lines(), bulk_discounts=prices.bulk_discounts())
