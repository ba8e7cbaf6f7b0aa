"""Holds on credits around every priced request: reserve → run → store → commit, release on failure.
Endpoints do not use this directly: edge.serving runs the whole metered flow for them.

    async with meter.hold(request, principal, [item]) as hold:
        if hold.replay is not None:
            return hold.replay                      # same Idempotency-Key, already charged once
        ...run the work, store the media...
        await hold.commit(actual_items, response_bytes)

Leaving the block without a commit (an error, a cancelled request, a client that went away before the
result existed) releases the hold, so a failed request never costs credits. The release runs in its own
task, so cancellation of the request cannot cut it short. Once the result exists it is committed, even
if the client has gone by then: a retry with the same Idempotency-Key replays it, and outputs stay in
media. Settlements go through edge.settlement: a commit or release accounts does not answer waits in the
outbox (the response is still answered), and every unsettled Hold is renewed by the keeper, however long
its work runs.

A replay is the first response as it was: its body and content type, and the headers that belong to the
answer (a mask's scores, a video's media id). Accounts keeps a body and its content type; an answer with
headers, or whose body is a file in media, is kept as a replay record (REPLAY_RECORD: a JSON line with
the content type, the headers and the media id, then the body, left out when media holds it: a video is
read back from media rather than copied into the accounts database). A body larger than accounts keeps
(ReserveResponse.max_stored_response_bytes) is stored in media, owned by the user, and kept by
reference the same way, so every completed keyed request can be replayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Mapping
from typing import Annotated, TypeVar

from fastapi import Depends, Request, Response
from starlette.types import Receive, Scope

from edge.auth import Principal
from edge.clients import ServiceClients, call, stream
from edge.errors import APIError, ClientDisconnected
from edge.http_protocol import DISCONNECT
from edge.leases import LeasedHold, Leases
from edge.settlement import Settlements
from univence.accounts.v1 import accounts_pb2
from univence.media.v1 import media_pb2

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_IDEMPOTENCY_KEY = 255
REPLAY_RECORD = "application/vnd.univence.replay"


class Hold:
    def __init__(self, meter: Meter, hold: accounts_pb2.Hold, replay: Response | None, keyed: bool = False,
                 max_stored: int = 0):
        self._meter = meter
        self.hold = hold
        self.replay = replay
        self.settled = replay is not None
        # The request carries an Idempotency-Key: its response is kept for replays.
        self.keyed = keyed
        # The largest response accounts keeps (0: unknown, no limit applied here).
        self.max_stored = max_stored
        if not self.settled:
            meter.settlements.track(self)

    def lost(self, hold: accounts_pb2.Hold) -> None:
        """The keeper found it expired while the work ran (and logged it): nothing changes here. The
        request goes on, and accounts settles its late commit (charging at most what the user has free
        then, so never an overspend) or its release."""

    async def commit(self, items: list[accounts_pb2.ChargeItem] | None = None, response_body: bytes = b"",
                     content_type: str = "application/json", headers: Mapping[str, str] | None = None,
                     media_id: str = "") -> accounts_pb2.CommitResponse | None:
        """Charges the real cost (items as actually done; None charges the quote) and keeps the
        response for replays of the same Idempotency-Key (only ever read back for those, so it is
        not sent when the request has no key): with its `headers`, and read back from media when
        `media_id` says the body is that file (a body too large for accounts is put there first).
        None when accounts did not answer: the commit waits in the settlement outbox."""
        if self.keyed:
            if not media_id and self.max_stored and len(response_body) > self.max_stored:
                media_id = await self._meter.store_replay(self.hold.user_id, response_body, content_type)
            response_body, content_type = replay_record(response_body, content_type, headers or {}, media_id)
        result = await self._meter.settlements.commit(accounts_pb2.CommitRequest(
            hold_id=self.hold.hold_id, items=items or [], response_body=response_body if self.keyed else b"",
            response_content_type=content_type))
        self.settled = True
        return result

    async def release(self, reason: str) -> None:
        if self.settled:
            return
        self.settled = True
        task = asyncio.ensure_future(self._meter.release(self.hold.hold_id, reason))
        self._meter.background.add(task)
        task.add_done_callback(self._meter.background.discard)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(task)


class Meter:
    def __init__(self, clients: ServiceClients, settlements: Settlements, leases: Leases | None = None):
        self.clients = clients
        self.settlements = settlements
        # Credit leases (edge.leases); None: every priced request holds its own credits.
        self.leases = leases
        self.background: set[asyncio.Task] = set()

    async def drain(self, timeout: float = 10.0) -> None:
        """Waits (at most `timeout` seconds) for hold releases still on their way to accounts: at shutdown,
        so that a release is not lost with the process (the hold would stay until it expires)."""
        if self.background:
            await asyncio.wait(set(self.background), timeout=timeout)

    @contextlib.asynccontextmanager
    async def hold(self, request: Request, principal: Principal,
                   items: list[accounts_pb2.ChargeItem]) -> AsyncIterator[Hold | LeasedHold]:
        hold = await self.acquire(request, principal, items)
        try:
            yield hold
        except BaseException as exc:
            await self.settle(hold, exc)
            raise
        await self.settle(hold, None)

    async def acquire(self, request: Request, principal: Principal,
                      items: list[accounts_pb2.ChargeItem]) -> Hold | LeasedHold:
        """What a request spends from: its share of a credit lease when it can (no Idempotency-Key, a
        balance large enough for a lease: no accounts call on its path), else its own hold (`reserve`).
        Settled the same way either way (commit, or release)."""
        if self.leases is not None and not request.headers.get("idempotency-key"):
            share = await self.leases.spend(principal, items)
            if share is not None:
                return share
        return await self.reserve(request, principal, items)

    async def reserve(self, request: Request, principal: Principal,
                      items: list[accounts_pb2.ChargeItem]) -> Hold:
        """The hold (or the replay of the same Idempotency-Key); the caller settles it: commit, or
        release (see `hold`, which does that for a block)."""
        key = request.headers.get("idempotency-key", "")
        if len(key) > MAX_IDEMPOTENCY_KEY:
            raise APIError(400, f"Idempotency-Key is longer than {MAX_IDEMPOTENCY_KEY} characters",
                           param="Idempotency-Key")
        reserved = await call("accounts", self.clients.accounts.Reserve, accounts_pb2.ReserveRequest(
            user_id=principal.user_id, items=items, idempotency_key=key,
            request_fingerprint=fingerprint(request) if key else ""), timeout=30)
        replay = await self.replay(reserved) if reserved.replayed else None
        return Hold(self, reserved.hold, replay, keyed=bool(key), max_stored=reserved.max_stored_response_bytes)

    async def replay(self, reserved: accounts_pb2.ReserveResponse) -> Response:
        """The stored response of the key's first request, as it was answered."""
        if not reserved.stored_response:
            raise replay_conflict("its response is not stored")
        body, content_type = reserved.stored_response, reserved.stored_response_content_type or "application/json"
        headers = {}
        if content_type == REPLAY_RECORD:
            head, _, body = body.partition(b"\n")
            record = json.loads(head)
            content_type, headers = record["content_type"], record["headers"]
            if record["media_id"]:
                body = await self.read_media(record["media_id"])
        return Response(body, media_type=content_type, headers={**headers, "Idempotent-Replayed": "true"})

    async def read_media(self, media_id: str) -> bytes:
        """A stored output, read back for a replay (409 when its owner has deleted it since)."""
        request = media_pb2.GetMediaRequest(media_id=media_id)
        try:
            return b"".join([message.chunk async for message in stream(
                "media", self.clients.media.GetMedia, request, timeout=60) if message.WhichOneof("payload") == "chunk"])
        except APIError as exc:
            if exc.status == 404:
                raise replay_conflict("its output was deleted from media") from None
            raise

    async def store_replay(self, owner_id: str, body: bytes, content_type: str) -> str:
        """Keeps a response too large for accounts in media, owned by the user; its media id. Empty when
        media does not take it (a type it does not store): the result is still answered and charged,
        only a replay of it is not possible (409), which is no reason to fail the request."""
        major = content_type.partition("/")[0]
        kind = {"image": media_pb2.MEDIA_KIND_IMAGE, "video": media_pb2.MEDIA_KIND_VIDEO,
                "audio": media_pb2.MEDIA_KIND_AUDIO}.get(major, media_pb2.MEDIA_KIND_DATA)
        try:
            stored = await call("media", self.clients.media.CreateMedia, media_pb2.CreateMediaRequest(
                owner_id=owner_id, kind=kind, mime_type=content_type, data=body), timeout=60)
        except APIError as exc:
            log.warning("a %d-byte %s response could not be kept in media for replays: %s", len(body),
                        content_type, exc.message)
            return ""
        return stored.media.media_id

    async def settle(self, hold: Hold | LeasedHold, exc: BaseException | None) -> None:
        """Releases `hold` unless it was committed: `exc` says why the work ended without a commit."""
        if exc is not None:
            await hold.release(_reason(exc))
        elif not hold.settled:
            await hold.release("not_committed")

    async def release(self, hold_id: str, reason: str) -> None:
        """Releases (through the outbox when accounts does not answer)."""
        try:
            await self.settlements.release(accounts_pb2.ReleaseRequest(hold_id=hold_id, reason=reason))
        except APIError as exc:  # refused (not unreachable): nothing to retry; the hold expires by itself
            log.warning("release of %s refused (%s)", hold_id, exc.message)


def replay_record(body: bytes, content_type: str, headers: Mapping[str, str], media_id: str) -> tuple[bytes, str]:
    """What accounts keeps for replays: the body as it is, or with headers or a body in media, a replay
    record (see the module's docstring)."""
    if not headers and not media_id:
        return body, content_type
    head = json.dumps({"content_type": content_type, "headers": dict(headers), "media_id": media_id})
    return head.encode() + b"\n" + (b"" if media_id else body), REPLAY_RECORD


def replay_conflict(why: str) -> APIError:
    return APIError(409, f"This Idempotency-Key was already used for a request that completed; {why}, so it "
                    "cannot be replayed", code="idempotency_conflict", param="Idempotency-Key")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, asyncio.CancelledError | ClientDisconnected):
        return "client_disconnected"
    if isinstance(exc, APIError):
        return exc.type
    return "processing_error"


def fingerprint(request: Request) -> str:
    """A digest of what the request asks for: method, path, query and the body (hashed as it streamed
    in, by the edge middleware), so one Idempotency-Key cannot be reused for different work."""
    h = hashlib.sha256()
    h.update(f"{request.method} {request.url.path}?{request.url.query}\n".encode())
    h.update(request.scope.get("state", {}).get("body_sha256", b""))
    return h.hexdigest()


async def until_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Runs `work`, cancelling it if the client disconnects first (the request then raises
    ClientDisconnected, which releases its hold)."""
    return await cancel_on_disconnect(request.scope, request.receive, work)


async def cancel_on_disconnect(scope: Scope, receive: Receive, work: Awaitable[T]) -> T:
    """`work` awaited in this task while the client is watched: a disconnect first cancels this task, and
    the work with it, and raises ClientDisconnected once the work has wound down (its gRPC call cancelled,
    the generator step it ran finished, so the caller can close what it ran in: `aclose()` refuses a
    generator whose step is still running, which would skip the hold's release).

    The client is watched through the server's disconnect future (edge.http_protocol.DISCONNECT) where the
    scope has one, else by a watcher task that reads `receive`. The work is awaited here, not in a task of
    its own beside `asyncio.wait`: a task, a wait and their callbacks fewer on every metered request."""
    this = asyncio.current_task()
    assert this is not None
    watching, gone = True, False

    def disconnected(signal: asyncio.Future[None]) -> None:
        nonlocal gone
        if watching and not signal.cancelled() and signal.exception() is None:
            gone = True
            this.cancel()

    server_signal = scope.get("extensions", {}).get(DISCONNECT)
    signal = server_signal if server_signal is not None else asyncio.ensure_future(_wait_disconnect(receive))
    signal.add_done_callback(disconnected)
    try:
        result = await work
    except asyncio.CancelledError:
        if gone and this.uncancel() == 0:  # our own cancel, nobody else's: the client went away
            raise ClientDisconnected() from None
        raise
    except BaseException:
        if not gone:
            raise
        result = None
    finally:
        watching = False  # a disconnect seen from here on is not this call's: never cancel the task later
        if server_signal is None:
            signal.cancel()
        else:
            signal.remove_done_callback(disconnected)
    if gone:  # the work took our cancel and ended otherwise (a result, or a failure as it wound down)
        this.uncancel()
        raise ClientDisconnected()
    return result


async def _wait_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def get_meter(request: Request) -> Meter:
    return request.app.state.meter


Metering = Annotated[Meter, Depends(get_meter)]
