"""The metered request flows, written once for every modality endpoint.

An endpoint checks its request and turns it into a plan: the service's proto request, what it costs,
and how the service's answer becomes the HTTP answer. A flow does the rest:

- unary: reserve → call the service → store the outputs in media (an answer that carries them itself
  does not wait for that: edge.outputs) → commit; a retry with the same Idempotency-Key gets the stored
  response back (charged once);
- streaming: reserve → the first chunk (errors before it are still an HTTP status) → the events (those
  that arrive during a write go out together in the next) → commit before the stream ends; a failure
  mid-stream is an error event and costs nothing;
- progress, for long work whose price the service learns once it has started (a video's frame count,
  once probed) and answers as a stream of progress events then one result: the call → its first event
  → reserve the quote made from it → the events up to the result → store the outputs → commit the real
  charges → the answer, synchronously. A refused Reserve (402) cancels the call, which stops the
  service's work; an error before the first event is the call's (nothing is held yet).

A failure, a cancelled request or a client that goes away releases the hold, so nothing is charged.
Each flow marks the response with the modality's profile (`x-univence-profile: full|tiny`). An endpoint
is then a plan function and one call:

    AUDIO = Modality("audio", audio_pb2_grpc.VoiceServiceStub)

    @router.post("/v1/audio/speech", response_model=SpeechResponse, openapi_extra=json_body(SpeechRequest))
    async def create_speech(request: Request, serve: Serve) -> Response:
        body = await json_model(request, SpeechRequest)   # edge.inputs: read here, so the route stays lean
        plan = translate.plan_speech(body, await serve.published(AUDIO))
        return await serve.unary(AUDIO, "Synthesize", plan)

A progress plan says how its first event is priced and what its result answers and costs:

    plan = ProgressPlan(request, quote=lambda first: [per_frame(first.progress.total_steps)],
                        result=lambda event: event.result if event.HasField("result") else None,
                        answer=webm_answer)      # Answer(webm, [per_frame(result.frames_with_object)])
    return await serve.progress(VISION, "RemoveVideoBackground", plan)

With an Idempotency-Key the call still starts before Reserve (the price needs its first event), and a
replay cancels it right after that event.

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

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Generic, Protocol, TypeVar

from fastapi import Depends, Request, Response
from starlette.routing import BaseRoute

from edge.admission import Admission
from edge.auth import Caller, Principal
from edge.catalog import Published, ServiceCatalog
from edge.clients import ServiceClients, call, stream
from edge.errors import APIError, ClientDisconnected, service_unavailable
from edge.metering import Hold, Meter, until_disconnect
from edge.middleware import add_response_headers
from edge.outputs import BackgroundStores, Outputs
from edge.relay import Last, MeteredStream, Relay, next_event, until_result
from edge.routing import operations
from edge.tasks import started
from univence.accounts.v1 import accounts_pb2

PROFILE_HEADER = "x-univence-profile"
S = TypeVar("S")
R = TypeVar("R")


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
    # Headers that belong to the answer (a replay sends them too).
    headers: Mapping[str, str] = field(default_factory=dict)
    # The media id when `content` is a file stored in media: a replay reads it back from there.
    media_id: str = ""

    def response(self) -> Response:
        return Response(self.content, media_type=self.media_type, headers=dict(self.headers))

    async def settle(self, hold: Hold) -> None:
        """Commits what the answer charges; with nothing to charge the hold is left to be released."""
        if self.charges is None or self.charges:
            await hold.commit(self.charges, self.content, self.media_type, self.headers, self.media_id)


@dataclass(frozen=True)
class UnaryPlan(Generic[R]):
    """A checked unary request: the service's request, its price, and its answer once the service's
    result `R` is in (`answer` stores outputs through the Outputs it gets)."""

    request: Any
    charges: list[accounts_pb2.ChargeItem]
    answer: Callable[[R, Outputs], Awaitable[Answer]]
    overlap: bool = False
    # The API's names of the service request's fields, for the errors the service reports (see _api_param).
    params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ProgressPlan(Generic[R]):
    """A checked long request: the service's request; `quote`, what to reserve from the stream's first
    event; `result`, the result an event carries (None for progress); `answer`, the HTTP answer and the
    real charges once the result `R` is in (it stores outputs); `progress`, called with every event
    before the result (a job's progress; None: nothing to report)."""

    request: Any
    quote: Callable[[Any], list[accounts_pb2.ChargeItem]]
    result: Callable[[Any], R | None]
    answer: Callable[[R, Outputs], Awaitable[Answer]]
    progress: Callable[[Any], Awaitable[None]] | None = None
    params: Mapping[str, str] = field(default_factory=dict)


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
                 catalog: ServiceCatalog, admission: Admission | None = None,
                 background: BackgroundStores | None = None):
        self.request, self.principal = request, principal
        self.clients, self.meter, self.catalog = clients, meter, catalog
        self.admission = admission or Admission()
        self.outputs = Outputs(request, principal, clients, background)
        self._seen: dict[str, Published | None] = {}

    async def published(self, modality: Modality) -> Published:
        """What the modality's service publishes (its models and limits), which a plan checks the
        request against; before anything is reserved, 503 while the service does not answer (and for
        a modality this deployment does not route to)."""
        self.clients.require(modality.name)
        published = await self._published(modality.name)
        if published is None:
            raise service_unavailable(modality.name)
        return published

    async def unary(self, modality: Modality[S], method: str, plan: UnaryPlan) -> Response:
        """Reserve → `method` on the modality's service → plan.answer (stores outputs) → commit."""
        rpc = getattr(self.clients.modality(modality.name, modality.stub), method)
        await self.mark_profile(modality)
        leave = await self._admit(modality)

        async def run() -> Any:
            began = time.perf_counter()
            try:
                return await call(modality.name, rpc, plan.request, timeout=self.clients.timeout)
            finally:
                self._timed(modality, began)

        early = started(run()) if self._overlaps(plan.overlap) else None
        try:
            return await self._held(plan.charges, lambda: early if early is not None else run(), plan.answer,
                                    plan.params)
        finally:
            leave()
            if early is not None:
                early.cancel()  # refused (or replayed) while it ran: the work stops

    async def progress(self, modality: Modality[S], method: str, plan: ProgressPlan) -> Response:
        """`method` (a progress stream) → its first event → reserve plan.quote(first) → the events up to
        the result → plan.answer (stores outputs) → commit the real charges → the answer."""
        rpc = getattr(self.clients.modality(modality.name, modality.stub), method)
        await self.mark_profile(modality)
        leave = await self._admit(modality)
        events = stream(modality.name, rpc, plan.request, timeout=self.clients.timeout)

        async def result(first: Any) -> Any:
            try:
                return await until_result(events, plan.result, modality.name, plan.progress, first)
            finally:
                self._timed(modality, events.started)

        try:
            # Errors before the first event (an input the service refuses once it looks) are the call's own.
            with _api_names(plan.params):
                first = await until_disconnect(self.request, next_event(events, modality.name))
            return await self._held(plan.quote(first), lambda: result(first), plan.answer, plan.params)
        finally:
            await events.aclose()  # refused, replayed, failed or gone: the call is cancelled, its work stops
            leave()

    async def _held(self, charges: list[accounts_pb2.ChargeItem], work: Callable[[], Awaitable[R]],
                    answer: Callable[[R, Outputs], Awaitable[Answer]], params: Mapping[str, str]) -> Response:
        """Reserve `charges` → the result of `work` (cancelled if the client leaves) → `answer` (stores
        outputs) → commit what it charges; any failure releases the hold. Unary and progress end so."""
        with _api_names(params):
            async with self.meter.hold(self.request, self.principal, charges) as hold:
                if hold.replay is not None:
                    return hold.replay
                done = await answer(await until_disconnect(self.request, work()), self.outputs)
                await done.settle(hold)
        return done.response()

    async def streaming(self, modality: Modality[S], method: str, plan: StreamPlan) -> Response:
        """Reserve → the first chunk of `method` → the encoded events → commit before the end."""
        rpc = getattr(self.clients.modality(modality.name, modality.stub), method)
        await self.mark_profile(modality)
        leave = await self._admit(modality)
        encoder = plan.encoder

        def start_call() -> Relay:
            # The relay reads the call's chunks from its start (edge.relay).
            return Relay(stream(modality.name, rpc, plan.request, timeout=self.clients.timeout), encoder.event,
                         modality.name)

        # Overlap: the call starts now and the service works while the hold is reserved (its first chunk is
        # read meanwhile, and waits in the relay); otherwise it starts once the hold is granted.
        early = start_call() if self._overlaps(plan.overlap) else None

        async def close(relay: Relay | None) -> None:
            if relay is not None:
                await relay.aclose()
            leave()

        try:
            hold = await self.meter.acquire(self.request, self.principal, plan.charges)
        except BaseException:
            await close(early)
            raise
        if hold.replay is not None:
            await close(early)
            return hold.replay
        relay = early if early is not None else start_call()
        try:
            # The first chunk comes once the request was accepted and the work started: errors before
            # it (context too long, bad image, queue full) are still an HTTP status, not a broken stream.
            await until_disconnect(self.request, relay.started())
            self._timed(modality, relay.chunks.started)
        except BaseException as exc:
            await close(relay)
            await self.meter.settle(hold, exc)
            raise
        failure: BaseException | None = None

        async def events() -> AsyncIterator[bytes]:
            nonlocal failure
            try:
                async for batch in relay:
                    yield batch
            except APIError as exc:  # the service failed mid-stream: say so in the stream, charge nothing
                failure = exc
                yield Last(encoder.error(exc))
                return
            await hold.commit(content_type=encoder.media_type)
            yield Last(encoder.end())

        async def finish() -> None:
            await body.aclose()
            await relay.aclose()  # a stream cut short: its reader stops, and the call is cancelled
            leave()
            # Not settled and no failure seen: the client went away (or the events never ran).
            await self.meter.settle(hold, failure or (None if hold.settled else ClientDisconnected()))

        body = events()
        return MeteredStream(body, finish, encoder.media_type)

    async def _published(self, name: str) -> Published | None:
        """What the service publishes, looked up once per request (a flow reads it three times)."""
        if name not in self._seen:
            self._seen[name] = await self.catalog.published(name)
        return self._seen[name]

    async def _admit(self, modality: Modality) -> Callable[[], None]:
        """A place among this edge's calls in flight to the modality's queue, taken before Reserve: 429
        when its published capacity is reached (edge.admission); returns the function that gives it up."""
        published = await self._published(modality.name)
        return self.admission.enter(modality.name, published.limits if published is not None else None)

    def _overlaps(self, allowed: bool) -> bool:
        return allowed and self.principal.premium and not self.request.headers.get("idempotency-key")

    def _timed(self, modality: Modality, started: float) -> None:
        """The service's time since `started` on the response (add_upstream_timing): the call to its answer
        (a stream: to its first chunk, which the head leaves with; a progress stream: to its result)."""
        add_upstream_timing(self.request, modality, (time.perf_counter() - started) * 1e3)

    async def mark_profile(self, modality: Modality) -> None:
        """`x-univence-profile: full|tiny` on the response (tiny models give noise, and say so)."""
        published = await self._published(modality.name)
        profile = published.info.profile if published is not None else ""
        if profile:
            add_response_headers(self.request, {PROFILE_HEADER: profile})


def add_upstream_timing(request: Request, modality: Modality, took_ms: float) -> None:
    """`Server-Timing: upstream;desc="<service>";dur=<ms>` on the response: how long the service took. What
    the edge added is the client's time less this, whatever the model took or how long it queued
    (benchmarks/edge_overhead.py reads it so). A replay has none: no model ran for it."""
    add_response_headers(request, {"server-timing": f'upstream;desc="{modality.name}";dur={took_ms:.3f}'})


@contextlib.contextmanager
def _api_names(params: Mapping[str, str]) -> Iterator[None]:
    """An error from the service names the field as the API calls it: `params` maps the service request's
    field names (`video`, or `points` for `points[2]`) to the API's (`file`, `point_coords`)."""
    try:
        yield
    except APIError as error:
        if error.param:
            error.param = params.get(error.param) or params.get(error.param.partition("[")[0]) or error.param
        raise


async def get_serving(request: Request, principal: Caller) -> Serving:
    # The process's objects straight from app.state (what the Clients, Metering and Catalog dependencies
    # read): three fewer dependencies to solve on every metered request.
    state = request.app.state
    return Serving(request, principal, state.clients, state.meter, state.catalog, state.admission,
                   state.background_stores)


# The headers a model endpoint's answer carries, as its OpenAPI operation documents them (document_answers).
ANSWER_HEADERS = {
    PROFILE_HEADER.title(): {"description": "`full`, or `tiny`: random weights, the output is noise",
                             "schema": {"type": "string", "enum": ["full", "tiny"]}},
    "Server-Timing": {"description": 'The service\'s own time, `upstream;desc="<service>";dur=<ms>` (a stream\'s '
                                     "to its first chunk): the rest of the wait is the network and the edge. Not "
                                     "on a replayed answer, or one no model ran for (a job just created).",
                      "schema": {"type": "string"}},
}


def document_answers(document: dict, routes: Iterable[BaseRoute]) -> None:
    """Adds ANSWER_HEADERS to the success answer of every operation whose endpoint runs these flows."""
    for operation in operations(document, routes, get_serving):
        success = operation.get("responses", {}).get("200")
        if success is not None:
            success.setdefault("headers", {}).update(ANSWER_HEADERS)


# The metered flows of one request, for a modality endpoint: `async def endpoint(body: ..., serve: Serve)`.
Serve = Annotated[Serving, Depends(get_serving)]
