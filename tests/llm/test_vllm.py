"""The vLLM backend. Its engine needs vllm and a CUDA GPU: those tests skip cleanly elsewhere. On a GPU
they run the tiny Qwen3.5 folder with `load_format="dummy"` (random weights, no download) through
the real engine: a completion, a stream, and an abort when the consumer goes away."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest

from services.llm.backends.base import SamplingOptions, TextDelta
from services.llm.backends.vllm_backend import engine_args
from services.llm.config import LlmSettings

HAS_VLLM = importlib.util.find_spec("vllm") is not None


def cuda() -> bool:
    import torch

    return torch.cuda.is_available()


needs_gpu_vllm = pytest.mark.skipif(not HAS_VLLM or not cuda(), reason="needs vllm and a CUDA GPU")


def test_engine_args_follow_the_settings():
    settings = LlmSettings(max_model_len=262144, load_format="dummy", max_images=4, gpu_memory_utilization=0.5,
                           served_model_name="Qwen/Qwen3.5-4B")
    args = engine_args(settings, "/models/qwen3.5-4b")
    assert args["model"] == "/models/qwen3.5-4b" and args["served_model_name"] == "Qwen/Qwen3.5-4B"
    assert args["max_model_len"] == 262144 and args["load_format"] == "dummy"
    assert args["limit_mm_per_prompt"] == {"image": 4, "video": 0} and args["gpu_memory_utilization"] == 0.5
    assert "max_model_len" not in engine_args(LlmSettings())  # 0: the model's own context window


@pytest.fixture
async def vllm_backend(tmp_path):
    from services.llm.backends.vllm_backend import VllmBackend
    from services.llm.tiny import save_tiny

    folder = save_tiny(tmp_path / "tiny-qwen3.5", weights=False)
    settings = LlmSettings(load_format="dummy", max_model_len=2048, gpu_memory_utilization=0.3, enforce_eager=True)
    backend = await VllmBackend.start(settings, str(folder))
    yield backend
    await backend.close()


@needs_gpu_vllm
async def test_vllm_completion_stream_and_abort(vllm_backend):
    from services.llm.backends.base import Message

    options = SamplingOptions(max_tokens=16, n=2, temperature=0.8, seed=7)
    prompt = await vllm_backend.prepare([Message("user", ["hello"])], options)
    results = await vllm_backend.generate(prompt, options)
    assert [r.index for r in results] == [0, 1] and all(1 <= r.completion_tokens <= 16 for r in results)
    long = SamplingOptions(max_tokens=1500, temperature=0)
    prompt = await vllm_backend.prepare([Message("user", ["go on"])], long)
    events = vllm_backend.stream(prompt, long)
    assert isinstance(await anext(events), TextDelta)
    await events.aclose()
    await asyncio.sleep(0.2)
    assert vllm_backend.pending == 0
