"""The public model name of the video service, the resolution classes and the sizes they mean, and what
each backend serves.

A resolution class is a size per orientation: the input image's orientation (landscape when it is at
least as wide as high, else portrait) picks which, and the image is cropped to that aspect (centred)
and resized to it. The sizes are TurboDiffusion's and Wan's own 16:9 / 9:16 ones; the tiny profile uses
small sizes of about the same aspect so that CPU tests take seconds. TurboDiffusion does 480p and 720p
only: a deployment on it answers 1080p with INVALID_REQUEST, the diffusers backend makes all three.

This table is the only one: `model_infos` publishes it (ModelInfo.sizes, and in ModelInfo.limits each
class's landscape width and height as this profile makes them and its nominal short side) and the edge
resolves names, sizes and bounds from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.common.modality import TINY_SOURCE
from services.video.config import VideoSettings
from univence.common.v1 import common_pb2
from univence.video.v1 import video_pb2

MODEL_ID = "wan2.2-i2v-a14b"
ALIASES = ("turbodiffusion", "turbowan2.2-i2v-a14b-720p", "Wan-AI/Wan2.2-I2V-A14B")
TASK = "video.generation"
DIFFUSERS, TURBODIFFUSION = "diffusers", "turbodiffusion"
MP4 = "video/mp4"


@dataclass(frozen=True)
class Resolution:
    """A resolution class the API names, and its landscape (width, height) per profile."""

    name: str
    value: int  # its video.v1.Resolution
    full: tuple[int, int]
    tiny: tuple[int, int]

    def size(self, profile: str, image_size: tuple[int, int]) -> tuple[int, int]:
        """(width, height) for an input image of `image_size`: landscape, or portrait (swapped)."""
        width, height = self.tiny if profile == "tiny" else self.full
        return (width, height) if image_size[0] >= image_size[1] else (height, width)


R = video_pb2.Resolution
RESOLUTIONS: tuple[Resolution, ...] = (
    Resolution("480p", R.RESOLUTION_480P, (832, 480), (80, 48)),
    Resolution("720p", R.RESOLUTION_720P, (1280, 720), (112, 64)),
    Resolution("1080p", R.RESOLUTION_1080P, (1920, 1080), (144, 80)),
)
DEFAULT_RESOLUTION = "480p"
# What each backend makes (TurboDiffusion's checkpoints and sampler: 480p and 720p only).
BACKEND_RESOLUTIONS = {DIFFUSERS: ("480p", "720p", "1080p"), TURBODIFFUSION: ("480p", "720p")}
_BY_VALUE = {r.value: r for r in RESOLUTIONS}


def resolution(value: int) -> Resolution | None:
    """The class a Resolution value means (UNSPECIFIED: the default); None for an unknown value."""
    if value == R.RESOLUTION_UNSPECIFIED:
        return next(r for r in RESOLUTIONS if r.name == DEFAULT_RESOLUTION)
    return _BY_VALUE.get(value)


def source(settings: VideoSettings, profile: str, backend: str) -> str:
    """The weights the backend loads (ModelInfo.source)."""
    if profile == "tiny":
        return TINY_SOURCE
    return settings.turbo_high_noise_model if backend == TURBODIFFUSION else settings.model


def model_infos(settings: VideoSettings, profile: str, backend: str) -> list[common_pb2.ModelInfo]:
    """The one model, with the resolution classes its backend makes and their landscape sizes."""
    served = BACKEND_RESOLUTIONS[backend]
    limits: dict[str, float] = {"fps": settings.fps}
    for r in RESOLUTIONS:
        if r.name in served:
            width, height = r.tiny if profile == "tiny" else r.full
            limits[f"{r.name}_width"], limits[f"{r.name}_height"] = width, height
            # The class's nominal short side (480, 720, 1080) whatever this profile makes: a request's
            # OpenAI `size` picks its class by it, so the same client code works on tiny and full.
            limits[f"{r.name}_short_side"] = min(r.full)
    return [common_pb2.ModelInfo(id=MODEL_ID, aliases=list(ALIASES), task=TASK,
                                 source=source(settings, profile, backend), task_default=True, sizes=list(served),
                                 default_size=DEFAULT_RESOLUTION, limits=limits)]
