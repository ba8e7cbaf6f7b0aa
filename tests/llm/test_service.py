"""ChatService over real gRPC, once per backend (the `llm` fixture): transformers on the tiny profile, a
real Qwen3_5ForConditionalGeneration (gated DeltaNet + attention layers and a vision tower) with random
weights, and, where vllm is installed, vLLM's engine on a tiny model folder with dummy weights. The text
is noise, but every count, limit, stop and stream is the real code path."""

from __future__ import annotations

import asyncio
import http.server
import importlib.util
import json
import threading

import grpc
import pytest

from tests.llm.helpers import (
    active,
    as_stream,
    backend_of,
    cancelled,
    chat,
    generated,
    png_bytes,
    serve_llm,
    servicer_of,
    stream_chat,
    user,
)
from tests.support.grpc_errors import expect_error
from tests.support.waiting import eventually
from univence.common.v1 import common_pb2, common_pb2_grpc
from univence.llm.v1 import llm_pb2

# "<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n": one token per byte
# (the tiny tokenizer has no merges) and one per special token.
needs_xgrammar = pytest.mark.skipif(importlib.util.find_spec("xgrammar") is None,
                                    reason="JSON output on the transformers backend needs the xgrammar package")
TEMPLATE_TOKENS = 1 + len("user\n") + 1 + 1 + 1 + len("assistant\n") + 1 + 2 + 1 + 2


pytestmark = pytest.mark.asyncio(loop_scope="session")  # the `llm` services live for the session


def prompt_tokens(text: str) -> int:
    return TEMPLATE_TOKENS + len(text.encode())


async def test_unary_completion_names_the_served_model_and_counts_tokens_exactly(llm):
    stub, _ = llm
    response = await stub.CreateChatCompletion(chat(user("Hello, how are you?"), model="gpt-4o", max_tokens=8))
    assert response.id.startswith("chatcmpl-") and response.model == "Qwen/Qwen3.5-4B"
    assert response.created > 0 and len(response.choices) == 1
    choice = response.choices[0]
    assert choice.finish_reason in (llm_pb2.FINISH_REASON_STOP, llm_pb2.FINISH_REASON_LENGTH)
    if choice.finish_reason == llm_pb2.FINISH_REASON_LENGTH:
        assert response.usage.completion_tokens == 8
    assert response.usage.prompt_tokens == prompt_tokens("Hello, how are you?")
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens


async def test_n_choices_each_counted(llm):
    stub, _ = llm
    response = await stub.CreateChatCompletion(chat(user("hi"), n=3, max_tokens=5, temperature=1.0, seed=1))
    assert [c.index for c in response.choices] == [0, 1, 2]
    assert 3 <= response.usage.completion_tokens <= 15


async def test_greedy_n_choices_are_identical(llm):
    stub, _ = llm
    response = await stub.CreateChatCompletion(chat(user("hi"), n=2, max_tokens=6, temperature=0))
    assert response.choices[0].content == response.choices[1].content
    assert response.usage.completion_tokens % 2 == 0


async def test_seed_makes_sampling_reproducible(llm):
    stub, _ = llm
    request = chat(user("tell me"), max_tokens=12, temperature=1.0, top_p=0.9, seed=1234)
    first = await stub.CreateChatCompletion(request)
    again = await stub.CreateChatCompletion(request)
    assert first.choices[0].content == again.choices[0].content


async def test_stop_sequences_cut_the_text_and_are_not_sent(llm):
    stub, _ = llm
    free = await stub.CreateChatCompletion(chat(user("go"), max_tokens=40, temperature=0))
    text = free.choices[0].content
    if len(text) < 4:
        pytest.skip("the random model ended at once")
    stop = text[2:4]
    cut = await stub.CreateChatCompletion(chat(user("go"), max_tokens=40, temperature=0, stop=[stop, "\x00never"]))
    assert cut.choices[0].content == text[:text.find(stop)]
    assert cut.choices[0].finish_reason == llm_pb2.FINISH_REASON_STOP
    chunks = [c async for c in stub.StreamChatCompletion(stream_chat(user("go"), max_tokens=40, temperature=0,
                                                                      stop=[stop]))]
    assert "".join(d.content for c in chunks for d in c.choices) == cut.choices[0].content


async def test_stream_sends_start_deltas_finish_and_usage_last(llm):
    stub, _ = llm
    chunks = [c async for c in stub.StreamChatCompletion(stream_chat(user("stream please"), max_tokens=10, n=2,
                                                                      temperature=0.8, include_usage=True))]
    assert len({c.id for c in chunks}) == 1
    assert [d.index for d in chunks[0].choices] == [0, 1] and not any(d.content for d in chunks[0].choices)
    usage = chunks[-1]
    assert not usage.choices and usage.usage.prompt_tokens == prompt_tokens("stream please")
    finishes = [d for c in chunks for d in c.choices if d.finish_reason]
    assert sorted(d.index for d in finishes) == [0, 1]
    assert all(not c.HasField("usage") for c in chunks[:-1])
    assert 2 <= usage.usage.completion_tokens <= 20


async def test_stream_without_include_usage_has_no_usage_chunk(llm):
    stub, _ = llm
    chunks = [c async for c in stub.StreamChatCompletion(stream_chat(user("x"), max_tokens=4))]
    assert chunks[-1].choices and chunks[-1].choices[0].finish_reason
    assert not any(c.HasField("usage") for c in chunks)


async def test_stream_text_equals_the_unary_text(llm):
    stub, _ = llm
    request = chat(user("same"), max_tokens=20, temperature=0)
    whole = await stub.CreateChatCompletion(request)
    chunks = [c async for c in stub.StreamChatCompletion(as_stream(request))]
    assert "".join(d.content for c in chunks for d in c.choices) == whole.choices[0].content


async def test_an_image_adds_its_vision_tokens_to_the_prompt(llm):
    stub, runtime = llm
    if not backend_of(runtime).supports_images:
        pytest.skip("a text-only model (vLLM's CPU build runs the tiny Qwen3 text model)")
    text_only = await stub.CreateChatCompletion(chat(user("What is in this image?"), max_tokens=3))
    with_image = await stub.CreateChatCompletion(chat(user("What is in this image?", png_bytes(48, 32)), max_tokens=3))
    # 48x32 in 16-px patches: 3x2 = 6 image tokens, plus vision_start and vision_end.
    assert with_image.usage.prompt_tokens == text_only.usage.prompt_tokens + 6 + 2
    chunks = [c async for c in stub.StreamChatCompletion(stream_chat(user(png_bytes(64, 64), "and this?"),
                                                                      max_tokens=3))]
    assert chunks[-1].choices[0].finish_reason


@needs_xgrammar
async def test_json_schema_output_is_valid_json_of_that_schema(llm):
    stub, _ = llm
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}, "n": {"type": "integer"}},
              "required": ["ok", "n"], "additionalProperties": False}
    fmt = llm_pb2.ResponseFormat(type=llm_pb2.RESPONSE_FORMAT_TYPE_JSON_SCHEMA, json_schema=json.dumps(schema),
                                 schema_name="answer", strict=True)
    response = await stub.CreateChatCompletion(chat(user("answer in JSON"), max_tokens=60, response_format=fmt,
                                                    seed=5, temperature=1.0))
    if response.choices[0].finish_reason == llm_pb2.FINISH_REASON_STOP:
        value = json.loads(response.choices[0].content)
        assert set(value) == {"ok", "n"} and isinstance(value["ok"], bool) and isinstance(value["n"], int)
    else:  # a long random integer can run out of tokens; what was written is still on the grammar's path
        assert response.choices[0].content.startswith('{"ok":') or response.choices[0].content.startswith('{"ok": ')
    json_object = llm_pb2.ResponseFormat(type=llm_pb2.RESPONSE_FORMAT_TYPE_JSON_OBJECT)
    response = await stub.CreateChatCompletion(chat(user("JSON"), max_tokens=200, temperature=0,
                                                    response_format=json_object))
    assert response.choices[0].content.startswith("{")


@needs_xgrammar
@pytest.mark.parametrize("schema", [
    {"type": "object", "properties": {"a": {"type": "string", "pattern": "(?<=x)a"}}},  # lookbehind
    {"type": "object", "properties": {"a": {"$ref": "#/definitions/missing"}}},
    {"type": "strange"},
])
async def test_a_schema_the_grammar_cannot_take_is_a_400(llm, schema):
    stub, _ = llm
    fmt = llm_pb2.ResponseFormat(type=llm_pb2.RESPONSE_FORMAT_TYPE_JSON_SCHEMA, json_schema=json.dumps(schema))
    await expect_error(stub.CreateChatCompletion(chat(user("x"), max_tokens=4, response_format=fmt)), "INVALID_REQUEST")


@pytest.mark.skipif(importlib.util.find_spec("xgrammar") is not None, reason="xgrammar is installed")
async def test_json_output_without_xgrammar_is_a_clear_400(llm):
    stub, _ = llm
    json_object = llm_pb2.ResponseFormat(type=llm_pb2.RESPONSE_FORMAT_TYPE_JSON_OBJECT)
    error = await expect_error(stub.CreateChatCompletion(chat(user("JSON"), response_format=json_object)),
                               "INVALID_REQUEST")
    assert error.param == "response_format" and "not supported by this backend" in error.message


async def test_logprobs_give_each_token_and_the_top_alternatives(llm):
    stub, _ = llm
    request = chat(user("score me"), max_tokens=8, temperature=0, logprobs=True, top_logprobs=3)
    whole = await stub.CreateChatCompletion(request)
    choice = whole.choices[0]
    ended_by_end_token = choice.finish_reason == llm_pb2.FINISH_REASON_STOP
    assert len(choice.logprobs) == whole.usage.completion_tokens - ended_by_end_token  # the end token is left out
    assert b"".join(e.bytes for e in choice.logprobs).decode() == choice.content
    for entry in choice.logprobs:
        top = [t.logprob for t in entry.top_logprobs]
        assert entry.logprob <= 0 and len(top) == 3 and top == sorted(top, reverse=True)
        # greedy decoding picks the most likely token
        assert entry.top_logprobs[0].bytes == entry.bytes
        assert entry.top_logprobs[0].logprob == pytest.approx(entry.logprob, abs=1e-4)
    chunks = [c async for c in stub.StreamChatCompletion(as_stream(request))]
    streamed = [e for c in chunks for d in c.choices for e in d.logprobs]
    assert [e.bytes for e in streamed] == [e.bytes for e in choice.logprobs]
    assert [e.logprob for e in streamed] == pytest.approx([e.logprob for e in choice.logprobs], abs=1e-3)
    plain = await stub.CreateChatCompletion(chat(user("score me"), max_tokens=8, temperature=0, logprobs=True))
    assert all(not e.top_logprobs for e in plain.choices[0].logprobs) and plain.choices[0].logprobs
    none = await stub.CreateChatCompletion(chat(user("score me"), max_tokens=8, temperature=0))
    assert not none.choices[0].logprobs


WEATHER = llm_pb2.Tool(name="get_weather", description="Weather in a city", parameters=json.dumps(
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}))


async def test_tools_are_shown_to_the_model_and_a_conversation_with_calls_is_taken(llm):
    stub, _ = llm
    plain = await stub.CreateChatCompletion(chat(user("weather?"), max_tokens=2))
    offered = await stub.CreateChatCompletion(chat(user("weather?"), max_tokens=2, tools=[WEATHER]))
    assert offered.usage.prompt_tokens > plain.usage.prompt_tokens + len(WEATHER.parameters)
    hidden = await stub.CreateChatCompletion(chat(user("weather?"), max_tokens=2, tools=[WEATHER],
                                                  tool_choice=llm_pb2.ToolChoice(mode=llm_pb2.TOOL_CHOICE_MODE_NONE)))
    assert hidden.usage.prompt_tokens == plain.usage.prompt_tokens
    answered = chat(user("weather?"), llm_pb2.ChatMessage(role=llm_pb2.ROLE_ASSISTANT, tool_calls=[llm_pb2.ToolCall(
        id="call_1", name="get_weather", arguments='{"city": "Paris"}')]), llm_pb2.ChatMessage(
        role=llm_pb2.ROLE_TOOL, tool_call_id="call_1", content=[llm_pb2.ContentPart(text="sunny, 21 C")]),
        max_tokens=2, tools=[WEATHER])
    response = await stub.CreateChatCompletion(answered)
    # the call and the result are in the prompt: "<parameter=city>\nParis\n</parameter>" ... "sunny, 21 C"
    assert response.usage.prompt_tokens > offered.usage.prompt_tokens + len("Paris") + len("sunny, 21 C")


async def test_a_named_tool_choice_makes_the_model_call_that_function(llm):
    stub, _ = llm
    request = chat(user("weather in Paris?"), max_tokens=12, temperature=0, tools=[WEATHER],
                   tool_choice=llm_pb2.ToolChoice(mode=llm_pb2.TOOL_CHOICE_MODE_FUNCTION, function_name="get_weather"))
    response = await stub.CreateChatCompletion(request)
    choice = response.choices[0]
    if choice.tool_calls:  # the block closed within the budget
        assert [c.name for c in choice.tool_calls] == ["get_weather"] and choice.content == ""
        assert isinstance(json.loads(choice.tool_calls[0].arguments), dict)
        assert choice.tool_calls[0].id.startswith("call_")
        assert choice.finish_reason in (llm_pb2.FINISH_REASON_TOOL_CALLS, llm_pb2.FINISH_REASON_LENGTH)
    else:  # cut off before the block closed: no call, the text is content
        assert choice.content.startswith("<tool_call>\n<function=get_weather>")
    chunks = [c async for c in stub.StreamChatCompletion(as_stream(request))]
    streamed = [(d.tool_call_index, c.name) for chunk in chunks for d in chunk.choices for c in d.tool_calls]
    assert streamed == [(0, c.name) for c in choice.tool_calls]
    assert "".join(d.content for chunk in chunks for d in chunk.choices) == choice.content


async def test_a_forced_call_cut_off_by_max_tokens_is_no_tool_call(llm):
    """A call whose block never closes is not sent as a tool call with "{}" arguments: its text is the
    content and the finish reason says `length`, whole and streamed."""
    stub, _ = llm
    request = chat(user("weather in Paris?"), max_tokens=3, temperature=0, tools=[WEATHER],
                   tool_choice=llm_pb2.ToolChoice(mode=llm_pb2.TOOL_CHOICE_MODE_FUNCTION, function_name="get_weather"))
    choice = (await stub.CreateChatCompletion(request)).choices[0]
    assert not choice.tool_calls and choice.finish_reason == llm_pb2.FINISH_REASON_LENGTH
    assert choice.content.startswith("<tool_call>\n<function=get_weather>\n")
    chunks = [c async for c in stub.StreamChatCompletion(as_stream(request))]
    assert not [c for chunk in chunks for d in chunk.choices for c in d.tool_calls]
    assert "".join(d.content for chunk in chunks for d in chunk.choices) == choice.content
    assert [d.finish_reason for chunk in chunks for d in chunk.choices if d.finish_reason] == [
        llm_pb2.FINISH_REASON_LENGTH]


async def test_penalties_run(llm):
    stub, _ = llm
    response = await stub.CreateChatCompletion(chat(user("repeat"), max_tokens=10, presence_penalty=1.5,
                                                    frequency_penalty=2.0, temperature=0))
    assert response.usage.completion_tokens >= 1


async def test_context_limit_is_enforced_before_generation(llm):
    stub, runtime = llm
    name = backend_of(runtime).name
    before = generated(name)
    error = await expect_error(stub.CreateChatCompletion(chat(user("x" * 5000))), "INVALID_REQUEST")
    assert error.param == "messages" and "maximum context length is 4096 tokens" in error.message
    error = await expect_error(stub.CreateChatCompletion(chat(user("hello"), max_tokens=4090)), "INVALID_REQUEST")
    assert error.param == "max_tokens" and "4090 in the completion" in error.message
    stream = stub.StreamChatCompletion(stream_chat(user("y" * 5000)))
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await stream.read()
    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert generated(name) == before


@pytest.mark.parametrize(("request_", "param"), [
    (chat(), "messages"),
    (chat(llm_pb2.ChatMessage(content=[llm_pb2.ContentPart(text="no role")])), "messages[0].role"),
    (chat(user("look", b"not an image at all")), "messages[0].content[1].image_url"),
    (chat(user("hi"), llm_pb2.ChatMessage(role=llm_pb2.ROLE_USER, content=[llm_pb2.ContentPart()])),
     "messages[1].content[0]"),
    (chat(user("hi"), temperature=3.0), "temperature"),
    (chat(user("hi"), top_p=1.5), "top_p"),
    (chat(user("hi"), max_tokens=0), "max_tokens"),
    (chat(user("hi"), n=100), "n"),
    (chat(user("hi"), stop=["a", "b", "c", "d", "e"]), "stop"),
    (chat(user("hi"), presence_penalty=-3), "presence_penalty"),
    (chat(user("hi"), logprobs=True, top_logprobs=21), "top_logprobs"),
    (chat(user("hi"), tools=[llm_pb2.Tool(name="bad name!")]), "tools[0].function.name"),
    (chat(user("hi"), tools=[llm_pb2.Tool(name="f", parameters="[]")]), "tools[0].function.parameters"),
    (chat(user("hi"), tools=[llm_pb2.Tool(name="f"), llm_pb2.Tool(name="f")]), "tools[1].function.name"),
    (chat(user("hi"), tool_choice=llm_pb2.ToolChoice(mode=llm_pb2.TOOL_CHOICE_MODE_REQUIRED)), "tool_choice"),
    (chat(user("hi"), tools=[llm_pb2.Tool(name="f")], tool_choice=llm_pb2.ToolChoice(
        mode=llm_pb2.TOOL_CHOICE_MODE_FUNCTION, function_name="g")), "tool_choice"),
    (chat(user("hi"), llm_pb2.ChatMessage(role=llm_pb2.ROLE_ASSISTANT, tool_calls=[
        llm_pb2.ToolCall(id="c", name="f", arguments="not json")])), "messages[1].tool_calls[0].function.arguments"),
    (chat(llm_pb2.ChatMessage(role=llm_pb2.ROLE_USER, content=[llm_pb2.ContentPart(text="x")], tool_calls=[
        llm_pb2.ToolCall(id="c", name="f", arguments="{}")])), "messages[0].tool_calls[0]"),
    (chat(user("hi"), top_logprobs=2), "top_logprobs"),
    (chat(user("hi"), response_format=llm_pb2.ResponseFormat(type=llm_pb2.RESPONSE_FORMAT_TYPE_JSON_SCHEMA,
                                                             json_schema="[1]")), "response_format.json_schema.schema"),
])
async def test_malformed_requests_name_the_field(llm, request_, param):
    stub, _ = llm
    error = await expect_error(stub.CreateChatCompletion(request_), "INVALID_REQUEST")
    assert error.param == param


async def test_image_urls_are_refused_unless_fetching_is_enabled(llm):
    stub, _ = llm
    remote = llm_pb2.ChatMessage(role=llm_pb2.ROLE_USER, content=[
        llm_pb2.ContentPart(image=llm_pb2.ImageInput(url="https://example.com/cat.png"))])
    error = await expect_error(stub.CreateChatCompletion(chat(remote)), "INVALID_REQUEST")
    assert error.param == "messages[0].content[0].image_url.url" and "disabled" in error.message


async def test_image_urls_are_fetched_when_enabled():
    image = png_bytes(32, 32)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            self.wfile.write(image)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        async with serve_llm(allow_remote_images=True) as (stub, _):
            message = llm_pb2.ChatMessage(role=llm_pb2.ROLE_USER, content=[llm_pb2.ContentPart(
                image=llm_pb2.ImageInput(url=f"http://127.0.0.1:{server.server_port}/cat.png"))])
            response = await stub.CreateChatCompletion(chat(message, max_tokens=2))
            # 32x32: 2x2 = 4 image tokens + vision_start/end, around an otherwise empty user message
            assert response.usage.prompt_tokens == prompt_tokens("") + 4 + 2
    finally:
        server.shutdown()


async def test_a_cancelled_stream_stops_generating(llm):
    stub, runtime = llm
    name = backend_of(runtime).name
    cancelled_before = cancelled(name)
    # Greedy decoding of these random weights repeats one token and never picks the end token.
    call = stub.StreamChatCompletion(stream_chat(user("write forever"), max_tokens=3000, temperature=0))
    for _ in range(4):
        await call.read()
    running = generated(name)
    await asyncio.sleep(0.3)
    assert generated(name) > running, "generation should be running before the cancel"
    call.cancel()
    assert await eventually(lambda: active(name) == 0, seconds=2.5)
    stopped = generated(name)
    await asyncio.sleep(0.5)
    assert generated(name) == stopped, "tokens kept coming after the caller went away"
    assert stopped - running < 2000
    assert cancelled(name) == cancelled_before + 1


async def test_a_full_queue_refuses_at_once():
    async with serve_llm(queue_max_pending=1) as (stub, _):
        busy = stub.StreamChatCompletion(stream_chat(user("busy"), max_tokens=3000, temperature=0))
        await busy.read()
        await expect_error(stub.CreateChatCompletion(chat(user("me too"), max_tokens=2)), "QUEUE_FULL")
        busy.cancel()


async def test_service_info_reports_the_profile_and_the_model(llm):
    _, runtime = llm
    async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.port}") as channel:
        info = await common_pb2_grpc.ServiceInfoServiceStub(channel).GetServiceInfo(common_pb2.GetServiceInfoRequest())
    # The tiny profile on transformers; vllm serves a model folder (dummy weights), which is the full profile.
    profile, source = ("tiny", "tiny-random") if backend_of(runtime).name == "transformers" else \
        ("full", runtime.settings.model)
    assert (info.service, info.profile, info.ready) == ("llm", profile, True)
    assert [(m.id, m.task, m.source) for m in info.models] == [("Qwen/Qwen3.5-4B", "chat.completion", source)]
    assert backend_of(runtime).max_model_len == 4096
    settings = runtime.settings  # the limits the edge checks, from the settings
    assert (info.limits["max_n"], info.limits["max_images"]) == (settings.max_n, settings.max_images)
    assert info.limits["max_image_bytes"] == settings.max_image_bytes


async def test_a_cancelled_unary_call_stops_generating(llm):
    stub, runtime = llm
    name = backend_of(runtime).name
    call = stub.CreateChatCompletion(chat(user("long answer"), max_tokens=3000, temperature=0))
    assert await eventually(lambda: active(name) > 0, seconds=2, every=0.02)
    call.cancel()
    assert await eventually(lambda: active(name) == 0, seconds=2.5)
    stopped = generated(name)
    await asyncio.sleep(0.3)
    assert generated(name) == stopped


async def test_thinking_mode_returns_the_reasoning_apart():
    async with serve_llm(enable_thinking=True) as (stub, _):
        whole = await stub.CreateChatCompletion(chat(user("think"), max_tokens=8, temperature=0))
        # The template opened a <think> block; the random model never closes it, so all is reasoning.
        assert whole.usage.prompt_tokens == prompt_tokens("think") - 4  # "<think>\n" instead of an empty block
        assert whole.choices[0].reasoning_content and whole.choices[0].content == ""
        chunks = [c async for c in stub.StreamChatCompletion(stream_chat(user("think"), max_tokens=8, temperature=0))]
        assert "".join(d.reasoning_content for c in chunks for d in c.choices) == whole.choices[0].reasoning_content


async def test_full_profile_loads_a_local_model_folder(tmp_path):
    """The full profile's loading path (AutoConfig → AutoModelForImageTextToText + AutoImageProcessor +
    the folder's chat template) on a folder written by save_pretrained, offline."""
    from services.llm.tiny import save_tiny

    folder = save_tiny(tmp_path / "qwen3.5-folder")
    async with serve_llm(profile="full", model=str(folder), served_model_name="local/qwen") as (stub, runtime):
        response = await stub.CreateChatCompletion(chat(user("What is in this image?", png_bytes(48, 32)),
                                                        max_tokens=4, model="ignored"))
        assert response.model == "local/qwen"
        assert response.usage.prompt_tokens == prompt_tokens("What is in this image?") + 6 + 2
        assert servicer_of(runtime).backend.max_model_len == 4096
