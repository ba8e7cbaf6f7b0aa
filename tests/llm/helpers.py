"""The LLM service in the tiny profile (a real Qwen3.5 model class with tiny random weights) on a free
port, and small request builders."""

from __future__ import annotations

import contextlib
import io
from collections.abc import AsyncIterator

import grpc
from PIL import Image

from services.llm.config import LlmSettings
from services.llm.server import definition
from tests.support.runtime import running_service
from univence.llm.v1 import llm_pb2, llm_pb2_grpc


def tiny_settings(**overrides) -> LlmSettings:
    return LlmSettings(**{"port": 0, "metrics_port": 0, "profile": "tiny", "device": "cpu", "log_level": "WARNING",
                          **overrides})


@contextlib.asynccontextmanager
async def serve_llm(**overrides) -> AsyncIterator[tuple[llm_pb2_grpc.ChatServiceStub, object]]:
    """Yields (stub, runtime); runtime.definition / the servicer reach the backend."""
    settings = tiny_settings(**overrides)
    async with running_service(definition(settings), settings) as runtime, \
            grpc.aio.insecure_channel(f"127.0.0.1:{runtime.port}") as channel:
        yield llm_pb2_grpc.ChatServiceStub(channel), runtime


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
