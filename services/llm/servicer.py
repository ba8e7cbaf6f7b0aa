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

from services.common.modality import ModalityServicer, Placement
from services.llm.backends.base import (
    Backend,
    ChoiceFinished,
    Prompt,
    ReasoningSplitter,
    SamplingOptions,
    TokenLogprob,
    TokenLogprobs,
)
from services.llm.catalog import served_name
from services.llm.config import LlmSettings
from services.llm.requests import ChatRequest, ToolUse, parse_messages, parse_options, parse_tools
from services.llm.tools import ToolCallOut, ToolCallParser
from univence.llm.v1 import llm_pb2, llm_pb2_grpc

FINISH = {"stop": llm_pb2.FINISH_REASON_STOP, "length": llm_pb2.FINISH_REASON_LENGTH}
THINK_CLOSED = "</think>\n\n"


class ChoiceText:
    """One choice's generated text made into the API's fields, across deltas: the reasoning apart (when
    the model thinks aloud) and the tool calls read out (when tools are in use)."""

    def __init__(self, thinking: bool, tools: ToolUse | None):
        forced = tools is not None and bool(tools.opening)  # the answer starts with a call: no reasoning
        self.splitter = ReasoningSplitter() if thinking and not forced else None
        self.parser = ToolCallParser(tools.tools, opening=tools.opening, parallel=tools.parallel) if tools else None

    def feed(self, text: str) -> tuple[str, str, list[ToolCallOut]]:
        """(reasoning, content, tool calls completed) in this delta."""
        reasoning, content = self.splitter.feed(text) if self.splitter else ("", text)
        if self.parser is None:
            return reasoning, content, []
        content, calls = self.parser.feed(content)
        return reasoning, content, calls

    def flush(self) -> tuple[str, str, list[ToolCallOut]]:
        """What was held back, at the end of the choice."""
        reasoning, content = self.splitter.flush() if self.splitter else ("", "")
        if self.parser is None:
            return reasoning, content, []
        content, calls = self.parser.feed(content)
        rest, more = self.parser.flush()
        return reasoning, content + rest, calls + more

    def finish_reason(self, reason: str) -> int:
        if self.parser is not None and self.parser.calls and reason == "stop":
            return llm_pb2.FINISH_REASON_TOOL_CALLS
        return FINISH[reason]


def completion_id() -> str:
    return "chatcmpl-" + secrets.token_urlsafe(18).replace("-", "x").replace("_", "y")


class ChatServicer(ModalityServicer[Backend], llm_pb2_grpc.ChatServiceServicer):
    """Serves once `attach` has given it the started backend (its engine)."""

    settings: LlmSettings
    served_model: str

    @property
    def backend(self) -> Backend:
        return self.engine

    def attach(self, engine: Backend, placement: Placement) -> None:
        self.served_model = served_name(self.settings, placement.profile)
        super().attach(engine, placement)

    async def _prepare(self, request: ChatRequest
                       ) -> tuple[Prompt, SamplingOptions, ToolUse | None]:
        options = parse_options(request, self.settings)
        tools = parse_tools(request, options)
        if tools is not None and tools.opening and self.settings.enable_thinking:
            options.opening = THINK_CLOSED + options.opening  # the template left a <think> block open
        messages = await asyncio.to_thread(parse_messages, request, self.settings)
        prompt = await self.backend.prepare(messages, options)
        return prompt, options, tools

    def _text(self, tools: ToolUse | None) -> ChoiceText:
        return ChoiceText(self.settings.enable_thinking, tools)

    async def CreateChatCompletion(self, request: llm_pb2.CreateChatCompletionRequest,
                                   context) -> llm_pb2.CreateChatCompletionResponse:
        created = int(time.time())
        prompt, options, tools = await self._prepare(request)
        results = await self.backend.generate(prompt, options)
        choices = []
        for result in results:
            text = self._text(tools)
            reasoning, content, calls = text.feed(result.text)
            more_reasoning, more_content, more_calls = text.flush()
            choices.append(llm_pb2.Choice(index=result.index, content=content + more_content,
                                          reasoning_content=reasoning + more_reasoning,
                                          finish_reason=text.finish_reason(result.reason),
                                          logprobs=_logprobs(result.logprobs),
                                          tool_calls=_tool_calls(calls + more_calls)))
        completion_tokens = sum(r.completion_tokens for r in results)
        return llm_pb2.CreateChatCompletionResponse(
            id=completion_id(), model=self.served_model, created=created, choices=choices,
            usage=_usage(prompt.prompt_tokens, completion_tokens))

    async def StreamChatCompletion(self, request: llm_pb2.StreamChatCompletionRequest,
                                   context) -> AsyncIterator[llm_pb2.StreamChatCompletionResponse]:
        created = int(time.time())
        prompt, options, tools = await self._prepare(request)
        chunk_id = completion_id()

        def chunk(**fields) -> llm_pb2.StreamChatCompletionResponse:
            return llm_pb2.StreamChatCompletionResponse(id=chunk_id, model=self.served_model, created=created, **fields)

        texts = [self._text(tools) for _ in range(options.n)]
        calls_sent = [0] * options.n

        def delta(index: int, reasoning: str, content: str, calls: list[ToolCallOut], **fields) -> llm_pb2.ChoiceDelta:
            out = llm_pb2.ChoiceDelta(index=index, content=content, reasoning_content=reasoning,
                                      tool_calls=_tool_calls(calls), tool_call_index=calls_sent[index], **fields)
            calls_sent[index] += len(calls)
            return out

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
                text = texts[event.index]
                if isinstance(event, ChoiceFinished):
                    completion_tokens += event.completion_tokens
                    yield chunk(choices=[delta(event.index, *text.flush(),
                                               finish_reason=text.finish_reason(event.reason))])
                    continue
                reasoning, content, calls = text.feed(event.text)
                if reasoning or content or calls:
                    yield chunk(choices=[delta(event.index, reasoning, content, calls)])
        finally:
            with contextlib.suppress(RuntimeError):  # already closed when it ran to its end
                await events.aclose()
        if request.include_usage:
            yield chunk(usage=_usage(prompt.prompt_tokens, completion_tokens))


def _tool_calls(calls: list[ToolCallOut]) -> list[llm_pb2.ToolCall]:
    return [llm_pb2.ToolCall(id=c.id, name=c.name, arguments=c.arguments) for c in calls]


def _logprobs(entries: list[TokenLogprob]) -> list[llm_pb2.TokenLogprob]:
    return [llm_pb2.TokenLogprob(token=e.token, logprob=e.logprob, bytes=e.bytes, top_logprobs=[
        llm_pb2.TopLogprob(token=t.token, logprob=t.logprob, bytes=t.bytes) for t in e.top]) for e in entries]


def _usage(prompt_tokens: int, completion_tokens: int) -> llm_pb2.Usage:
    return llm_pb2.Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                         total_tokens=prompt_tokens + completion_tokens)
