"""The metered request flows, written once for every modality endpoint.

An endpoint checks its request and turns it into a plan: the service's proto request, what it costs,
and how the service's answer becomes the HTTP answer. A flow does the rest:

- unary: reserve → call the service → store the outputs in media → commit; a retry with the same
  Idempotency-Key gets the stored response back (charged once);
- streaming: reserve → the first chunk (errors before it are still an HTTP status) → the events →
  commit before the stream ends; a failure mid-stream is an error event and costs nothing.

A failure, a cancelled request or a client that goes away releases the hold, so nothing is charged.
Each flow marks the response with the modality's profile (`x-univence-profile: full|tiny`). An endpoint
is then a plan function and one call:

    AUDIO = Modality("audio", audio_pb2_grpc.VoiceServiceStub)

    @router.post("/v1/audio/speech", response_model=SpeechResponse)
    async def create_speech(body: SpeechRequest, serve: Serve) -> Response:
        plan = translate.plan_speech(body, await serve.published(AUDIO))
        return await serve.unary(AUDIO, "Synthesize", plan)

The plan checks the request against what the service publishes (`serve.published`: its models by name,
with their sizes and bounds, and its limits), so a request the service would refuse is refused before
anything is held; while the service has not said what it serves, the request is a 503.

Overlap (`plan.overlap`, chat): for a caller the authenticator knows as premium, without an
Idempotency-Key, the call starts while the hold is reserved (the Reserve answer still decides: a
refusal cancels the work and is the response), so the first token does not wait for Reserve. Anyone
else, and any request with an Idempotency-Key (whose replay must not run the model), reserves first.
The commit stays before the response ends: committed beside it, it collided with the next request's
Reserve in the accounts store (SQLite serializes writers by polling with sleeps) and cost more than it
saved.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Generic, Protocol, TypeVar

from fastapi import Depends, Request, Response
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from edge.auth import Caller, Principal
from edge.catalog import Published, ServiceCatalog
from edge.clients import ServiceClients, call, stream
from edge.errors import APIError, ClientDisconnected, service_unavailable
from edge.metering import Meter, until_disconnect
from edge.middleware import add_response_headers
from edge.outputs import Outputs
from univence.accounts.v1 import accounts_pb2

PROFILE_HEADER = "x-univence-profile"
S = TypeVar("S")
R = TypeVar("R")
T = TypeVar("T")


@dataclass(frozen=True)
class Modality(Generic[S]):
    """A modality service as its endpoints call it: the registry's name and the generated stub class."""

    name: str
    stub: type[S]


@dataclass(frozen=True)
class Answer:
    """The HTTP answer made from the service's result, and what to charge for it."""

    content: bytes
    # None: the quote reserved; a list: what was really done ([]: nothing, so the hold is released).
    charges: list[accounts_pb2.ChargeItem] | None = None
    media_type: str = "application/json"


@dataclass(frozen=True)
class UnaryPlan(Generic[R]):
    """A checked unary request: the service's request, its price, and its answer once the service's
    result `R` is in (`answer` stores outputs through the Outputs it gets)."""

    request: Any
    charges: list[accounts_pb2.ChargeItem]
    answer: Callable[[R, Outputs], Awaitable[Answer]]
    overlap: bool = False


class StreamEncoder(Protocol):
    """Service chunks → the bytes of the HTTP stream (server-sent events for chat)."""

    media_type: str

    def event(self, chunk: Any) -> bytes | None:
        """The event for a chunk; None sends nothing for it."""

    def error(self, error: APIError) -> bytes:
        """The event that reports a failure mid-stream (the stream then ends, uncharged)."""

    def end(self) -> bytes:
        """The last event of a complete stream."""


@dataclass(frozen=True)
class StreamPlan:
    """A checked streaming request: the service's request, its price and the stream's encoder."""

    request: Any
    charges: list[accounts_pb2.ChargeItem]
    encoder: StreamEncoder
    overlap: bool = False


class Serving:
    """The flows for one request (FastAPI builds one per request: `serve: Serve`)."""

    def __init__(self, request: Request, principal: Principal, clients: ServiceClients, meter: Meter,
                 catalog: ServiceCatalog):
        self.request, self.principal = request, principal
        self.clients, self.meter, self.catalog = clients, meter, catalog
        self.outputs = Outputs(request, principal, clients)

    async def published(self, modality: Modality) -> Published:
        """What the modality's service publishes (its models and limits), which a plan checks the
        request against; before anything is reserved, 503 while the service does not answer (and for
        a modality this deployment does not route to)."""
        self.clients.require(modality.name)
        published = await self.catalog.published(modality.name)
        if published is None:
            raise service_unavailable(modality.name)
        return published

    async def unary(self, modality: Modality[S], method: str, plan: UnaryPlan) -> Response:
        """Reserve → `method` on the modality's service → plan.answer (stores outputs) → commit."""
        rpc = getattr(self.clients.modality(modality.name, modality.stub), method)
        await self._mark_profile(modality)

        def run() -> Awaitable[Any]:
            return call(modality.name, rpc, plan.request, timeout=self.clients.timeout)

        early = _started(run()) if self._overlaps(plan.overlap) else None
        try:
            async with self.meter.hold(self.request, self.principal, plan.charges) as hold:
                if hold.replay is not None:
                    return hold.replay
                result = await until_disconnect(self.request, early if early is not None else run())
                answer = await plan.answer(result, self.outputs)
                if answer.charges is None or answer.charges:
                    await hold.commit(answer.charges, answer.content, answer.media_type)
        finally:
            if early is not None:
                early.cancel()  # refused (or replayed) while it ran: the work stops
        return Response(answer.content, media_type=answer.media_type)

    async def streaming(self, modality: Modality[S], method: str, plan: StreamPlan) -> Response:
        """Reserve → the first chunk of `method` → the encoded events → commit before the end."""
        rpc = getattr(self.clients.modality(modality.name, modality.stub), method)
        await self._mark_profile(modality)
        chunks = stream(modality.name, rpc, plan.request, timeout=self.clients.timeout)
        early = _started(anext(chunks)) if self._overlaps(plan.overlap) else None

        async def close() -> None:
            if early is not None and not early.done():
                early.cancel()
                await asyncio.wait({early})
            await chunks.aclose()

        try:
            hold = await self.meter.reserve(self.request, self.principal, plan.charges)
        except BaseException:
            await close()
            raise
        if hold.replay is not None:
            await close()
            return hold.replay
        try:
            # The first chunk comes once the request was accepted and the work started: errors before
            # it (context too long, bad image, queue full) are still an HTTP status, not a broken stream.
            first = await until_disconnect(self.request, early if early is not None else anext(chunks))
        except BaseException as exc:
            await close()
            await self.meter.settle(hold, exc)
            raise
        encoder = plan.encoder
        failure: BaseException | None = None

        async def events() -> AsyncIterator[bytes]:
            nonlocal failure
            try:
                if (event := encoder.event(first)) is not None:
                    yield event
                async for chunk in chunks:
                    if (event := encoder.event(chunk)) is not None:
                        yield event
            except APIError as exc:  # the service failed mid-stream: say so in the stream, charge nothing
                failure = exc
                yield encoder.error(exc)
                return
            await hold.commit(content_type=encoder.media_type)
            yield encoder.end()

        async def finish() -> None:
            await chunks.aclose()
            # Not settled and no failure seen: the client went away (or the events never ran).
            await self.meter.settle(hold, failure or (None if hold.settled else ClientDisconnected()))

        return _MeteredStream(events(), finish, encoder.media_type)

    def _overlaps(self, allowed: bool) -> bool:
        return allowed and self.principal.premium and not self.request.headers.get("idempotency-key")

    async def _mark_profile(self, modality: Modality) -> None:
        """`x-univence-profile: full|tiny` on the response (tiny models give noise, and say so)."""
        profile = await self.catalog.profile(modality.name)
        if profile:
            add_response_headers(self.request, {PROFILE_HEADER: profile})


def _started(work: Awaitable[T]) -> asyncio.Task[T]:
    """`work` running already; a failure nobody awaits any more (the hold was refused) is not logged."""
    task = asyncio.ensure_future(work)
    task.add_done_callback(lambda t: t.cancelled() or t.exception())
    return task


class _MeteredStream(StreamingResponse):
    """A StreamingResponse that settles its hold however the stream ends: committed at the end of the
    events, released when the client went away or the events never ran."""

    def __init__(self, content: AsyncIterator[bytes], finish: Callable[[], Awaitable[None]], media_type: str):
        super().__init__(content, media_type=media_type, headers={"Cache-Control": "no-cache",
                                                                  "X-Accel-Buffering": "no"})
        self._finish = finish

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._finish()


async def get_serving(request: Request, principal: Caller) -> Serving:
    # The process's objects straight from app.state (what the Clients, Metering and Catalog dependencies
    # read): three fewer dependencies to solve on every metered request.
    state = request.app.state
    return Serving(request, principal, state.clients, state.meter, state.catalog)


# The metered flows of one request, for a modality endpoint: `async def endpoint(body: ..., serve: Serve)`.
Serve = Annotated[Serving, Depends(get_serving)]
