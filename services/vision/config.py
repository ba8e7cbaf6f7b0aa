"""Settings of the vision service (TOML section `[vision]`, environment prefix UNIVENCE_VISION_)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from services.common.modality import ModalitySettings
from univence.registry import entry

MIB = 1024 * 1024
# SAM3's instance score a detection needs (sigmoid(logit) x sigmoid(presence)): the library's default
# for the real model; the tiny profile's random weights score lower, so it uses its own.
FULL_SCORE_THRESHOLD = 0.5
TINY_SCORE_THRESHOLD = 0.3


class VisionSettings(ModalitySettings):
    section: ClassVar[str] = "vision"

    port: int = entry("vision").port
    metrics_port: int = entry("vision").metrics_port
    # Requests waiting or running (a video is one item); one more is refused at once.
    queue_max_pending: int = 16

    # -- models (full profile; the tiny profile builds its own). Empty: that model is not served. --
    # SAM3 for text prompts (Sam3Model) and for points (Sam3TrackerModel): a hub id or a folder written
    # by `save_pretrained` holding both (facebook/sam3 does).
    sam3_model: str = "facebook/sam3"
    # Where Sam3TrackerModel (points) loads from when it is not `sam3_model`.
    sam3_tracker_model: str = ""
    # Real-ESRGAN checkpoints (.pth or .safetensors) loaded through spandrel: a local path, or
    # "<hub owner>/<hub repo>/<file name>" fetched with huggingface_hub. The official files are the
    # GitHub releases of xinntao/Real-ESRGAN (RealESRGAN_x2plus.pth, RealESRGAN_x4plus.pth,
    # realesr-animevideov3.pth).
    realesrgan_2x_weights: str = "/models/realesrgan/RealESRGAN_x2plus.pth"
    realesrgan_4x_weights: str = "/models/realesrgan/RealESRGAN_x4plus.pth"
    realesrgan_4x_anime_weights: str = "/models/realesrgan/realesr-animevideov3.pth"
    # Swin2SR (transformers Swin2SRForImageSuperResolution, a x4 model): a hub id or a local folder.
    swin2sr_model: str = "caidas/swin2SR-realworld-sr-x4-64-bsrgan-psnr"
    # SAM3's weights dtype; `auto` is bfloat16 on CUDA and float32 on CPU. The upscalers run in float32.
    sam3_dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    # Only with the full profile: a hub id is looked up in the local cache only (no download).
    local_files_only: bool = False

    # -- how the models run --
    # SAM3 instance score a detection needs; 0 means the profile's default (full 0.5, tiny 0.3).
    score_threshold: float = Field(default=0.0, ge=0, lt=1)
    # Mask probability above which a pixel is the object (binary masks; alpha keeps the probability).
    mask_threshold: float = Field(default=0.5, gt=0, lt=1)
    # The text prompt used when a background removal names none: the object SAM3 scores highest for
    # it is kept ("the most salient object").
    salient_prompt: str = "object"
    # Upscaling runs in tiles of this many input pixels a side, each with `upscale_tile_overlap` pixels
    # of context on every side that is computed and thrown away: memory stays flat whatever the input.
    # 0 turns tiling off (one model call for the whole image).
    upscale_tile: int = Field(default=256, ge=0)
    upscale_tile_overlap: int = Field(default=32, ge=0, le=256)
    # Frames of a video SAM3 reads in one model call.
    video_batch_frames: int = Field(default=4, ge=1, le=64)
    # VP9 quality of the result (constant quality: lower is better and bigger) and libvpx's speed (0-8).
    video_crf: int = Field(default=30, ge=0, le=63)
    video_cpu_used: int = Field(default=4, ge=0, le=8)

    # -- limits, checked before any work --
    max_prompt_chars: int = Field(default=1000, gt=0)
    max_points: int = Field(default=16, ge=1)
    # Bytes of one encoded input image.
    max_input_image_mb: float = Field(default=20.0, gt=0)
    # Pixels of one input image as its header declares them; larger ones are never decoded.
    max_input_image_pixels: int = Field(default=4096 * 4096, gt=0)
    # Pixels of an upscaled image (input pixels x scale squared); a larger result is refused up front.
    max_output_pixels: int = Field(default=8192 * 8192, gt=0)
    # Largest Lanczos scale factor (the models' factors are their own).
    max_lanczos_scale: int = Field(default=4, ge=2, le=16)
    # The input video: bytes, duration, frames, and pixels per frame, read from its headers before
    # anything is decoded.
    max_video_mb: float = Field(default=48.0, gt=0)
    max_video_seconds: float = Field(default=120.0, gt=0)
    max_video_frames: int = Field(default=3600, ge=1)
    max_video_pixels: int = Field(default=1920 * 1080, gt=0)
    # PNG zlib level of the returned images (0-9): lower is faster and bigger.
    png_compress_level: int = Field(default=6, ge=0, le=9)

    @model_validator(mode="after")
    def _check(self) -> VisionSettings:
        if self.upscale_tile and self.upscale_tile < 16:
            raise ValueError("upscale_tile must be 0 (no tiles) or at least 16 pixels")
        if self.max_video_mb >= self.max_message_mb or self.max_input_image_mb >= self.max_message_mb:
            raise ValueError(f"max_video_mb and max_input_image_mb must stay below max_message_mb "
                             f"({self.max_message_mb}): inputs travel inside one gRPC message")
        if not self.salient_prompt.strip():
            raise ValueError("salient_prompt must name what a background removal without a prompt keeps")
        return self

    def threshold(self, profile: str) -> float:
        return self.score_threshold or (TINY_SCORE_THRESHOLD if profile == "tiny" else FULL_SCORE_THRESHOLD)

    @property
    def max_input_image_bytes(self) -> int:
        return int(self.max_input_image_mb * MIB)

    @property
    def max_video_bytes(self) -> int:
        return int(self.max_video_mb * MIB)
