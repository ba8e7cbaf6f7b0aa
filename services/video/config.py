"""Settings of the video service (TOML section `[video]`, environment prefix UNIVENCE_VIDEO_)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from services.common.modality import ModalitySettings
from univence.registry import entry

MIB = 1024 * 1024
# The Wan VAE compresses time 4x: a video has 4k+1 frames (the first is the input image).
FRAME_MULTIPLE = 4


class VideoSettings(ModalitySettings):
    section: ClassVar[str] = "video"

    port: int = entry("video").port
    metrics_port: int = entry("video").metrics_port
    # Videos waiting or running; one more is refused at once (RESOURCE_EXHAUSTED, HTTP 429). A video
    # holds the GPU for tens of seconds, so the queue is short: a client is told "busy" rather than
    # left waiting minutes.
    queue_max_pending: int = Field(default=4, ge=1)

    # -- which engine ---------------------------------------------------------------------------------
    # `turbodiffusion`: TurboDiffusion's rCM sampler (CUDA only, 480p and 720p); `diffusers`: diffusers'
    # WanImageToVideoPipeline (any device, 480p to 1080p, and the tiny profile); `auto`: TurboDiffusion
    # where it is installed and a GPU is used, else diffusers.
    backend: Literal["auto", "diffusers", "turbodiffusion"] = "auto"

    # -- diffusers (full profile) ---------------------------------------------------------------------
    # A Wan2.2 I2V A14B pipeline in diffusers format: a hub id or a folder written by `save_pretrained`.
    # Few-step (1-4) sampling needs step-distilled weights (e.g. a Lightning/rCM merge) saved that way.
    model: str = "Wan-AI/Wan2.2-I2V-A14B-Diffusers"
    # Weights' dtype; `auto` is bfloat16 on CUDA and float32 on CPU (the VAE always runs in float32).
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    # Classifier-free guidance; 1.0 (none) suits step-distilled weights, above 1 uses negative_prompt.
    guidance_scale: float = Field(default=1.0, ge=1.0, le=20.0)
    # Prompt tokens umT5 reads (longer prompts are cut); 0 means the profile's default (full 512, tiny 32).
    max_sequence_length: int = Field(default=0, ge=0, le=512)
    # Only with the full profile: a hub id is looked up in the local cache only (no download).
    local_files_only: bool = False

    # -- TurboDiffusion (full profile, CUDA) -----------------------------------------------------------
    turbo_high_noise_model: str = "/models/turbodiffusion/TurboWan2.2-I2V-A14B-high-720P-quant.pth"
    turbo_low_noise_model: str = "/models/turbodiffusion/TurboWan2.2-I2V-A14B-low-720P-quant.pth"
    turbo_vae: str = "/models/turbodiffusion/Wan2.1_VAE.pth"
    turbo_text_encoder: str = "/models/turbodiffusion/models_t5_umt5-xxl-enc-bf16.pth"
    # Sparse attention of the checkpoints (`sagesla` needs SpargeAttn) and its top-k ratio.
    turbo_attention: Literal["sla", "sagesla", "original"] = "sagesla"
    turbo_sla_topk: float = Field(default=0.1, gt=0, le=1)
    # The quantized checkpoints (`-quant`) need quantized linear layers.
    turbo_quant_linear: bool = True
    # The timestep (fraction of 1000) below which the low-noise expert takes over.
    turbo_boundary: float = Field(default=0.9, gt=0, lt=1)

    # -- sampling (both backends) ---------------------------------------------------------------------
    # rCM's initial TrigFlow sigma: the few-step schedule starts at atan(sigma_max) (backends.rcm_sigmas).
    sigma_max: float = Field(default=200.0, gt=0)

    # -- output ---------------------------------------------------------------------------------------
    fps: int = Field(default=16, ge=1, le=60)
    # libx264 constant quality (lower is better and bigger) and speed preset.
    crf: int = Field(default=18, ge=0, le=51)
    preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow"] = "medium"
    # JPEG quality of the thumbnail (the first frame).
    thumbnail_quality: int = Field(default=85, ge=1, le=95)

    # -- limits, checked before any work --------------------------------------------------------------
    max_prompt_chars: int = Field(default=2000, gt=0)
    # Bytes of the encoded input image, and its pixels as its header declares them.
    max_input_image_mb: float = Field(default=20.0, gt=0)
    max_input_image_pixels: int = Field(default=4096 * 4096, gt=0)
    # Frames of a video (4k+1); 81 (about 5 s at 16 fps) is what Wan2.2 and TurboDiffusion are trained on.
    min_frames: int = Field(default=5, ge=1)
    max_frames: int = Field(default=81, ge=1, le=241)
    default_frames: int = Field(default=81, ge=1)
    # Sampling steps (the API's num_steps): TurboDiffusion's rCM sampler does 1 to 4.
    max_steps: int = Field(default=4, ge=1, le=4)
    default_steps: int = Field(default=4, ge=1, le=4)

    @model_validator(mode="after")
    def _check(self) -> VideoSettings:
        for name in ("min_frames", "max_frames", "default_frames"):
            if getattr(self, name) % FRAME_MULTIPLE != 1:
                raise ValueError(f"{name} must be 4k+1 (5, 9, ..., 81): the Wan VAE compresses time 4x")
        if not self.min_frames <= self.default_frames <= self.max_frames:
            raise ValueError("default_frames must lie between min_frames and max_frames")
        if self.default_steps > self.max_steps:
            raise ValueError("default_steps must not exceed max_steps")
        if self.max_input_image_mb >= self.max_message_mb:
            raise ValueError(f"max_input_image_mb must stay below max_message_mb ({self.max_message_mb}): the "
                             "image travels inside one gRPC message")
        return self

    def sequence_length(self, profile: str) -> int:
        return self.max_sequence_length or (32 if profile == "tiny" else 512)

    @property
    def max_input_image_bytes(self) -> int:
        return int(self.max_input_image_mb * MIB)
