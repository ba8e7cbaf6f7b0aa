"""Settings of the image service (TOML section `[image]`, environment prefix UNIVENCE_IMAGE_)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from services.common.modality import ModalitySettings
from univence.registry import entry

# The Qwen3 hidden states FLUX.2 klein reads (layers 9, 18 and 27 of Qwen3-4B); the tiny text encoder
# has only two layers, so it reads its embeddings and both layers instead.
FULL_TEXT_ENCODER_OUT_LAYERS = (9, 18, 27)
TINY_TEXT_ENCODER_OUT_LAYERS = (0, 1, 2)


class ImageSettings(ModalitySettings):
    section: ClassVar[str] = "image"

    port: int = entry("image").port
    metrics_port: int = entry("image").metrics_port
    # Requests waiting or running (each image of a request counts); one more is refused at once.
    queue_max_pending: int = 32

    # The distilled model (4 steps, no CFG): every public text-to-image model runs on it. A hub id or
    # a local folder written by `save_pretrained` (full profile; the tiny profile builds its own).
    distilled_model: str = "black-forest-labs/FLUX.2-klein-4B"
    # The base model (50 steps, CFG with negative prompts); empty serves the distilled model only.
    base_model: str = "black-forest-labs/FLUX.2-klein-base-4B"
    # Load the base model with the distilled model's text encoder and VAE instead of its own (saves
    # about 8 GB of GPU memory; only right when both checkpoints ship the same ones).
    share_text_encoder: bool = False
    # Which Qwen3 hidden states make the prompt embedding; empty means the profile's default
    # (full: 9, 18, 27; tiny: 0, 1, 2).
    text_encoder_out_layers: list[int] = Field(default_factory=list)
    # Prompt tokens the text encoder reads (longer prompts are cut); 0 means the profile's default
    # (full: 512, tiny: 64).
    max_sequence_length: int = Field(default=0, ge=0, le=4096)
    # Weights' dtype; `auto` is bfloat16 on CUDA and float32 on CPU.
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    # Only with the full profile: a hub id is looked up in the local cache only (no download).
    local_files_only: bool = False

    # Batching: compatible generations (same model, size, steps, guidance, no reference images) run as
    # one pipeline call of up to `max_batch_size` images, waiting at most `max_batch_wait_ms` to fill.
    max_batch_size: int = Field(default=4, ge=1, le=64)
    max_batch_wait_ms: float = Field(default=10.0, ge=0, le=10_000)

    # Limits, checked before any work.
    max_prompt_chars: int = Field(default=4000, gt=0)
    max_n: int = Field(default=4, ge=1, le=16)
    max_steps: int = Field(default=100, ge=1)
    max_guidance: float = Field(default=30.0, gt=0)
    max_input_images: int = Field(default=4, ge=1)
    # Bytes of one encoded input image (or mask).
    max_input_image_mb: float = Field(default=12.0, gt=0)
    # Pixels of one input image as its header declares them; larger ones are never decoded
    # (decompression bombs).
    max_input_image_pixels: int = Field(default=4096 * 4096, gt=0)
    # Largest edit output side; defaults that follow a larger input image are scaled down to it.
    max_edit_side: int = Field(default=2048, ge=64)
    # PNG zlib level of the returned images (0-9): lower is faster and bigger.
    png_compress_level: int = Field(default=6, ge=0, le=9)

    @model_validator(mode="after")
    def _check(self) -> ImageSettings:
        if not self.distilled_model:
            raise ValueError("distilled_model must name a model: every public text-to-image model runs on it")
        if self.text_encoder_out_layers and any(i < 0 for i in self.text_encoder_out_layers):
            raise ValueError("text_encoder_out_layers must be hidden-state indices (0 or more)")
        return self

    def out_layers(self, profile: str) -> tuple[int, ...]:
        if self.text_encoder_out_layers:
            return tuple(self.text_encoder_out_layers)
        return TINY_TEXT_ENCODER_OUT_LAYERS if profile == "tiny" else FULL_TEXT_ENCODER_OUT_LAYERS

    def sequence_length(self, profile: str) -> int:
        return self.max_sequence_length or (64 if profile == "tiny" else 512)

    @property
    def max_input_image_bytes(self) -> int:
        return int(self.max_input_image_mb * 1024 * 1024)
