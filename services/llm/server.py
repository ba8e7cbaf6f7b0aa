"""The LLM service's definition and process entry point (`python -m services.llm`)."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from pathlib import Path

from services.common.devices import resolve_device, resolve_profile
from services.common.server import GrpcService, ServiceDefinition, run
from services.common.workqueue import WorkQueue
from services.llm.backends.base import Backend
from services.llm.config import DEFAULT_MODEL, LlmSettings
from services.llm.servicer import ChatServicer
from univence.common.v1 import common_pb2
from univence.llm.v1 import llm_pb2, llm_pb2_grpc

log = logging.getLogger(__name__)
TASK = "chat.completion"


def effective_profile(settings: LlmSettings) -> str:
    """A configured GGUF file is real weights: it is served (profile full) whatever profile the stack
    picked, so a CPU machine without a GPU chats for real."""
    if settings.gguf_path:
        return "full"
    return resolve_profile(settings.profile)


def choose_backend(settings: LlmSettings, profile: str, device: str) -> str:
    """`transformers` for the tiny profile and GGUF files; vllm where asked for, or (auto) where it is
    installed and there is a CUDA GPU."""
    if profile == "tiny" or settings.gguf_path:
        return "transformers"
    if settings.backend != "auto":
        return settings.backend
    if device.startswith("cuda") and importlib.util.find_spec("vllm") is not None:
        return "vllm"
    return "transformers"


def served_name(settings: LlmSettings, profile: str) -> str:
    if settings.served_model_name:
        return settings.served_model_name
    if settings.gguf_path:
        return Path(settings.gguf_path).stem if settings.gguf_path != "smollm2" else "SmolLM2-135M-Instruct"
    return DEFAULT_MODEL if profile == "tiny" else settings.model


def source_of(settings: LlmSettings, profile: str) -> str:
    if profile == "tiny":
        return "tiny-random"
    return settings.gguf_path or settings.model


def build_transformers(settings: LlmSettings, profile: str, device: str, queue: WorkQueue) -> Backend:
    import torch

    from services.llm.backends.transformers_backend import TransformersBackend, load_gguf, load_pretrained

    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    elif profile == "tiny" and device == "cpu":
        # The tiny model's ops are too small to gain from intra-op threads, and their barriers cost
        # 10x and more when the cores are shared with other processes (measured with the edge and
        # tests beside it on 2 cores).
        torch.set_num_threads(1)
    if device == "cpu":
        # Before the first torch op here, so torch's CPU worker threads, created from this thread,
        # inherit it (see TransformersBackend: the generation threads set it too).
        torch.set_flush_denormal(True)
    if profile == "tiny":
        from services.llm.tiny import build_tiny

        tiny = build_tiny()
        model, tokenizer, image_processor = tiny.model.to(device), tiny.tokenizer, tiny.image_processor
    elif settings.gguf_path:
        model, tokenizer, image_processor = load_gguf(settings.gguf_path, device, settings.dtype)
    else:
        model, tokenizer, image_processor = load_pretrained(settings.model, device, settings.dtype)
    return TransformersBackend(model, tokenizer, image_processor, queue=queue, max_model_len=settings.max_model_len,
                               default_max_tokens=settings.default_max_tokens,
                               enable_thinking=settings.enable_thinking)


def definition(settings: LlmSettings) -> ServiceDefinition:
    """The model loads in `load` (health stays NOT_SERVING until then)."""
    profile = effective_profile(settings)
    device = resolve_device(settings.device)
    backend_name = choose_backend(settings, profile, device)
    served = served_name(settings, profile)
    servicer = ChatServicer(settings)
    opened: list[Backend] = []
    queue = WorkQueue("llm", max_pending=settings.queue_max_pending, concurrency=settings.queue_concurrency)

    async def load() -> None:
        if backend_name == "vllm":
            from services.llm.backends.vllm_backend import VllmBackend

            backend: Backend = await VllmBackend.start(settings)
        else:
            backend = await asyncio.to_thread(build_transformers, settings, profile, device, queue)
        opened.append(backend)
        servicer.attach(backend, served)
        log.info("llm: %s on %s with %s (profile %s%s), context %d tokens, images %s", served, device, backend_name,
                 profile, ": tiny random weights, outputs are noise" if profile == "tiny" else "",
                 backend.max_model_len, "yes" if backend.supports_images else "no")

    async def close() -> None:
        while opened:
            await opened.pop().close()
        queue.close()

    return ServiceDefinition(
        name="llm",
        services=[GrpcService.of(llm_pb2, llm_pb2_grpc, "ChatService", servicer)],
        load=load,
        close=close,
        description=f"chat model {served} ({backend_name}, {profile})",
        profile=profile,
        device=device,
        models=[common_pb2.ModelInfo(id=served, task=TASK, source=source_of(settings, profile))],
    )


def main() -> None:
    run(LlmSettings(), definition)


if __name__ == "__main__":
    main()
