"""The public model names of the API and what each runs on, the documented sizes and defaults.

Every text-to-image name runs on the distilled FLUX.2 klein 4B pipeline; the klein ids themselves
name the distilled and base pipelines (for edits, and for text-to-image with CFG on the base model).

This table is the only one: `model_infos` publishes it (ModelInfo: aliases, the task's default, what
each name runs on, its sizes and max_width/max_height), and the edge resolves names and checks sizes
from what is published. The edge's OpenAPI descriptions repeat the documented names and defaults; a
test ties them to the values here (tests/edge/test_contract_copies.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from services.common.modality import TINY_SOURCE
from services.image.config import ImageSettings
from univence.common.v1 import common_pb2

DISTILLED = "distilled"
BASE = "base"
DISTILLED_ID = "black-forest-labs/FLUX.2-klein-4B"
BASE_ID = "black-forest-labs/FLUX.2-klein-base-4B"

# The documented default negative prompts (generations and edits differ).
DEFAULT_NEGATIVE_PROMPT = "blurry, distorted, low quality, bad anatomy, text, watermark, signature"
DEFAULT_EDIT_NEGATIVE_PROMPT = "blurry, distorted, low quality"

# The five sizes generations accept, (width, height).
SIZES: tuple[tuple[int, int], ...] = ((256, 256), (512, 512), (1024, 1024), (1024, 1792), (1792, 1024))
DEFAULT_SIZE = (1024, 1024)
# Generations in one batch request, at most.
MAX_BATCH_REQUESTS = 5


def size_name(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


@dataclass(frozen=True)
class PublicModel:
    """A model name clients use for text-to-image."""

    id: str
    aliases: tuple[str, ...]
    # Which pipeline runs it (DISTILLED or BASE).
    runs_on: str
    max_width: int
    max_height: int
    task: str = "image.generation"


# Model ids are matched case-insensitively.
GENERATION_MODELS: tuple[PublicModel, ...] = (
    PublicModel("z-image-turbo", ("flux-schnell", "qwen/qwen-image", "pixart-sigma", "dall-e-3", "dall-e-2"),
                DISTILLED, 1792, 1792),
    PublicModel("longcat-image-edit", (), DISTILLED, 1792, 1024),
    PublicModel(DISTILLED_ID, (), DISTILLED, 1792, 1792, task="image.edit"),
    PublicModel(BASE_ID, (), BASE, 1792, 1792, task="image.edit"),
)
DEFAULT_GENERATION_MODEL = "z-image-turbo"
# The edit model a request that names none gets.
DEFAULT_EDIT_MODEL = DISTILLED_ID
# The model id of each pipeline (what a name that runs on it means for an edit).
PIPELINE_IDS = {DISTILLED: DISTILLED_ID, BASE: BASE_ID}

_BY_NAME = {name.lower(): m for m in GENERATION_MODELS for name in (m.id, *m.aliases)}


@dataclass(frozen=True)
class Defaults:
    """Steps and guidance when a request leaves them out."""

    generation_steps: int
    edit_steps: int
    guidance: float


DEFAULTS = {DISTILLED: Defaults(generation_steps=8, edit_steps=4, guidance=1.0),
            BASE: Defaults(generation_steps=50, edit_steps=50, guidance=4.0)}

MIME_TYPES = {
    common_pb2.IMAGE_FORMAT_UNSPECIFIED: ("PNG", "image/png"),
    common_pb2.IMAGE_FORMAT_PNG: ("PNG", "image/png"),
    common_pb2.IMAGE_FORMAT_JPEG: ("JPEG", "image/jpeg"),
    common_pb2.IMAGE_FORMAT_WEBP: ("WEBP", "image/webp"),
}


def generation_model(name: str) -> PublicModel | None:
    """The public model a name or alias means ("" is the default); None for unknown names."""
    return _BY_NAME.get((name or DEFAULT_GENERATION_MODEL).strip().lower())


def size_names() -> str:
    return ", ".join(size_name(size) for size in SIZES)


def generation_model_names() -> str:
    return ", ".join(name for m in GENERATION_MODELS for name in (m.id, *m.aliases))


def edit_model(name: str) -> tuple[str, str] | None:
    """(klein id, pipeline) for an edit model name ("" is the distilled model); None when unknown. The
    text-to-image names run on the distilled model, so they mean it here too."""
    public = generation_model(name or DEFAULT_EDIT_MODEL)
    if public is None:
        return None
    return PIPELINE_IDS[public.runs_on], public.runs_on


def configured_models(settings: ImageSettings) -> dict[str, str]:
    """The pipelines this deployment runs, by role, with the weights each loads (full profile)."""
    roles = {DISTILLED: settings.distilled_model}
    if settings.base_model:
        roles[BASE] = settings.base_model
    return roles


def model_infos(settings: ImageSettings, profile: str) -> list[common_pb2.ModelInfo]:
    """The public models this deployment serves, with the weights behind each, the edit model each name
    means (runs_on), the sizes it makes and its largest width and height."""
    roles = configured_models(settings)
    return [common_pb2.ModelInfo(id=m.id, aliases=list(m.aliases), task=m.task,
                                 source=TINY_SOURCE if profile == "tiny" else roles[m.runs_on],
                                 task_default=m.id in (DEFAULT_GENERATION_MODEL, DEFAULT_EDIT_MODEL),
                                 runs_on=PIPELINE_IDS[m.runs_on], sizes=[size_name(size) for size in SIZES],
                                 default_size=size_name(DEFAULT_SIZE),
                                 limits={"max_width": m.max_width, "max_height": m.max_height})
            for m in GENERATION_MODELS if m.runs_on in roles]
