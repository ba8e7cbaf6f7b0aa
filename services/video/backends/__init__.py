"""The engines that turn a checked request into frames, and which one a deployment runs.

- `wan.py`: diffusers' WanImageToVideoPipeline (Wan2.2 I2V A14B: two experts, high and low noise),
  on any device, 480p to 1080p; the tiny profile builds it from tiny configs (tiny.py).
- `turbo.py`: TurboDiffusion's own code (rCM sampler, sparse attention), CUDA only, 480p and 720p;
  imported only where it is installed.

Both run one video at a time (the work queue's slot) and report through `Progress` on the work
thread: its `stage(...)` raises `Stopped` once the caller has gone, so a cancelled video stops at the
next denoising step and frees the GPU.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from PIL import Image

from services.video.catalog import DIFFUSERS, TURBODIFFUSION
from services.video.config import VideoSettings

log = logging.getLogger(__name__)

ENCODING_PROMPT, DENOISING, DECODING, ENCODING_VIDEO = "encoding prompt", "denoising", "decoding", "encoding video"


@dataclass(frozen=True)
class VideoJob:
    """One checked GenerateVideo request: the first frame already at the output size."""

    image: Image.Image  # RGB, exactly width x height
    prompt: str
    negative_prompt: str | None  # None: the model's default
    num_frames: int
    steps: int
    width: int
    height: int
    resolution: str
    use_ode: bool
    seed: int


# rCM's intermediate TrigFlow times for 2, 3 and 4 steps (TurboDiffusion's wan2.2_i2v_infer.py).
RCM_MID_TIMES = (1.5, 1.4, 1.0)


def rcm_sigmas(steps: int, sigma_max: float) -> list[float]:
    """The noise levels (rectified flow, 1 = pure noise) a few-step video starts each step at: rCM's
    TrigFlow times atan(sigma_max), then 1.5, 1.4, 1.0 as steps allow, mapped t -> sin t / (cos t + sin t).
    Both backends sample on it (4 steps: 0.995, 0.934, 0.855, 0.607, then 0)."""
    times = [math.atan(sigma_max), *RCM_MID_TIMES[: steps - 1]]
    return [math.sin(t) / (math.cos(t) + math.sin(t)) for t in times]


class Stopped(Exception):
    """The caller went away: raised from a progress report on the work thread, it ends the work there."""


class Progress:
    """What the engine reports while it works (on the work thread): `stage(name, step)` with the
    denoising steps done so far. `listener` forwards it to the RPC; `stop` set means the caller left."""

    def __init__(self, listener: Callable[[str, int], None], stop: threading.Event):
        self.listener = listener
        self.stop = stop
        self.step = 0  # the denoising steps done when last reported

    def stage(self, name: str, step: int) -> None:
        if self.stop.is_set():
            raise Stopped
        self.step = step
        self.listener(name, step)


class VideoBackend(Protocol):
    """An engine: its name (catalog.DIFFUSERS / TURBODIFFUSION) and what it generates."""

    name: str

    def generate(self, job: VideoJob, progress: Progress) -> np.ndarray:
        """The video's frames, num_frames x height x width x 3, uint8 RGB; blocks."""
        ...

    def warm_up(self) -> None:
        """One short video, so the first request does not pay for kernel compilation and caches."""
        ...


def turbo_installed() -> bool:
    """TurboDiffusion's modules are importable (its repo's `turbodiffusion` and `turbodiffusion/inference`
    folders on the path, its CUDA extensions built)."""
    return all(importlib.util.find_spec(name) is not None for name in ("rcm", "modify_model"))


def resolve_backend(settings: VideoSettings, profile: str, device: str) -> str:
    """The backend a setting means here: `auto` is TurboDiffusion for the full profile on a GPU where it
    is installed, else diffusers (which also builds the tiny profile). An explicit `turbodiffusion` stays
    so even where it cannot run: loading it then says what to install."""
    if settings.backend != "auto":
        return settings.backend
    if profile == "full" and device.startswith("cuda") and turbo_installed():
        return TURBODIFFUSION
    return DIFFUSERS


def load_backend(settings: VideoSettings, profile: str, device: str) -> VideoBackend:
    """Builds (tiny) or loads (full) the backend the settings name onto `device` (ModelLoadError says
    what is missing)."""
    backend = resolve_backend(settings, profile, device)
    if backend == TURBODIFFUSION:
        from services.video.backends.turbo import load_turbo

        return load_turbo(settings, profile, device)
    from services.video.backends.wan import load_wan

    return load_wan(settings, profile, device)
