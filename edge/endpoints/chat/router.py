"""POST /v1/chat/completions: premium only, whole or streamed as server-sent events.

Metering (edge.serving): a hold for OPERATION_CHAT_COMPLETION (the accounts service refuses non-premium
callers with PREMIUM_REQUIRED; premium pays nothing) is committed when the completion, or the stream,
has ended, and released when anything fails or the client goes away. A client that disconnects
mid-stream cancels the gRPC stream, which stops the generation on the LLM service. For a caller known
as premium, without an Idempotency-Key, the generation starts while the hold is reserved.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from edge.endpoints.chat import translate
from edge.endpoints.chat.protocol import ChatCompletion, ChatCompletionRequest
from edge.endpoints.chat.translate import LLM
from edge.errors import COMMON_ERRORS, error_responses
from edge.inputs import json_body, read_json_object
from edge.routing import LeanRoute
from edge.serving import Serve, StreamPlan

router = APIRouter(tags=["chat"], route_class=LeanRoute, responses=COMMON_ERRORS)


SSE_RESPONSE = {"description": "A completion, or with `stream: true` a `text/event-stream` of "
                               "`chat.completion.chunk` events ending with `data: [DONE]`",
                "content": {"text/event-stream": {"schema": {"type": "string"}}}}


@router.post("/v1/chat/completions", summary="Chat completion with vision (premium only)",
             response_model=ChatCompletion, openapi_extra=json_body(ChatCompletionRequest),
             responses={200: SSE_RESPONSE, **error_responses(400, 401, 403, 413, 429, 500, 503)})
async def create_chat_completion(request: Request, serve: Serve) -> Response:
    body = read_json_object(await request.body())
    plan = translate.plan_completion(body, await serve.published(LLM))
    if isinstance(plan, StreamPlan):
        return await serve.streaming(LLM, "StreamChatCompletion", plan)
    return await serve.unary(LLM, "CreateChatCompletion", plan)
