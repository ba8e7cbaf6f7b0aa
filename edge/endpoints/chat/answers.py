"""The LLM service's completion and chunks → OpenAI's `chat.completion` and the `chat.completion.chunk`
server-sent events (for POST /v1/chat/completions; its request side: edge.endpoints.chat.translate)."""

from __future__ import annotations

import json
from typing import Any

from edge.errors import APIError
from univence.llm.v1 import llm_pb2

FINISH = {llm_pb2.FINISH_REASON_STOP: "stop", llm_pb2.FINISH_REASON_LENGTH: "length",
          llm_pb2.FINISH_REASON_TOOL_CALLS: "tool_calls"}


def tool_call_dict(call: llm_pb2.ToolCall) -> dict[str, Any]:
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}


def usage_dict(usage: llm_pb2.Usage) -> dict[str, int]:
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens}


def logprobs_dict(entries) -> dict[str, Any]:
    """OpenAI's `logprobs` of a choice: `content` holds one entry per token."""
    return {"content": [{"token": e.token, "logprob": e.logprob, "bytes": list(e.bytes), "top_logprobs": [
        {"token": t.token, "logprob": t.logprob, "bytes": list(t.bytes)} for t in e.top_logprobs]}
        for e in entries], "refusal": None}


def completion_dict(response: llm_pb2.CreateChatCompletionResponse, *, logprobs: bool = False) -> dict[str, Any]:
    """The `chat.completion` object; `logprobs`: the request asked for them (so each choice has them)."""
    choices = []
    for choice in response.choices:
        message: dict[str, Any] = {"role": "assistant", "content": choice.content}
        if choice.reasoning_content:
            message["reasoning_content"] = choice.reasoning_content
        if choice.tool_calls:
            message["tool_calls"] = [tool_call_dict(call) for call in choice.tool_calls]
            message["content"] = choice.content or None
        choices.append({"index": choice.index, "message": message,
                        "logprobs": logprobs_dict(choice.logprobs) if logprobs else None,
                        "finish_reason": FINISH.get(choice.finish_reason)})
    return {"id": response.id, "object": "chat.completion", "created": response.created, "model": response.model,
            "choices": choices, "usage": usage_dict(response.usage)}


class ChunkWriter:
    """Service chunks → OpenAI `chat.completion.chunk` events (an edge.serving StreamEncoder). The
    service's first chunk (empty deltas) becomes the `role: assistant` chunk; its usage chunk goes out
    only when the client asked for it. A failure mid-stream is an `error` event; a complete stream
    ends with `data: [DONE]`.

    Most events of a stream are one choice's next piece of text: those, and a first event that only gives
    the role, are made from bytes kept for the stream (its id, created, model) and the text's JSON, with no
    dict per event (`_text_event`, checked against the general path, `_event`, by
    tests/edge/test_chat_events.py)."""

    media_type = "text/event-stream"

    def __init__(self, include_usage: bool):
        self.include_usage = include_usage
        self.started = False
        self._head: tuple[str, int, str] | None = None  # (id, created, model) that `_prefix` was made for
        self._prefix = b""
        usage = b',"usage":null' if include_usage else b""
        self._suffix = b'},"logprobs":null,"finish_reason":null}]' + usage + b"}\n\n"

    def event(self, chunk: llm_pb2.StreamChatCompletionResponse) -> bytes | None:
        if len(chunk.choices) == 1:
            delta = chunk.choices[0]
            if not (delta.reasoning_content or delta.tool_calls or delta.logprobs or delta.finish_reason):
                if not self.started:  # the stream's first event: the role, and the text if any
                    self.started = True
                    return self._text_event(chunk, delta, b'"role":"assistant",')
                if delta.content:
                    return self._text_event(chunk, delta)
        return self._event(chunk)

    def _text_event(self, chunk: llm_pb2.StreamChatCompletionResponse, delta: llm_pb2.ChoiceDelta,
                    role: bytes = b"") -> bytes:
        """The event of a delta that only carries text (and the role, in the first): what `_event` makes
        of it, from kept bytes."""
        head = (chunk.id, chunk.created, chunk.model)
        if head != self._head:
            self._head = head
            self._prefix = (b'data: {"id":' + _JSON.encode(chunk.id).encode() + b',"object":"chat.completion.chunk"'
                            b',"created":' + str(chunk.created).encode() + b',"model":'
                            + _JSON.encode(chunk.model).encode() + b',"choices":[{"index":')
        return (self._prefix + str(delta.index).encode() + b',"delta":{' + role + b'"content":'
                + _JSON.encode(delta.content).encode() + self._suffix)

    def _event(self, chunk: llm_pb2.StreamChatCompletionResponse) -> bytes | None:
        head: dict[str, Any] = {"id": chunk.id, "object": "chat.completion.chunk", "created": chunk.created,
                                "model": chunk.model}
        if not chunk.choices:
            if not (self.include_usage and chunk.HasField("usage")):
                return None
            return sse({**head, "choices": [], "usage": usage_dict(chunk.usage)})
        choices = []
        for delta in chunk.choices:
            out: dict[str, Any] = {}
            if not self.started:
                out["role"] = "assistant"
            if delta.content or not self.started:
                out["content"] = delta.content
            if delta.reasoning_content:
                out["reasoning_content"] = delta.reasoning_content
            if delta.tool_calls:
                out["tool_calls"] = [{"index": delta.tool_call_index + k, **tool_call_dict(call)}
                                     for k, call in enumerate(delta.tool_calls)]
            choices.append({"index": delta.index, "delta": out,
                            "logprobs": logprobs_dict(delta.logprobs) if delta.logprobs else None,
                            "finish_reason": FINISH.get(delta.finish_reason)})
        self.started = True
        event = {**head, "choices": choices}
        if self.include_usage:
            event["usage"] = None
        return sse(event)

    def error(self, error: APIError) -> bytes:
        return sse({"error": error.fields()})

    def end(self) -> bytes:
        return DONE


# One encoder for every event: json.dumps with arguments builds a new JSONEncoder on each call.
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + _JSON.encode(payload).encode() + b"\n\n"


DONE = b"data: [DONE]\n\n"
