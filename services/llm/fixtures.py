"""The LLM service for tests and benchmarks, started in this event loop: the tiny profile (a real Qwen3.5
model class with tiny random weights on transformers), or the vllm backend on a tiny model folder."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from services.common.server import ServiceRuntime
from services.common.testing import connected, tiny_settings
from services.llm.config import LlmSettings
from services.llm.server import definition
from univence.llm.v1 import llm_pb2_grpc

# The name the vllm fixture serves its tiny model as (the tiny profile answers as DEFAULT_MODEL too).
SERVED_NAME = "Qwen/Qwen3.5-4B"


def settings_for(**overrides: Any) -> LlmSettings:
    """Tiny-profile settings on a free port, with `overrides`."""
    return tiny_settings(LlmSettings, **overrides)


def vllm_settings(folder: Path, **overrides: Any) -> LlmSettings:
    """The vllm backend on a tiny model folder with random weights (`load_format="dummy"`): Qwen3.5 with
    its vision tower on a CUDA GPU; on vLLM's CPU build, the tiny Qwen3 text model (see save_tiny_text)."""
    import torch

    from services.llm.tiny import save_tiny, save_tiny_text

    save = save_tiny if torch.cuda.is_available() else save_tiny_text
    return settings_for(**{"profile": "full", "device": "auto", "backend": "vllm",
                           "model": str(save(folder, weights=False)), "served_model_name": SERVED_NAME,
                           "load_format": "dummy", "enforce_eager": True, "gpu_memory_utilization": 0.3,
                           "kv_cache_memory_bytes": 64 * 1024 * 1024, **overrides})


@contextlib.asynccontextmanager
async def serve_llm(backend: str = "transformers", folder: Path | None = None, **overrides: Any
                    ) -> AsyncIterator[tuple[llm_pb2_grpc.ChatServiceStub, ServiceRuntime]]:
    """Yields (stub, runtime) of the service: the tiny profile on transformers, or vllm on a tiny model
    written into `folder`; runtime.definition.services[0].servicer reaches the backend."""
    if backend == "vllm":
        if folder is None:
            raise ValueError("the vllm backend needs a folder to write its tiny model into")
        settings = vllm_settings(folder, **overrides)
    else:
        settings = settings_for(**overrides)
    async with connected(definition(settings), settings) as (runtime, channel):
        yield llm_pb2_grpc.ChatServiceStub(channel), runtime
