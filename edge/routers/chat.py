"""POST /v1/chat/completions: premium only, whole or streamed as server-sent events.

Metering: a hold for OPERATION_CHAT_COMPLETION (the accounts service refuses non-premium callers with
PREMIUM_REQUIRED; premium pays nothing) is committed when the completion, or the stream, has ended,
and released when anything fails or the client goes away. A client that disconnects mid-stream
cancels the gRPC stream, which stops the generation on the LLM service.

Round trips: for a caller the authenticator knows as premium, without an Idempotency-Key, the LLM
call starts while the hold is reserved (the Reserve answer still decides: a refusal cancels the
generation and is the response), so the first token does not wait for Reserve. Anyone else, and any
request with an Idempotency-Key (whose replay must not run the model), reserves first. The commit
stays before the response ends: committed beside it, it collided with the next request's Reserve in
the accounts store (SQLite serializes writers by polling with sleeps) and cost more than it saved.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from edge.auth import Principal, require_principal
from edge.clients import call, stream
from edge.errors import APIError
from edge.metering import ClientDisconnected, Meter, until_disconnect
from edge.outputs import mark_profile
from edge.protocol.chat import (
    DONE,
    ChatCompletion,
    ChatCompletionRequest,
    ChunkWriter,
    completion_dict,
    parse_request,
    sse,
)
from edge.protocol.common import COMMON_ERRORS, error_responses
from univence.accounts.v1 import accounts_pb2
from univence.llm.v1 import llm_pb2_grpc

router = APIRouter(tags=["chat"], responses=COMMON_ERRORS)
T = TypeVar("T")


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """The request model's JSON schema with its $defs inlined (the route reads the body itself, so the
    schema is given to OpenAPI by hand)."""
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    return resolve(schema)


REQUEST_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": _inline_refs(ChatCompletionRequest.model_json_schema(by_alias=True))}}}}
SSE_RESPONSE = {"description": "A completion, or with `stream: true` a `text/event-stream` of "
                               "`chat.completion.chunk` events ending with `data: [DONE]`",
                "content": {"text/event-stream": {"schema": {"type": "string"}}}}
ITEMS = [accounts_pb2.ChargeItem(operation=accounts_pb2.OPERATION_CHAT_COMPLETION)]


async def read_json(request: Request) -> Any:
    body = await request.body()
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise APIError(400, "The request body is not valid JSON", code="invalid_json") from None


@router.post("/v1/chat/completions", summary="Chat completion with vision (premium only)",
             response_model=ChatCompletion, openapi_extra=REQUEST_BODY,
             responses={200: SSE_RESPONSE, **error_responses(400, 401, 403, 413, 429, 500, 503)})
async def create_chat_completion(request: Request, principal: Principal = Depends(require_principal)):  # noqa: B008
    grpc_request, streaming, include_usage = parse_request(await read_json(request))
    clients = request.app.state.clients
    stub = llm_pb2_grpc.ChatServiceStub(clients.modality_channel("llm"))
    timeout = clients.settings.rpc_timeout_seconds
    await mark_profile(request, "llm")
    meter: Meter = request.app.state.meter
    eager = principal.premium and not request.headers.get("idempotency-key")
    if streaming:
        return await _stream(request, principal, meter, stub, grpc_request, include_usage, timeout, eager)
    work = _started(call("llm", stub.CreateChatCompletion, grpc_request, timeout=timeout)) if eager else None
    try:
        async with meter.hold(request, principal, ITEMS) as hold:
            if hold.replay is not None:
                return hold.replay
            response = await until_disconnect(request, work or call("llm", stub.CreateChatCompletion,
                                                                    grpc_request, timeout=timeout))
            content = json.dumps(completion_dict(response, logprobs=grpc_request.logprobs), ensure_ascii=False).encode()
            await hold.commit(response_body=content)
            return Response(content, media_type="application/json")
    finally:
        if work is not None:
            work.cancel()  # refused (or replayed) while it ran: the generation stops


def _started(work: Awaitable[T]) -> asyncio.Task[T]:
    """`work` running already; a failure nobody awaits any more (the hold was refused) is not logged."""
    task = asyncio.ensure_future(work)
    task.add_done_callback(lambda t: t.cancelled() or t.exception())
    return task


async def _stream(request: Request, principal: Principal, meter: Meter, stub: llm_pb2_grpc.ChatServiceStub,
                  grpc_request, include_usage: bool, timeout: float, eager: bool) -> Response:
    chunks = stream("llm", stub.StreamChatCompletion, grpc_request, timeout=timeout)
    early = _started(anext(chunks)) if eager else None

    async def close() -> None:
        if early is not None and not early.done():
            early.cancel()
            await asyncio.wait({early})
        await chunks.aclose()

    try:
        hold = await meter.reserve(request, principal, ITEMS)
    except BaseException:
        await close()
        raise
    if hold.replay is not None:
        await close()
        return hold.replay
    try:
        # The first chunk comes once the request was accepted and generation started: errors before it
        # (context too long, bad image, queue full) are still an HTTP status, not a broken stream.
        first = await until_disconnect(request, early or anext(chunks))
    except BaseException as exc:
        await close()
        await meter.settle(hold, exc)
        raise
    writer = ChunkWriter(include_usage)
    failure: BaseException | None = None

    async def events() -> AsyncIterator[bytes]:
        nonlocal failure
        try:
            if (event := writer.event(first)) is not None:
                yield event
            async for chunk in chunks:
                if (event := writer.event(chunk)) is not None:
                    yield event
        except APIError as exc:  # the service failed mid-stream: say so in the stream, charge nothing
            failure = exc
            yield sse({"error": {"message": exc.message, "type": exc.type, "param": exc.param, "code": exc.code}})
            return
        await hold.commit(content_type="text/event-stream")
        yield DONE

    async def finish() -> None:
        await chunks.aclose()
        # Not settled and no failure seen: the client went away (or the events never ran).
        await meter.settle(hold, failure or (None if hold.settled else ClientDisconnected()))

    return _MeteredStream(events(), finish)


class _MeteredStream(StreamingResponse):
    """A StreamingResponse that settles its hold however the stream ends: committed at the end of the
    events, released when the client went away or the events never ran."""

    def __init__(self, content: AsyncIterator[bytes], finish):
        super().__init__(content, media_type="text/event-stream",
                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._finish = finish

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._finish()
