"""POST /v1/chat/completions end to end: the official openai SDK and plain HTTP against the real edge,
accounts and media services and the LLM service in the tiny profile (a real Qwen3.5 model class with
random weights: the text is noise, the counts, streams, limits and metering are real)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib.util
import json
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest
from prometheus_client import REGISTRY

import edge.serving as serving
from edge.errors import APIError
from services.llm import tools
from tests.edge.test_auth import assert_envelope
from tests.llm.helpers import png_bytes, serve_llm
from tests.support.platform import Platform, running_platform
from tests.support.timing import upstream_ms
from tests.support.waiting import eventually

MODEL = "qwen3.5"  # any name: the model is accepted and ignored
PNG_DATA_URL = "data:image/png;base64," + base64.b64encode(png_bytes(48, 32)).decode()


@dataclass
class ChatStack:
    platform: Platform
    http: httpx.AsyncClient
    client: openai.AsyncOpenAI
    key: str
    user_id: str
    accounts_db: Path

    def holds(self, user_id: str | None = None) -> list[tuple[str, str, bytes | None]]:
        """(state, release_reason, stored response) of the user's holds, oldest first."""
        with contextlib.closing(sqlite3.connect(self.accounts_db)) as db:
            return db.execute("SELECT state, release_reason, response_body FROM holds WHERE user_id = ? "
                              "ORDER BY created_us", (user_id or self.user_id,)).fetchall()

    async def settled_holds(self, user_id: str | None = None) -> list[tuple[str, str, bytes | None]]:
        """The holds once none is held any more (a client that left is noticed after it left)."""
        for _ in range(100):
            holds = self.holds(user_id)
            if all(state != "held" for state, _, _ in holds):
                return holds
            await asyncio.sleep(0.05)
        raise AssertionError(f"a hold is still held: {holds}")


@pytest.fixture
async def stack(tmp_path):
    async with serve_llm() as (_, llm), \
            running_platform(tmp_path, modalities=["llm"], modality_addresses={"llm": f"127.0.0.1:{llm.port}"},
                             credit_leases=False) as platform, \
            httpx.AsyncClient(base_url=platform.base_url, timeout=60) as http:
        # Leases off: these tests are about the per-request holds of the chat flows (with leases on, a
        # premium caller's chat needs no hold at all: tests/edge/test_leases.py).
        user_id, key = await platform.user_with_key("vip@example.com", premium=True)
        client = openai.AsyncOpenAI(api_key=key, base_url=f"{platform.base_url}/v1", max_retries=0, timeout=60)
        yield ChatStack(platform, http, client, key, user_id, tmp_path / "accounts.db")
        await client.close()


def generated() -> float:
    return REGISTRY.get_sample_value("univence_llm_generated_tokens_total", {"backend": "transformers"}) or 0.0


def active() -> float:
    return REGISTRY.get_sample_value("univence_llm_active_generations", {"backend": "transformers"}) or 0.0


async def test_sdk_completion_has_usage_and_names_the_served_model(stack):
    raw = await stack.client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "system", "content": "You are a helpful assistant."},
                                  {"role": "user", "content": "Hello, how are you?"}], max_tokens=16)
    assert raw.headers["x-univence-profile"] == "tiny"
    completion = raw.parse()
    assert completion.object == "chat.completion" and completion.id.startswith("chatcmpl-")
    assert completion.model == "Qwen/Qwen3.5-4B"
    choice = completion.choices[0]
    assert choice.message.role == "assistant" and isinstance(choice.message.content, str)
    assert choice.finish_reason in ("stop", "length")
    usage = completion.usage
    assert usage.prompt_tokens > 0 and 1 <= usage.completion_tokens <= 16
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


async def test_sdk_stream_chunks_concatenate_to_the_message_and_the_last_carries_usage(stack):
    messages = [{"role": "user", "content": "Count to ten."}]
    whole = await stack.client.chat.completions.create(model=MODEL, messages=messages, max_tokens=24, temperature=0)
    stream = await stack.client.chat.completions.create(model=MODEL, messages=messages, max_tokens=24, temperature=0,
                                                        stream=True, stream_options={"include_usage": True})
    chunks = [chunk async for chunk in stream]
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [whole.choices[0].finish_reason]
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.model_dump() == whole.usage.model_dump()
    assert all(c.usage is None for c in chunks[:-1])


async def test_the_service_time_is_on_the_response_whole_or_streamed(stack):
    """Server-Timing's upstream entry: the LLM service's time, the call's whole for a completion, to its first
    chunk for a stream (its head leaves then), so the client can tell the edge's part from the model's."""
    body = {"messages": [{"role": "user", "content": "Count to ten."}], "max_tokens": 12}
    started = time.perf_counter()
    whole = await stack.http.post("/v1/chat/completions", headers={"X-API-Key": stack.key}, json=body)
    assert 0 < upstream_ms(whole.headers, "llm") < (time.perf_counter() - started) * 1e3
    started = time.perf_counter()
    async with stack.http.stream("POST", "/v1/chat/completions", headers={"X-API-Key": stack.key},
                                 json={**body, "stream": True}) as streamed:
        head_ms = (time.perf_counter() - started) * 1e3
        assert 0 < upstream_ms(streamed.headers, "llm") < head_ms
        assert (await streamed.aread()).endswith(b"data: [DONE]\n\n")


async def test_sdk_stream_without_include_usage_has_no_usage(stack):
    stream = await stack.client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}],
                                                        max_tokens=4, stream=True)
    chunks = [chunk async for chunk in stream]
    assert chunks and all(c.choices and c.usage is None for c in chunks)


async def test_sdk_vision_message_with_a_base64_png(stack):
    completion = await stack.client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is in this image?"},
        {"type": "image_url", "image_url": {"url": PNG_DATA_URL, "detail": "low"}}]}], max_tokens=8)
    text_only = await stack.client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is in this image?"}]}], max_tokens=1)
    assert completion.choices[0].message.role == "assistant"
    assert completion.usage.prompt_tokens == text_only.usage.prompt_tokens + 6 + 2  # 3x2 patches + markers


@pytest.mark.skipif(importlib.util.find_spec("xgrammar") is None,
                    reason="JSON output on the transformers backend needs the xgrammar package")
async def test_sdk_json_schema_response_format(stack):
    completion = await stack.client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Is it raining?"}], max_tokens=40, temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "answer", "strict": True, "schema": {
            "type": "object", "properties": {"raining": {"type": "boolean"}}, "required": ["raining"],
            "additionalProperties": False}}})
    assert isinstance(json.loads(completion.choices[0].message.content)["raining"], bool)


async def test_sdk_logprobs_whole_and_streamed(stack):
    fields = {"model": MODEL, "messages": [{"role": "user", "content": "Rate this"}], "max_tokens": 6,
              "temperature": 0, "logprobs": True, "top_logprobs": 2}
    completion = await stack.client.chat.completions.create(**fields)
    choice = completion.choices[0]
    entries = choice.logprobs.content
    assert len(entries) == completion.usage.completion_tokens - (choice.finish_reason == "stop")
    assert bytes(b for e in entries for b in e.bytes).decode() == choice.message.content
    assert all(e.logprob <= 0 and len(e.top_logprobs) == 2 and e.top_logprobs[0].token == e.token for e in entries)
    stream = await stack.client.chat.completions.create(**fields, stream=True)
    chunks = [chunk async for chunk in stream]
    streamed = [e for chunk in chunks for c in chunk.choices if c.logprobs for e in c.logprobs.content]
    assert [e.token for e in streamed] == [e.token for e in entries]
    plain = await stack.client.chat.completions.create(**{**fields, "logprobs": None, "top_logprobs": None})
    assert plain.choices[0].logprobs is None


WEATHER_TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                                  "parameters": {"type": "object", "properties": {
                                                      "city": {"type": "string"}}, "required": ["city"]}}}


def _closing_flush(flush):
    """ToolCallParser.flush as if the model closed its block as the budget ran out: the tiny model's text is
    random, so a forced call never closes by itself (and a block left open is no call)."""
    def closing(self):
        content, calls = ("", [])
        if self._held.startswith(tools.OPEN):
            content, calls = self.feed("\n</function>\n</tool_call>")
        rest, more = flush(self)
        return content + rest, calls + more
    return closing


async def test_sdk_tool_calls_whole_streamed_and_answered(stack, monkeypatch):
    monkeypatch.setattr(tools.ToolCallParser, "flush", _closing_flush(tools.ToolCallParser.flush))
    fields = {"model": MODEL, "messages": [{"role": "user", "content": "Weather in Paris?"}], "max_tokens": 12,
              "temperature": 0, "tools": [WEATHER_TOOL],
              "tool_choice": {"type": "function", "function": {"name": "get_weather"}}}
    completion = await stack.client.chat.completions.create(**fields)
    choice = completion.choices[0]
    assert choice.finish_reason in ("tool_calls", "length") and choice.message.content is None
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather" and call.id.startswith("call_")
    assert isinstance(json.loads(call.function.arguments), dict)
    stream = await stack.client.chat.completions.create(**fields, stream=True)
    chunks = [chunk async for chunk in stream]
    deltas = [c.choices[0].delta for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    assert [(d.tool_calls[0].index, d.tool_calls[0].function.name) for d in deltas] == [(0, "get_weather")]
    answered = await stack.client.chat.completions.create(
        model=MODEL, max_tokens=4, tools=[WEATHER_TOOL], messages=[
            *fields["messages"], choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 C"}])
    assert answered.usage.prompt_tokens > completion.usage.prompt_tokens
    response = await stack.http.post("/v1/chat/completions", headers={"X-API-Key": stack.key}, json={
        "messages": [{"role": "tool", "content": "sunny"}], "max_tokens": 2})
    assert assert_envelope(response, 400, "invalid_request_error")["param"] == "messages[0].tool_call_id"


async def test_the_reference_curl_examples_work_as_written(stack):
    headers = {"Content-Type": "application/json", "X-API-Key": stack.key}
    text = await stack.http.post("/v1/chat/completions", headers=headers, json={
        "messages": [{"role": "system", "content": "You are a helpful assistant."},
                     {"role": "user", "content": "Hello, how are you?"}],
        "temperature": 0.7, "max_tokens": 1000})
    assert text.status_code == 200, text.text
    body = text.json()
    assert set(body) >= {"id", "object", "created", "model", "choices", "usage"}
    assert body["object"] == "chat.completion" and body["model"] == "Qwen/Qwen3.5-4B"
    assert body["choices"][0]["message"]["role"] == "assistant" and body["choices"][0]["index"] == 0
    assert set(body["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}
    # The reference abbreviates the base64 ("iVBORw0KGgo..."); a whole PNG goes in its place.
    vision = await stack.http.post("/v1/chat/completions", headers=headers, json={
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is in this image?"},
            {"type": "image_url", "image_url": {"url": PNG_DATA_URL}}]}],
        "max_tokens": 500})
    assert vision.status_code == 200, vision.text
    assert vision.json()["choices"][0]["finish_reason"] in ("stop", "length")


async def test_sse_wire_format(stack):
    async with stack.http.stream("POST", "/v1/chat/completions", headers={"X-API-Key": stack.key}, json={
            "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5, "stream": True,
            "stream_options": {"include_usage": True}}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        body = (await response.aread()).decode()
    events = [e for e in body.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"
    usage = json.loads(events[-2].removeprefix("data: "))
    assert usage["choices"] == [] and usage["usage"]["total_tokens"] > 0


async def test_non_premium_gets_the_403_envelope(stack):
    before = generated()
    user_id, key = await stack.platform.user_with_key("free@example.com", credits_mc=100_000)
    response = await stack.http.post("/v1/chat/completions", headers={"X-API-Key": key},
                                     json={"messages": [{"role": "user", "content": "hi"}]})
    assert assert_envelope(response, 403, "premium_required")["code"] == "premium_required"
    free = openai.AsyncOpenAI(api_key=key, base_url=f"{stack.platform.base_url}/v1", max_retries=0)
    with pytest.raises(openai.PermissionDeniedError):
        await free.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True)
    await free.close()
    assert generated() == before  # the model never ran for them
    assert stack.holds(user_id) == []


async def test_over_long_input_is_a_400_envelope_streamed_or_not(stack):
    before = generated()
    for stream in (False, True):
        response = await stack.http.post("/v1/chat/completions", headers={"X-API-Key": stack.key}, json={
            "messages": [{"role": "user", "content": "word " * 2000}], "stream": stream})
        error = assert_envelope(response, 400, "invalid_request_error")
        assert error["param"] == "messages" and "maximum context length" in error["message"]
    response = await stack.http.post("/v1/chat/completions", headers={"X-API-Key": stack.key}, json={
        "messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 100_000})
    assert assert_envelope(response, 400, "invalid_request_error")["param"] == "max_tokens"
    with pytest.raises(openai.BadRequestError):
        await stack.client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x" * 5000}])
    assert generated() == before
    assert (await stack.platform.balance(stack.user_id)).held_mc == 0


@pytest.mark.parametrize(("messages", "param"), [
    ([{"content": "no role"}], "messages[0].role"),
    ([{"role": "wizard", "content": "hi"}], "messages[0].role"),
    ([{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "input_audio", "input_audio": {}}]}],
     "messages[0].content[1].type"),
    ([{"role": "user", "content": [{"type": "text", "text": "a"}, {"text": "no type"}]}],
     "messages[0].content[1].type"),
    ([{"role": "user", "content": [{"type": "text", "text": "a"},
                                   {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}]}],
     "messages[0].content[1].image_url.url"),
    ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:text/plain;base64,aGk="}}]}],
     "messages[0].content[0].image_url.url"),
    ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://host/cat.png"}}]}],
     "messages[0].content[0].image_url.url"),
    ([{"role": "user", "content": [{"type": "image_url", "image_url": {
        "url": "data:image/png;base64," + base64.b64encode(b"not a png").decode()}}]}],
     "messages[0].content[0].image_url"),
    ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}],
     "messages[0].content[0].image_url.url"),
    ([{"role": "user", "content": 42}], "messages[0].content"),
    ([{"role": "user"}], "messages[0].content"),
    ([], "messages"),
    ("hello", "messages"),
])
async def test_malformed_messages_are_400_with_param(stack, messages, param):
    response = await stack.http.post("/v1/chat/completions", headers={"X-API-Key": stack.key},
                                     json={"messages": messages, "max_tokens": 2})
    assert assert_envelope(response, 400, "invalid_request_error")["param"] == param


@pytest.mark.parametrize(("fields", "param"), [
    ({"temperature": 5}, "temperature"),
    ({"n": 0}, "n"),
    ({"stream_options": {"include_usage": True}}, "stream_options"),
    ({"response_format": {"type": "json_schema"}}, "response_format.json_schema"),
    ({"functions": [{"name": "f"}]}, "functions"),
    ({"tools": [{"type": "function", "function": {"name": "bad name"}}]}, "tools[0].function.name"),
    ({"tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": {
        "type": "function", "function": {"name": "g"}}}, "tool_choice"),
    ({"tool_choice": "sometimes"}, "tool_choice"),
    ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
    ({"top_logprobs": 2}, "top_logprobs"),
])
async def test_malformed_parameters_are_400_with_param(stack, fields, param):
    response = await stack.http.post("/v1/chat/completions", headers={"X-API-Key": stack.key},
                                     json={"messages": [{"role": "user", "content": "hi"}], **fields})
    assert assert_envelope(response, 400, "invalid_request_error")["param"] == param


async def test_the_llm_service_s_published_limits_are_checked_before_reserving(stack):
    # n (max_n = 8 on the service), stop sequences (at most 4) and images (max_images = 16): the edge
    # refuses what the service would, with the service's numbers, before any hold is made.
    before = generated()
    image = {"type": "image_url", "image_url": {"url": PNG_DATA_URL}}
    for fields, param in [({"n": 9}, "n"), ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
                          ({"messages": [{"role": "user", "content": [image] * 17}]}, "messages[0].content[16]")]:
        response = await stack.http.post("/v1/chat/completions", headers={"X-API-Key": stack.key},
                                         json={"messages": [{"role": "user", "content": "hi"}], **fields})
        assert assert_envelope(response, 400, "invalid_request_error")["param"] == param, response.text
    assert stack.holds() == [] and generated() == before


async def test_a_disconnected_stream_stops_generating(stack):
    # Greedy decoding of the tiny random weights never picks the end token: without the disconnect
    # this would run for 3000 tokens.
    async with stack.http.stream("POST", "/v1/chat/completions", headers={"X-API-Key": stack.key}, json={
            "messages": [{"role": "user", "content": "write forever"}], "max_tokens": 3000, "temperature": 0,
            "stream": True}) as response:
        assert response.status_code == 200
        lines = response.aiter_lines()
        for _ in range(6):
            await anext(lines)
        running = generated()
        await asyncio.sleep(0.3)
        assert generated() > running
    # leaving the block closed the connection mid-stream
    assert await eventually(lambda: active() == 0, seconds=5), "the model is still generating for a client that left"
    stopped = generated()
    await asyncio.sleep(0.5)
    assert generated() == stopped
    async def released() -> bool:
        return (await stack.platform.balance(stack.user_id)).held_mc == 0

    assert await eventually(released, seconds=5, every=0.1)


async def test_idempotency_key_replays_a_completion(stack):
    headers = {"X-API-Key": stack.key, "Idempotency-Key": "chat-1"}
    body = {"messages": [{"role": "user", "content": "once"}], "max_tokens": 4, "temperature": 1.0}
    first = await stack.http.post("/v1/chat/completions", headers=headers, json=body)
    again = await stack.http.post("/v1/chat/completions", headers=headers, json=body)
    assert first.status_code == again.status_code == 200
    assert again.content == first.content and again.headers["idempotent-replayed"] == "true"


async def test_openapi_documents_the_chat_request(stack):
    spec = (await stack.http.get("/openapi.json")).json()
    operation = spec["paths"]["/v1/chat/completions"]["post"]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = spec["components"]["schemas"][ref.removeprefix("#/components/schemas/")]
    assert {"messages", "temperature", "max_tokens", "stream", "response_format"} <= set(schema["properties"])
    # Every schema it refers to is in the document.
    refs = set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(spec)))
    assert refs <= set(spec["components"]["schemas"]), refs - set(spec["components"]["schemas"])
    assert "text/event-stream" in operation["responses"]["200"]["content"]


async def test_premium_holds_are_committed_and_keep_no_response_without_an_idempotency_key(stack):
    completion = await stack.http.post("/v1/chat/completions", headers={"X-API-Key": stack.key}, json={
        "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3})
    assert completion.status_code == 200
    async with stack.http.stream("POST", "/v1/chat/completions", headers={"X-API-Key": stack.key}, json={
            "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3, "stream": True}) as response:
        assert (await response.aread()).endswith(b"data: [DONE]\n\n")
    # Committed before the response ended; nothing kept, since no retry can ask for it.
    assert stack.holds() == [("committed", "", None), ("committed", "", None)]
    balance = await stack.platform.balance(stack.user_id)
    assert (balance.balance_mc, balance.held_mc) == (0, 0)


async def test_a_streamed_completion_with_an_idempotency_key_is_committed_and_not_replayable(stack):
    headers = {"X-API-Key": stack.key, "Idempotency-Key": "stream-1"}
    body = {"messages": [{"role": "user", "content": "once"}], "max_tokens": 3, "stream": True}
    async with stack.http.stream("POST", "/v1/chat/completions", headers=headers, json=body) as response:
        assert response.status_code == 200
        assert (await response.aread()).endswith(b"data: [DONE]\n\n")
    assert stack.holds() == [("committed", "", None)]  # committed before [DONE], with the key
    again = await stack.http.post("/v1/chat/completions", headers=headers, json=body)
    assert assert_envelope(again, 409, "invalid_request_error")["code"] == "idempotency_conflict"


async def test_idempotent_completion_keeps_its_response_for_the_replay(stack):
    headers = {"X-API-Key": stack.key, "Idempotency-Key": "chat-kept"}
    first = await stack.http.post("/v1/chat/completions", headers=headers, json={
        "messages": [{"role": "user", "content": "once"}], "max_tokens": 3})
    assert first.status_code == 200
    assert stack.holds() == [("committed", "", first.content)]  # committed before the response


@pytest.mark.parametrize("streaming", [False, True])
async def test_a_refused_hold_stops_the_generation_that_started_beside_it(stack, monkeypatch, streaming):
    # A premium caller's generation starts while the hold is reserved; should accounts refuse it
    # after all (say the account stopped being premium a moment ago), the refusal is the answer and
    # the generation stops.
    meter = stack.platform.app.state.meter

    async def refused(request, principal, items):
        for _ in range(200):
            if active() > 0:
                break
            await asyncio.sleep(0.01)
        assert active() > 0, "the generation did not start beside the reservation"
        raise APIError(403, "Chat completions are available to premium accounts only", "premium_required",
                       code="premium_required")

    monkeypatch.setattr(meter, "reserve", refused)
    response = await stack.http.post("/v1/chat/completions", headers={"X-API-Key": stack.key}, json={
        "messages": [{"role": "user", "content": "write forever"}], "max_tokens": 3000, "temperature": 0,
        "stream": streaming})
    assert assert_envelope(response, 403, "premium_required")["code"] == "premium_required"
    assert await eventually(lambda: active() == 0, seconds=5), "the model is still generating for a refused request"
    stopped = generated()
    await asyncio.sleep(0.3)
    assert generated() == stopped


@pytest.mark.parametrize("key", ["gone-1", None])
async def test_a_client_gone_before_the_first_chunk_frees_the_hold_and_its_idempotency_key(stack, monkeypatch, key):
    # With no key the generation starts beside the reservation; with one, after it.
    real_stream = serving.stream

    def late_stream(*args, **kwargs):
        async def chunks():
            await asyncio.sleep(30)  # the model is slow to start: the client gives up first
            async for chunk in real_stream(*args, **kwargs):
                yield chunk
        return chunks()

    monkeypatch.setattr(serving, "stream", late_stream)
    headers = {"X-API-Key": stack.key, **({"Idempotency-Key": key} if key else {})}
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3, "stream": True}
    with pytest.raises(httpx.ReadTimeout):
        await stack.http.post("/v1/chat/completions", headers=headers, json=body, timeout=0.5)
    # On a loaded machine the request may reach Reserve only after the client left: wait for its release.
    async def released_once() -> bool:
        return await stack.settled_holds() == [("released", "client_disconnected", None)]

    assert await eventually(released_once, seconds=10, every=0.1)
    monkeypatch.undo()
    again = await stack.http.post("/v1/chat/completions", headers=headers, json=body)  # the key is free again
    assert again.status_code == 200 and again.text.endswith("data: [DONE]\n\n")
