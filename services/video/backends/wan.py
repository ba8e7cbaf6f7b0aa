"""The diffusers backend: WanImageToVideoPipeline (Wan2.2 I2V A14B, two experts switched at the
pipeline's boundary_ratio) with a flow-matching Euler sampler.

- Sampler: TurboDiffusion's, in diffusers' terms. `FewStepSampler` is `FlowMatchEulerDiscreteScheduler`
  on rCM's few-step noise levels (backends.rcm_sigmas; the stock schedule jumps from 1.0 to 0.02 in its
  first of two steps). `use_ode` picks the Euler step x + (s_next - s) v, rCM's ODE; otherwise
  `stochastic_sampling` takes x0 = x - s v and re-noises it to s_next, rCM's SDE step exactly. Two
  pipelines share every module and differ only in that scheduler.
- Seeds: the starting noise comes from a CPU generator (the same seed gives the same video on any
  device); the stochastic step draws from the global generator, so the call runs seeded inside
  `torch.random.fork_rng` (one call at a time: the pipeline lock).
- Progress and cancellation: the prompt is encoded first (its own stage), then the pipeline runs on the
  embeddings with `callback_on_step_end`, which reports each step and raises `Stopped` once the caller
  has gone; the last step's report announces decoding (the pipeline decodes right after it).
"""

from __future__ import annotations

import logging
import threading

import numpy as np
import torch
from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanImageToVideoPipeline

from services.common.devices import first_line, local_model, looks_like_path, model_dtype
from services.common.errors import ModelLoadError
from services.common.modality import TINY_SOURCE
from services.video.backends import DECODING, DENOISING, ENCODING_PROMPT, Progress, VideoJob, rcm_sigmas
from services.video.catalog import DIFFUSERS
from services.video.config import VideoSettings
from services.video.tiny import build_tiny_pipeline

log = logging.getLogger(__name__)


class FewStepSampler(FlowMatchEulerDiscreteScheduler):
    """Flow-matching Euler on rCM's noise levels for 1-4 steps (more steps: the stock schedule)."""

    def __init__(self, *, sigma_max: float, stochastic: bool):
        super().__init__(shift=1.0, stochastic_sampling=stochastic)  # shift 1: the levels are used as given
        self.rcm_sigma_max = sigma_max

    def set_timesteps(self, num_inference_steps: int | None = None, device=None, sigmas=None, mu=None,
                      timesteps=None) -> None:
        if sigmas is None and timesteps is None and num_inference_steps and num_inference_steps <= 4:
            sigmas = rcm_sigmas(num_inference_steps, self.rcm_sigma_max)
        super().set_timesteps(num_inference_steps, device, sigmas=sigmas, mu=mu, timesteps=timesteps)


class WanBackend:
    name = DIFFUSERS

    def __init__(self, pipeline: WanImageToVideoPipeline, source: str, *, sigma_max: float, guidance: float,
                 sequence_length: int):
        config = pipeline.config
        self._pipelines = {}
        for ode in (True, False):  # the same modules (no copy), each with its own sampler
            sampler = FewStepSampler(sigma_max=sigma_max, stochastic=not ode)
            self._pipelines[ode] = WanImageToVideoPipeline(
                **{**pipeline.components, "scheduler": sampler}, boundary_ratio=config.boundary_ratio,
                expand_timesteps=config.expand_timesteps)
            self._pipelines[ode].set_progress_bar_config(disable=True)
        self.source = source
        self.guidance = guidance
        self.sequence_length = sequence_length
        self._lock = threading.Lock()

    def generate(self, job: VideoJob, progress: Progress) -> np.ndarray:
        pipeline = self._pipelines[job.use_ode]
        cfg = self.guidance > 1.0
        device = pipeline._execution_device

        def on_step(_pipe, i: int, _t, _tensors) -> dict:
            progress.stage(DENOISING, i + 1)
            if i + 1 == job.steps:
                progress.stage(DECODING, job.steps)
            return {}

        devices = [device] if device.type == "cuda" else []
        with self._lock, torch.inference_mode(), torch.random.fork_rng(devices=devices):
            torch.manual_seed(job.seed)
            progress.stage(ENCODING_PROMPT, 0)
            positive, negative = pipeline.encode_prompt(
                job.prompt, negative_prompt=job.negative_prompt if cfg else None, do_classifier_free_guidance=cfg,
                max_sequence_length=self.sequence_length, device=device)
            output = pipeline(
                image=job.image, prompt_embeds=positive, negative_prompt_embeds=negative, height=job.height,
                width=job.width, num_frames=job.num_frames, num_inference_steps=job.steps,
                guidance_scale=self.guidance, generator=torch.Generator("cpu").manual_seed(job.seed),
                output_type="np", callback_on_step_end=on_step)
        frames = output.frames[0]
        return np.clip(np.rint(frames * 255.0), 0, 255).astype(np.uint8)

    def warm_up(self) -> None:
        from PIL import Image

        step = 16  # the full model's size multiple (VAE 8 x patch 2)
        self.generate(VideoJob(Image.new("RGB", (step * 2, step), (90, 120, 150)), "warm-up", None, 5, 1,
                               step * 2, step, "warm-up", True, 0), Progress(lambda *_: None, threading.Event()))


def load_wan(settings: VideoSettings, profile: str, device: str) -> WanBackend:
    """The tiny pipeline, or the configured one from the hub or a folder, on `device`."""
    dtype = model_dtype(settings.dtype, profile, device)
    if profile == "tiny":
        pipeline, source = build_tiny_pipeline(), TINY_SOURCE
        if dtype != torch.float32:
            pipeline.transformer.to(dtype=dtype)
            pipeline.transformer_2.to(dtype=dtype)
    else:
        pipeline, source = load_full(settings, dtype), settings.model
    pipeline.to(device)
    log.info("video: diffusers Wan2.2 I2V ready (%s, %s, %s)", source, str(dtype).removeprefix("torch."), device)
    return WanBackend(pipeline, source, sigma_max=settings.sigma_max, guidance=settings.guidance_scale,
                      sequence_length=settings.sequence_length(profile))


def load_full(settings: VideoSettings, dtype: torch.dtype) -> WanImageToVideoPipeline:
    """WanImageToVideoPipeline.from_pretrained with the VAE in float32 (Wan's advice for clean decoding),
    or a ModelLoadError that names the model and what to do."""
    model = settings.model
    hub_id = model if not looks_like_path(model) else VideoSettings.model_fields["model"].default
    what_to_do = (f"download it where there is internet (`hf download {hub_id} --local-dir /models/wan2.2-i2v`), "
                  "then point UNIVENCE_VIDEO_MODEL at that folder; or use TurboDiffusion on a GPU "
                  "(UNIVENCE_VIDEO_BACKEND=turbodiffusion); or run the tiny profile (UNIVENCE_VIDEO_PROFILE=tiny, "
                  "random weights, noise output)")
    reference = local_model(model, "model_index.json", "the video model", what_to_do)
    try:
        vae = AutoencoderKLWan.from_pretrained(reference, subfolder="vae", dtype=torch.float32,
                                               local_files_only=settings.local_files_only)
        return WanImageToVideoPipeline.from_pretrained(reference, vae=vae, dtype=dtype,
                                                       local_files_only=settings.local_files_only)
    except (OSError, ValueError, ImportError) as exc:  # missing files, no hub, a gated repo, a bad config
        raise ModelLoadError(f"cannot load the video model {model!r} ({first_line(exc)}); {what_to_do}") from None
