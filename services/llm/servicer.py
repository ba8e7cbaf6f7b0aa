"""The ChatService servicer: checks the request, lets the backend count the prompt (a request that
cannot fit the context is refused before any generation), then generates whole or as chunks.

A stream sends, in order: one chunk with an empty delta per choice once the first token is out (the
edge turns it into the `role: assistant` chunk), content deltas, each choice's last chunk with its
finish_reason, and, when include_usage is set, a final chunk with no choices and the usage. When the
caller cancels, the backend generator is closed, which stops the model's work for that request.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator

from services.llm.backends.base import (
    Backend,
    ChoiceFinished,
    Prompt,
    ReasoningSplitter,
    SamplingOptions,
    TokenLogprob,
    TokenLogprobs,
)
from services.llm.config import LlmSettings
from services.llm.messages import parse_messages, parse_options
from univence.llm.v1 import llm_pb2, llm_pb2_grpc

FINISH = {"stop": llm_pb2.FINISH_REASON_STOP, "length": llm_pb2.FINISH_REASON_LENGTH}


def completion_id() -> str:
    return "chatcmpl-" + secrets.token_urlsafe(18).replace("-", "x").replace("_", "y")


class ChatServicer(llm_pb2_grpc.ChatServiceServicer):
    backend: Backend

    def __init__(self, settings: LlmSettings):
        self.settings = settings
        self.served_model = settings.served_model_name or settings.model

    def attach(self, backend: Backend, served_model: str) -> None:
        self.backend = backend
        self.served_model = served_model

    async def _prepare(self, request: llm_pb2.CreateChatCompletionRequest) -> tuple[Prompt, SamplingOptions]:
        options = parse_options(request, self.settings)
        messages = await asyncio.to_thread(parse_messages, request, self.settings)
        prompt = await self.backend.prepare(messages, options)
        return prompt, options

    async def CreateChatCompletion(self, request: llm_pb2.CreateChatCompletionRequest,
                                   context) -> llm_pb2.CreateChatCompletionResponse:
        created = int(time.time())
        prompt, options = await self._prepare(request)
        results = await self.backend.generate(prompt, options)
        choices = []
        for result in results:
            reasoning, content = "", result.text
            if self.settings.enable_thinking:
                splitter = ReasoningSplitter()
                reasoning, content = splitter.feed(result.text)
                rest_reasoning, rest_content = splitter.flush()
                reasoning, content = reasoning + rest_reasoning, content + rest_content
            choices.append(llm_pb2.Choice(index=result.index, content=content, reasoning_content=reasoning,
                                          finish_reason=FINISH[result.reason],
                                          logprobs=_logprobs(result.logprobs)))
        completion_tokens = sum(r.completion_tokens for r in results)
        return llm_pb2.CreateChatCompletionResponse(
            id=completion_id(), model=self.served_model, created=created, choices=choices,
            usage=_usage(prompt.prompt_tokens, completion_tokens))

    async def StreamChatCompletion(self, request: llm_pb2.CreateChatCompletionRequest,
                                   context) -> AsyncIterator[llm_pb2.ChatCompletionChunk]:
        created = int(time.time())
        prompt, options = await self._prepare(request)
        chunk_id = completion_id()

        def chunk(**fields) -> llm_pb2.ChatCompletionChunk:
            return llm_pb2.ChatCompletionChunk(id=chunk_id, model=self.served_model, created=created, **fields)

        splitters = [ReasoningSplitter() for _ in range(options.n)] if self.settings.enable_thinking else None
        completion_tokens = 0
        events = self.backend.stream(prompt, options)
        started = False
        try:
            async for event in events:
                if not started:
                    started = True
                    yield chunk(choices=[llm_pb2.ChoiceDelta(index=i) for i in range(options.n)])
                if isinstance(event, TokenLogprobs):
                    yield chunk(choices=[llm_pb2.ChoiceDelta(index=event.index, logprobs=_logprobs(event.entries))])
                    continue
                if isinstance(event, ChoiceFinished):
                    completion_tokens += event.completion_tokens
                    delta = llm_pb2.ChoiceDelta(index=event.index, finish_reason=FINISH[event.reason])
                    if splitters is not None:
                        delta.reasoning_content, delta.content = splitters[event.index].flush()
                    yield chunk(choices=[delta])
                    continue
                reasoning, content = "", event.text
                if splitters is not None:
                    reasoning, content = splitters[event.index].feed(event.text)
                if reasoning or content:
                    yield chunk(choices=[llm_pb2.ChoiceDelta(index=event.index, content=content,
                                                             reasoning_content=reasoning)])
        finally:
            with contextlib.suppress(RuntimeError):  # already closed when it ran to its end
                await events.aclose()
        if request.include_usage:
            yield chunk(usage=_usage(prompt.prompt_tokens, completion_tokens))


def _logprobs(entries: list[TokenLogprob]) -> list[llm_pb2.TokenLogprob]:
    return [llm_pb2.TokenLogprob(token=e.token, logprob=e.logprob, bytes=e.bytes, top_logprobs=[
        llm_pb2.TopLogprob(token=t.token, logprob=t.logprob, bytes=t.bytes) for t in e.top]) for e in entries]


def _usage(prompt_tokens: int, completion_tokens: int) -> llm_pb2.Usage:
    return llm_pb2.Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                         total_tokens=prompt_tokens + completion_tokens)
