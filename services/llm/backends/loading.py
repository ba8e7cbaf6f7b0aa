"""Which backend serves the chat model, and how it is built: vLLM (GPU, continuous batching) or
transformers (CPU or GPU; the tiny profile and GGUF files)."""

from __future__ import annotations

import asyncio
import importlib.util

from services.common.modality import Placement
from services.common.workqueue import WorkQueue
from services.llm.backends.base import Backend
from services.llm.config import LlmSettings


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


async def load_backend(settings: LlmSettings, placement: Placement) -> Backend:
    """The chosen backend, started: vLLM starts its own engine process; transformers loads in a thread."""
    if choose_backend(settings, placement.profile, placement.device) == "vllm":
        from services.llm.backends.vllm_backend import VllmBackend

        return await VllmBackend.start(settings)
    return await asyncio.to_thread(build_transformers, settings, placement.profile, placement.device,
                                   placement.queue)


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
