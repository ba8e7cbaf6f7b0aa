"""The vision models the service runs (SAM3 text and points, the upscalers), how they load, and the four
kinds of work they do: segment, upscale, remove an image's background, remove a video's background.

Everything here blocks; the servicer runs it on its work queue's thread. The model code itself lives in
segment.py (SAM3), upscale.py (Real-ESRGAN, Swin2SR, Lanczos) and video.py (PyAV).
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from services.common.devices import first_line, local_model, looks_like_path, model_dtype
from services.common.errors import ModelLoadError
from services.common.modality import TINY_SOURCE
from services.vision import video
from services.vision.catalog import (
    LANCZOS,
    SAM3_ID,
    SPANDREL,
    UpscaleModel,
    served_upscalers,
    serves_sam3,
    weights_of,
)
from services.vision.config import VisionSettings
from services.vision.segment import PointSegmenter, TextSegmenter, alpha_of, to_rgb_array
from services.vision.tiny import build_tiny_sam3, build_tiny_swin2sr, write_tiny_checkpoints
from services.vision.torchvision_standin import import_spandrel
from services.vision.upscale import OnTile, Upscaler, lanczos, spandrel_upscaler, swin2sr_upscaler

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class Segmentation:
    """One SegmentImage request, checked: with points the tracker decides, else the text prompt."""

    image: Image.Image
    prompt: str
    points: tuple[tuple[float, float], ...]
    labels: tuple[int, ...]
    multimask: bool


@dataclass(frozen=True)
class Upscale:
    image: Image.Image
    model: UpscaleModel
    scale: int


@dataclass(frozen=True)
class BackgroundRemoval:
    """An image's background removal: what to keep (`best_only` when the prompt is the salient one)."""

    image: Image.Image
    prompt: str
    best_only: bool


@dataclass(frozen=True)
class VideoBackgroundRemoval:
    data: bytes
    info: video.VideoInfo
    prompt: str
    best_only: bool


@dataclass(frozen=True)
class Mask:
    """A mask at the input's size: uint8, 255 = object; its score (predicted IoU for points, the best
    instance's score for a text prompt, 0 when nothing was found)."""

    mask: np.ndarray
    score: float


class VisionModels:
    """The loaded models and where their weights came from. SAM3 runs one call at a time (a lock);
    each upscaler has its own."""

    def __init__(self, settings: VisionSettings, *, text: TextSegmenter | None, points: PointSegmenter | None,
                 upscalers: dict[str, Upscaler], sources: dict[str, str]):
        self.text, self.points, self.upscalers, self.sources = text, points, upscalers, sources
        self.tile, self.overlap = settings.upscale_tile, settings.upscale_tile_overlap
        self.salient_prompt = settings.salient_prompt
        self.video_options = {"batch": settings.video_batch_frames, "crf": settings.video_crf,
                              "cpu_used": settings.video_cpu_used}
        self._sam3_lock = threading.Lock()

    @property
    def serves_sam3(self) -> bool:
        return self.text is not None

    def serves(self, model: UpscaleModel) -> bool:
        return model.engine == LANCZOS or model.id in self.upscalers

    # -- the work ---------------------------------------------------------------------------------------

    def segment(self, job: Segmentation) -> list[Mask]:
        """The masks best first: the tracker's candidates (3 with multimask) for points, else the union of
        the text prompt's instances (all black when none is found)."""
        rgb = to_rgb_array(job.image)
        with self._sam3_lock:
            if job.points:
                return [Mask(c.mask, c.score) for c in self.points.segment(
                    rgb, job.points, job.labels, multimask_output=job.multimask)]
            found = self.text.segment([rgb], job.prompt)[0]
        return [Mask(found.mask, found.scores[0] if found.found else 0.0)]

    def upscale(self, job: Upscale, on_tile: OnTile | None = None) -> Image.Image:
        """Exactly the input's size x scale; alpha kept (resized with Lanczos under the models)."""
        if job.model.engine == LANCZOS:
            return lanczos(job.image, job.scale)
        return self.upscalers[job.model.id].upscale(job.image, tile=self.tile, overlap=self.overlap, on_tile=on_tile)

    def remove_background(self, job: BackgroundRemoval) -> Image.Image:
        """The image in RGBA: its colours, and as alpha the soft mask of what the prompt selects."""
        rgb = to_rgb_array(job.image)
        with self._sam3_lock:
            found = self.text.segment([rgb], job.prompt, best_only=job.best_only)[0]
        return Image.fromarray(np.concatenate([rgb, alpha_of(found.soft)[..., None]], axis=2), "RGBA")

    def frame_masks(self, frames: list[np.ndarray], prompt: str, best_only: bool) -> list[tuple[np.ndarray, bool]]:
        """Per frame of a video batch: its alpha (the soft mask) and whether the object is in it."""
        with self._sam3_lock:
            found = self.text.segment(frames, prompt, best_only=best_only)
        return [(alpha_of(f.soft), f.found) for f in found]

    def remove_video_background(self, job: VideoBackgroundRemoval,
                                on_frame: Callable[[int, int], None] | None = None) -> video.Result:
        """Each frame segmented on its own (SAM3's detector, a batch of frames per call) and given its
        mask as alpha; WebM VP9 with alpha, the input's frames and timestamps, audio kept as Opus."""
        return video.remove_background(job.data, job.info, lambda frames: self.frame_masks(
            list(frames), job.prompt, job.best_only), on_frame=on_frame, **self.video_options)

    def warm_up(self) -> None:
        image = Image.new("RGB", (48, 32), (90, 120, 150))
        if self.serves_sam3:
            self.segment(Segmentation(image, self.salient_prompt, (), (), False))
            self.segment(Segmentation(image, "", ((10.0, 10.0),), (1,), True))
        for upscaler in self.upscalers.values():
            upscaler.upscale(image, tile=0, overlap=0)


# -- loading ------------------------------------------------------------------------------------------


def load_models(settings: VisionSettings, profile: str, device: str) -> VisionModels:
    """Builds (tiny) or loads (full) the configured models onto `device`."""
    threshold = settings.threshold(profile)
    sources: dict[str, str] = {}
    text = points = None
    if serves_sam3(settings):
        dtype = model_dtype(settings.sam3_dtype, profile, device)
        if profile == "tiny":
            tokenizer, text_model, tracker_model = build_tiny_sam3()
            sources[SAM3_ID] = TINY_SOURCE
        else:
            tokenizer, text_model, tracker_model = load_sam3(settings, dtype)
            sources[SAM3_ID] = settings.sam3_model
        text = TextSegmenter(text_model.to(device, dtype), tokenizer, device, threshold=threshold,
                             mask_threshold=settings.mask_threshold)
        points = PointSegmenter(tracker_model.to(device, dtype), device, mask_threshold=settings.mask_threshold)
        log.info("vision: SAM3 ready (%s, %s)", sources[SAM3_ID], device)
    upscalers: dict[str, Upscaler] = {}
    with tempfile.TemporaryDirectory(prefix="univence-vision-") as scratch:
        tiny_files = write_tiny_checkpoints(Path(scratch)) if profile == "tiny" else {}
        for model in served_upscalers(settings):
            if model.engine == LANCZOS:
                continue
            weights = weights_of(model, settings)
            if model.engine == SPANDREL:
                path = tiny_files[model.id] if profile == "tiny" else weights_file(model, weights, settings)
                upscaler = load_spandrel(model, path, device, str(path) if profile == "tiny" else weights)
            else:
                upscaler = load_swin2sr(model, weights, settings, profile, device)
            upscalers[model.id] = upscaler
            sources[model.id] = TINY_SOURCE if profile == "tiny" else weights
            log.info("vision: %s ready (%s, %s)", model.id, sources[model.id], device)
    return VisionModels(settings, text=text, points=points, upscalers=upscalers, sources=sources)


def load_sam3(settings: VisionSettings, dtype: torch.dtype) -> tuple[Any, Any, Any]:
    """(tokenizer, Sam3Model, Sam3TrackerModel) from the hub or local folders, or a ModelLoadError that
    names the model and what to do."""
    from transformers import AutoTokenizer, Sam3Model, Sam3TrackerModel

    loaded = []
    for cls, name, variable in ((AutoTokenizer, settings.sam3_model, "SAM3_MODEL"),
                                (Sam3Model, settings.sam3_model, "SAM3_MODEL"),
                                (Sam3TrackerModel, settings.sam3_tracker_model or settings.sam3_model,
                                 "SAM3_TRACKER_MODEL")):
        what_to_do = (f"download it where there is internet (`hf download {name} --local-dir /models/sam3`; "
                      "facebook/sam3 is gated: accept its licence on the hub first), then point "
                      f"UNIVENCE_VISION_{variable} at that folder; or run the tiny profile "
                      "(UNIVENCE_VISION_PROFILE=tiny, random weights, noise output)")
        reference = local_model(name, "config.json", "the SAM3 model", what_to_do, kind="transformers model")
        kwargs = {"local_files_only": settings.local_files_only}
        if cls is not AutoTokenizer:
            kwargs["dtype"] = dtype
        try:
            loaded.append(cls.from_pretrained(reference, **kwargs))
        except (OSError, ValueError, ImportError) as exc:  # missing files, no hub, a gated repo, a bad config
            raise ModelLoadError(f"cannot load the SAM3 model {name!r} ({first_line(exc)}); {what_to_do}") from None
    return loaded[0], loaded[1], loaded[2]


def _weights_help(model: UpscaleModel) -> str:
    variable = f"UNIVENCE_VISION_{model.setting.upper()}"
    return (f"download the {model.id} weights (the Real-ESRGAN releases on GitHub, xinntao/Real-ESRGAN), then point "
            f"{variable} at the file, or at \"<hub owner>/<repo>/<file>\" to fetch it from the Hugging Face hub; "
            f"set {variable}=\"\" to serve without {model.id}; or run the tiny profile (UNIVENCE_VISION_PROFILE=tiny)")


def weights_file(model: UpscaleModel, weights: str, settings: VisionSettings) -> Path:
    """A Real-ESRGAN checkpoint named by a local path, or by "<owner>/<repo>/<file>" on the hub."""
    if looks_like_path(weights) or weights.count("/") < 2:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise ModelLoadError(f"cannot load the {model.id} model {weights!r}: no such file; {_weights_help(model)}")
        return path
    owner, repo, filename = weights.split("/", 2)
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(f"{owner}/{repo}", filename, local_files_only=settings.local_files_only))
    except Exception as exc:  # noqa: BLE001 - no network, an unknown repo or file, a gated repo
        raise ModelLoadError(f"cannot load the {model.id} model {weights!r} from the hub ({first_line(exc)}); "
                             f"{_weights_help(model)}") from None


def load_spandrel(model: UpscaleModel, path: Path, device: str, name: str) -> Upscaler:
    """A Real-ESRGAN family checkpoint through spandrel's own loader, checked to be an image model of the
    scale the catalog publishes for the method."""
    spandrel = import_spandrel()
    try:
        descriptor = spandrel.ModelLoader().load_from_file(str(path))
    except Exception as exc:  # noqa: BLE001 - spandrel raises many kinds for files it cannot read
        raise ModelLoadError(f"cannot load the {model.id} model {name!r}: spandrel cannot read it "
                             f"({first_line(exc)}); {_weights_help(model)}") from None
    if not isinstance(descriptor, spandrel.ImageModelDescriptor) or descriptor.scale != model.scale:
        scale = getattr(descriptor, "scale", "?")
        raise ModelLoadError(f"cannot serve {name!r} as {model.id}: it is a {scale}x "
                             f"{descriptor.architecture.name} model, and {model.id} is {model.scale}x; "
                             f"{_weights_help(model)}")
    return spandrel_upscaler(descriptor, model.id, device)


def load_swin2sr(model: UpscaleModel, weights: str, settings: VisionSettings, profile: str, device: str) -> Upscaler:
    """Swin2SR: tiny, or from the hub or a folder, checked to be of the catalog's scale."""
    if profile == "tiny":
        return swin2sr_upscaler(build_tiny_swin2sr(), model.id, device)
    from transformers import Swin2SRForImageSuperResolution

    what_to_do = (f"download it where there is internet (`hf download {weights} --local-dir /models/swin2sr`), then "
                  "point UNIVENCE_VISION_SWIN2SR_MODEL at that folder; set it to \"\" to serve without swin2sr; or run "
                  "the tiny profile (UNIVENCE_VISION_PROFILE=tiny)")
    reference = local_model(weights, "config.json", "the swin2sr model", what_to_do, kind="transformers model")
    try:
        loaded = Swin2SRForImageSuperResolution.from_pretrained(reference, local_files_only=settings.local_files_only)
    except (OSError, ValueError, ImportError) as exc:
        raise ModelLoadError(f"cannot load the swin2sr model {weights!r} ({first_line(exc)}); {what_to_do}") from None
    if loaded.config.upscale != model.scale:
        raise ModelLoadError(f"cannot serve {weights!r} as swin2sr: it upscales {loaded.config.upscale}x and swin2sr "
                             f"is published as {model.scale}x; use a x{model.scale} Swin2SR checkpoint")
    return swin2sr_upscaler(loaded, model.id, device)
