"""The public model names of the vision service, what each runs on, and its scale.

SAM3 serves segmentation and background removal (images and videos). The upscaling methods the API
names (`method`) are models of their own: Real-ESRGAN x2plus, x4plus and the compact anime model
(spandrel), Swin2SR (transformers) and Lanczos (Pillow, no weights). Each ModelInfo publishes its scale
(`limits["scale"]`), so the edge can price an upscale by its output megapixels (input x scale^2)
before it reserves credits; Lanczos also publishes the largest scale it takes.

This table is the only one: `model_infos` publishes it and the edge resolves names from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.common.modality import TINY_SOURCE
from services.vision.config import VisionSettings
from univence.common.v1 import common_pb2
from univence.vision.v1 import vision_pb2

SAM3_ID = "sam3"
SAM3_ALIASES = ("facebook/sam3",)
SEGMENTATION_TASK = "image.segmentation"
UPSCALE_TASK = "image.upscale"
# ModelInfo.source of Lanczos: no weights, the same code on every machine and profile.
LANCZOS_SOURCE = "pillow"

SPANDREL, SWIN2SR, LANCZOS = "spandrel", "swin2sr", "lanczos"


@dataclass(frozen=True)
class UpscaleModel:
    """An upscaling method clients name."""

    id: str  # the API's method name
    method: int  # its vision.v1.UpscaleMethod
    scale: int  # its scale factor (Lanczos: the default; it takes others)
    engine: str  # SPANDREL, SWIN2SR or LANCZOS
    setting: str  # the VisionSettings field naming its weights ("" for Lanczos)


M = vision_pb2.UpscaleMethod
UPSCALE_MODELS: tuple[UpscaleModel, ...] = (
    UpscaleModel("realesrgan_2x", M.UPSCALE_METHOD_REALESRGAN_2X, 2, SPANDREL, "realesrgan_2x_weights"),
    UpscaleModel("realesrgan_4x", M.UPSCALE_METHOD_REALESRGAN_4X, 4, SPANDREL, "realesrgan_4x_weights"),
    UpscaleModel("realesrgan_4x_anime", M.UPSCALE_METHOD_REALESRGAN_4X_ANIME, 4, SPANDREL,
                 "realesrgan_4x_anime_weights"),
    UpscaleModel("swin2sr", M.UPSCALE_METHOD_SWIN2SR, 4, SWIN2SR, "swin2sr_model"),
    UpscaleModel("lanczos", M.UPSCALE_METHOD_LANCZOS, 2, LANCZOS, ""),
)
DEFAULT_UPSCALE_MODEL = "realesrgan_4x"
_BY_METHOD = {m.method: m for m in UPSCALE_MODELS}

# Output encodings: (Pillow format, MIME type).
PNG = "image/png"
MIME_TYPES = {common_pb2.IMAGE_FORMAT_UNSPECIFIED: ("PNG", PNG), common_pb2.IMAGE_FORMAT_PNG: ("PNG", PNG),
              common_pb2.IMAGE_FORMAT_JPEG: ("JPEG", "image/jpeg"),
              common_pb2.IMAGE_FORMAT_WEBP: ("WEBP", "image/webp")}


def upscale_model(method: int) -> UpscaleModel | None:
    """The model an UpscaleMethod means (UNSPECIFIED: the default); None for an unknown value."""
    if method == M.UPSCALE_METHOD_UNSPECIFIED:
        method = next(m.method for m in UPSCALE_MODELS if m.id == DEFAULT_UPSCALE_MODEL)
    return _BY_METHOD.get(method)


def weights_of(model: UpscaleModel, settings: VisionSettings) -> str:
    """What the model loads in the full profile ("" where it is not served; Lanczos needs nothing)."""
    return getattr(settings, model.setting) if model.setting else LANCZOS_SOURCE


def served_upscalers(settings: VisionSettings) -> list[UpscaleModel]:
    """The upscaling methods this deployment serves: those whose weights setting is not empty."""
    return [m for m in UPSCALE_MODELS if weights_of(m, settings)]


def serves_sam3(settings: VisionSettings) -> bool:
    return bool(settings.sam3_model)


def upscale_limits(model: UpscaleModel, settings: VisionSettings) -> dict[str, float]:
    limits = {"scale": model.scale}
    if model.engine == LANCZOS:
        limits["max_scale"] = settings.max_lanczos_scale
    return limits


def model_infos(settings: VisionSettings, profile: str) -> list[common_pb2.ModelInfo]:
    """SAM3 (segmentation; background removal runs on it too) and the upscaling methods served, with the
    weights each loads and its scale."""
    def source(weights: str) -> str:
        return TINY_SOURCE if profile == "tiny" and weights != LANCZOS_SOURCE else weights

    infos = []
    if serves_sam3(settings):
        infos.append(common_pb2.ModelInfo(id=SAM3_ID, aliases=list(SAM3_ALIASES), task=SEGMENTATION_TASK,
                                          source=source(settings.sam3_model), task_default=True))
    infos += [common_pb2.ModelInfo(id=m.id, task=UPSCALE_TASK, source=source(weights_of(m, settings)),
                                   task_default=m.id == DEFAULT_UPSCALE_MODEL, limits=upscale_limits(m, settings))
              for m in served_upscalers(settings)]
    return infos
