"""The FLUX.2 klein pipelines (diffusers Flux2KleinPipeline) the service runs, how they load, and the
two kinds of work they do: a batch of text-to-image generations in one call, and one edit.

Everything here blocks; the servicer runs it on its work queue's thread. A pipeline keeps state
between steps (its scheduler), so each one runs one call at a time (a lock per pipeline).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from diffusers import Flux2KleinInpaintPipeline, Flux2KleinPipeline
from PIL import Image

from services.common.devices import first_line, local_model, model_dtype
from services.common.errors import ModelLoadError
from services.common.modality import TINY_SOURCE
from services.image.catalog import BASE, DISTILLED, configured_models
from services.image.config import ImageSettings
from services.image.tiny import build_tiny_pipeline

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class Generation:
    """One text-to-image image to make."""

    pipeline: str  # DISTILLED or BASE
    prompt: str
    negative_prompt: str
    width: int
    height: int
    steps: int
    guidance: float
    seed: int

    @property
    def batch_key(self) -> tuple:
        """Generations with the same key can share one pipeline call."""
        return (self.pipeline, self.width, self.height, self.steps, self.guidance)


@dataclass(frozen=True)
class Edit:
    """One edit request: its reference images, and one seed per output image."""

    pipeline: str
    prompt: str
    negative_prompt: str
    images: tuple[Image.Image, ...]
    mask: Image.Image | None  # "L", white = repaint; same size as images[0]
    width: int
    height: int
    steps: int
    guidance: float
    seeds: tuple[int, ...]


def generator(seed: int) -> torch.Generator:
    """A CPU generator: the same seed gives the same starting noise on every device."""
    return torch.Generator("cpu").manual_seed(seed)


class KleinPipelines:
    """The loaded pipelines by role (DISTILLED, BASE) and where their weights came from."""

    def __init__(self, pipelines: dict[str, Flux2KleinPipeline], sources: dict[str, str], *,
                 out_layers: tuple[int, ...], max_sequence_length: int):
        self._pipelines = pipelines
        self.sources = sources
        self._out_layers = out_layers
        self._max_sequence_length = max_sequence_length
        self._locks = {role: threading.Lock() for role in pipelines}
        self._inpainters: dict[str, Flux2KleinInpaintPipeline] = {}

    @property
    def roles(self) -> set[str]:
        return set(self._pipelines)

    def multiple_of(self, role: str) -> int:
        """Output sides the pipeline makes exactly: multiples of its VAE factor times the 2x2 packing."""
        return self._pipelines[role].vae_scale_factor * 2

    def uses_cfg(self, role: str, guidance: float) -> bool:
        """Classifier-free guidance (and so the negative prompt) runs only on the base model above 1."""
        return not self._pipelines[role].config.is_distilled and guidance > 1

    def _common(self, role: str, guidance: float, negatives: list[str]) -> dict:
        pipeline = self._pipelines[role]
        cfg = self.uses_cfg(role, guidance)
        kwargs = {"guidance_scale": guidance if cfg else 1.0, "max_sequence_length": self._max_sequence_length,
                  "text_encoder_out_layers": self._out_layers, "output_type": "pil"}
        if cfg:  # the pipeline would use "" as the negative prompt; encode ours with its own encoder
            kwargs["negative_prompt_embeds"], _ = pipeline.encode_prompt(
                prompt=negatives, device=pipeline._execution_device,
                max_sequence_length=self._max_sequence_length, text_encoder_out_layers=self._out_layers)
        return kwargs

    def generate(self, jobs: Sequence[Generation]) -> list[Image.Image]:
        """One pipeline call for generations sharing a batch key; each has its own generator, so each
        image comes from its own seed's noise, whatever else is in the batch."""
        first = jobs[0]
        if any(job.batch_key != first.batch_key for job in jobs):
            raise ValueError("a generation batch must share model, size, steps and guidance")
        pipeline = self._pipelines[first.pipeline]
        with self._locks[first.pipeline], torch.inference_mode():
            result = pipeline(
                prompt=[job.prompt for job in jobs], height=first.height, width=first.width,
                num_inference_steps=first.steps, generator=[generator(job.seed) for job in jobs],
                **self._common(first.pipeline, first.guidance, [job.negative_prompt for job in jobs]))
        return list(result.images)

    def edit(self, job: Edit) -> list[Image.Image]:
        """Images edited from the references (or, with a mask, the first image repainted where the mask
        is white), one per seed, at exactly job.width x job.height."""
        n = len(job.seeds)
        step = self.multiple_of(job.pipeline)
        width, height = (max(step, round(side / step) * step) for side in (job.width, job.height))
        common = self._common(job.pipeline, job.guidance, [job.negative_prompt] * n)
        with self._locks[job.pipeline], torch.inference_mode():
            if job.mask is None:
                result = self._pipelines[job.pipeline](
                    image=list(job.images), prompt=[job.prompt] * n, height=height, width=width,
                    num_inference_steps=job.steps, generator=[generator(s) for s in job.seeds], **common)
            else:  # the inpainting pipeline works at the image's own size; the result is resized below
                result = self._inpainter(job.pipeline)(
                    image=job.images[0], mask_image=job.mask, prompt=[job.prompt] * n, strength=1.0,
                    num_inference_steps=job.steps, generator=[generator(s) for s in job.seeds], **common)
        size = (job.width, job.height)
        return [im if im.size == size else im.resize(size, Image.Resampling.LANCZOS) for im in result.images]

    def _inpainter(self, role: str) -> Flux2KleinInpaintPipeline:
        if role not in self._inpainters:  # the same modules (no copy), the inpainting call
            inpainter = Flux2KleinInpaintPipeline.from_pipe(self._pipelines[role])
            inpainter.set_progress_bar_config(disable=True)
            self._inpainters[role] = inpainter
        return self._inpainters[role]

    def warm_up(self) -> None:
        for role in self._pipelines:
            step = self.multiple_of(role)
            self.generate([Generation(role, "warm-up", "", step * 4, step * 4, 1, 1.0, 0)])


def load_pipelines(settings: ImageSettings, profile: str, device: str) -> KleinPipelines:
    """Builds (tiny) or loads (full) the configured models onto `device`."""
    out_layers = settings.out_layers(profile)
    roles = configured_models(settings)
    dtype = model_dtype(settings.dtype, profile, device)
    pipelines: dict[str, Flux2KleinPipeline] = {}
    sources: dict[str, str] = {}
    for seed, (role, model) in enumerate(roles.items()):
        if profile == "tiny":
            pipeline = build_tiny_pipeline(distilled=role == DISTILLED, seed=seed)
            if dtype != torch.float32:
                pipeline = pipeline.to(dtype=dtype)
            sources[role] = TINY_SOURCE
        else:
            shared = {}
            if role == BASE and settings.share_text_encoder:
                first = pipelines[DISTILLED]
                shared = {"text_encoder": first.text_encoder, "tokenizer": first.tokenizer, "vae": first.vae}
            pipeline = load_full(model, dtype=dtype, local_files_only=settings.local_files_only, **shared)
            sources[role] = model
            if pipeline.config.is_distilled != (role == DISTILLED):
                log.warning("%s is configured as the %s model but its config says is_distilled=%s", model, role,
                            pipeline.config.is_distilled)
        check_out_layers(pipeline, out_layers, model if profile == "full" else f"tiny {role} model")
        pipeline.set_progress_bar_config(disable=True)
        pipelines[role] = pipeline.to(device)
        log.info("image: %s model ready (%s, %s, %s)", role, sources[role], str(dtype).removeprefix("torch."),
                 device)
    return KleinPipelines(pipelines, sources, out_layers=out_layers,
                          max_sequence_length=settings.sequence_length(profile))


def load_full(model: str, *, dtype: torch.dtype, local_files_only: bool = False, **components) -> Flux2KleinPipeline:
    """Flux2KleinPipeline.from_pretrained(model) with a clear error when the weights are not there."""
    what_to_do = (f"download it where there is internet (`hf download {model} --local-dir /models/<name>`), then "
                  "point UNIVENCE_IMAGE_DISTILLED_MODEL / UNIVENCE_IMAGE_BASE_MODEL at that folder; or run the tiny "
                  "profile (UNIVENCE_IMAGE_PROFILE=tiny, random weights, noise output)")
    model = local_model(model, "model_index.json", "the image model", what_to_do, kind="diffusers pipeline")
    try:
        return Flux2KleinPipeline.from_pretrained(model, dtype=dtype, local_files_only=local_files_only,
                                                  **components)
    except (OSError, ValueError, ImportError) as exc:  # missing files, no hub, a gated repo, a bad config
        raise ModelLoadError(f"cannot load the image model {model!r} ({first_line(exc)}); {what_to_do}") from None


def check_out_layers(pipeline: Flux2KleinPipeline, out_layers: tuple[int, ...], name: str) -> None:
    """The configured text-encoder layers must exist and fill the transformer's text width."""
    layers = pipeline.text_encoder.config.num_hidden_layers
    if max(out_layers) > layers:
        raise ModelLoadError(f"text_encoder_out_layers {out_layers} reach past the {layers} layers of the "
                             f"{name}'s text encoder; set UNIVENCE_IMAGE_TEXT_ENCODER_OUT_LAYERS to layers it has")
    width = len(out_layers) * pipeline.text_encoder.config.hidden_size
    if width != pipeline.transformer.config.joint_attention_dim:
        raise ModelLoadError(f"{len(out_layers)} text-encoder layers give {width} features but the {name}'s "
                             f"transformer reads {pipeline.transformer.config.joint_attention_dim}; "
                             "set UNIVENCE_IMAGE_TEXT_ENCODER_OUT_LAYERS to match")
