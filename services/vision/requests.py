"""What the vision service accepts, checked before any work: each request becomes the Segmentation,
Upscale, BackgroundRemoval or VideoBackgroundRemoval the models run, or INVALID_REQUEST /
PAYLOAD_TOO_LARGE naming the field. Images are decoded by univence.imaging (bytes and declared pixels
checked before decoding); videos are probed by video.py (headers and packets, nothing decoded).

The bounds come from VisionSettings; `limits` publishes them to the edge, which checks the same ones
before it reserves credits.
"""

from __future__ import annotations

import math

from PIL import Image

from services.common.errors import Reason, ServiceError, check_text, image_input, invalid, too_large
from services.vision import video
from services.vision.catalog import LANCZOS, MIME_TYPES, UPSCALE_MODELS, upscale_model
from services.vision.config import VisionSettings
from services.vision.pipelines import (
    BackgroundRemoval,
    Segmentation,
    Upscale,
    VideoBackgroundRemoval,
    VisionModels,
)
from univence.imaging import check_header, decode
from univence.vision.v1 import vision_pb2

# Largest side each output encoding can hold (Pillow refuses larger WebP and JPEG images).
MAX_SIDE = {"PNG": 2**31 - 1, "JPEG": 65_500, "WEBP": 16_383}


def limits(settings: VisionSettings) -> dict[str, float]:
    """The bounds the edge checks before reserving credits (GetServiceInfoResponse.limits). An upscale's
    output is input pixels x scale^2 (each method's scale is in its ModelInfo.limits)."""
    return {
        "max_prompt_chars": settings.max_prompt_chars,
        "max_points": settings.max_points,
        "max_input_image_bytes": settings.max_input_image_bytes,
        "max_input_image_pixels": settings.max_input_image_pixels,
        "max_output_pixels": settings.max_output_pixels,
        "max_lanczos_scale": settings.max_lanczos_scale,
        "max_video_bytes": settings.max_video_bytes,
        "max_video_seconds": settings.max_video_seconds,
        "max_video_frames": settings.max_video_frames,
        "max_video_pixels": settings.max_video_pixels,
    }


def sam3_not_served() -> ServiceError:
    return ServiceError(Reason.ERROR_REASON_MODEL_UNAVAILABLE,
                        "segmentation and background removal are not served by this deployment (no SAM3 model "
                        "is configured: UNIVENCE_VISION_SAM3_MODEL is empty)")


# -- single fields ----------------------------------------------------------------------------------


def check_prompt(prompt: str, settings: VisionSettings, param: str = "prompt") -> str:
    """The prompt (may be empty; the caller decides whether that is allowed)."""
    check_text(prompt, settings.max_prompt_chars, param)
    return prompt.strip()


def check_points(request: vision_pb2.SegmentImageRequest,
                 settings: VisionSettings) -> tuple[tuple[tuple[float, float], ...], tuple[int, ...]]:
    """(points, labels): at most max_points finite points, one label (0 or 1) per point; no labels
    means every point is foreground. Whether they lie inside the image is checked once it is decoded."""
    count = len(request.points)
    if count > settings.max_points:
        raise too_large(f"points holds {count} points; at most {settings.max_points} are accepted", "points")
    points = []
    for i, p in enumerate(request.points):
        if not (math.isfinite(p.x) and math.isfinite(p.y)):
            raise invalid(f"points[{i}] is ({p.x}, {p.y}); coordinates must be finite numbers", f"points[{i}]")
        points.append((float(p.x), float(p.y)))
    labels = list(request.point_labels) or [1] * count
    if request.point_labels and not count:
        raise invalid("point_labels were given without points", "point_labels")
    if len(labels) != count:
        raise invalid(f"point_labels has {len(labels)} labels for {count} points; give one per point, or none "
                      "(all foreground)", "point_labels")
    for i, label in enumerate(labels):
        if label not in (0, 1):
            raise invalid(f"point_labels[{i}] is {label}; a label is 1 (foreground) or 0 (background)",
                          f"point_labels[{i}]")
    return tuple(points), tuple(labels)


def check_inside(points: tuple[tuple[float, float], ...], size: tuple[int, int]) -> None:
    width, height = size
    for i, (x, y) in enumerate(points):
        if not (0 <= x < width and 0 <= y < height):
            raise invalid(f"points[{i}] ({x:g}, {y:g}) is outside the {width}x{height} image (x from 0 to "
                          f"{width - 1}, y from 0 to {height - 1})", f"points[{i}]")


def decode_image(data: bytes, settings: VisionSettings, *, keep_alpha: bool = False) -> Image.Image:
    """The input image, upright by its EXIF orientation: RGB, or RGBA with `keep_alpha` where it has
    transparency."""
    with image_input():
        image = decode(data, "image", max_bytes=settings.max_input_image_bytes,
                       max_pixels=settings.max_input_image_pixels, mode=None)
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    mode = "RGBA" if keep_alpha and has_alpha else "RGB"
    try:
        return image if image.mode == mode else image.convert(mode)
    except (ValueError, OSError):
        raise invalid(f"image has a pixel format ({image.mode}) that cannot be read as {mode}", "image") from None


def output_format(value: int) -> tuple[str, str]:
    """(Pillow format, MIME type) of an ImageFormat."""
    if value not in MIME_TYPES:
        raise invalid(f"unknown output_format {value}", "output_format")
    return MIME_TYPES[value]


# -- whole requests ---------------------------------------------------------------------------------
# Each decodes its input after every cheap check: blocking, run it off the event loop.


def plan_segmentation(request: vision_pb2.SegmentImageRequest, settings: VisionSettings,
                      models: VisionModels) -> Segmentation:
    if not models.serves_sam3:
        raise sam3_not_served()
    prompt = check_prompt(request.prompt, settings)
    points, labels = check_points(request, settings)
    if not prompt and not points:
        raise invalid("give a prompt, points, or both: at least one of them is required", "prompt")
    if request.multimask_output and not points:
        raise invalid("multimask_output needs points: a text prompt gives one mask", "multimask_output")
    image = decode_image(request.image, settings)
    check_inside(points, image.size)
    return Segmentation(image, prompt, points, labels, request.multimask_output)


def plan_upscale(request: vision_pb2.UpscaleImageRequest, settings: VisionSettings,
                 models: VisionModels) -> tuple[Upscale, str, str]:
    """(the Upscale, Pillow format, MIME type). The output's pixels are checked from the input's header,
    before it is decoded."""
    model = upscale_model(request.method)
    if model is None:
        raise invalid(f"unknown method {request.method}; use one of {', '.join(m.id for m in UPSCALE_MODELS)}",
                      "method")
    if not models.serves(model):
        raise invalid(f"{model.id} is not served by this deployment", "method")
    scale = model.scale
    if request.HasField("scale"):
        scale = request.scale
        if model.engine == LANCZOS and not 2 <= scale <= settings.max_lanczos_scale:
            raise invalid(f"scale must be between 2 and {settings.max_lanczos_scale} for lanczos, got {scale}",
                          "scale")
        if model.engine != LANCZOS and scale != model.scale:
            raise invalid(f"{model.id} upscales {model.scale}x only, got scale {scale}; leave scale unset or use "
                          "lanczos for other factors", "scale")
    pillow_format, mime = output_format(request.output_format)
    with image_input():
        width, height = check_header(request.image, "image", max_bytes=settings.max_input_image_bytes,
                                     max_pixels=settings.max_input_image_pixels)
    out_w, out_h = width * scale, height * scale
    if out_w * out_h > settings.max_output_pixels:
        raise too_large(f"image is {width}x{height}: {model.id} would make {out_w}x{out_h} ({out_w * out_h} pixels); "
                        f"at most {settings.max_output_pixels} output pixels are accepted", "image")
    if max(out_w, out_h) > MAX_SIDE[pillow_format]:
        raise invalid(f"a {out_w}x{out_h} result is too large for {pillow_format} (at most "
                      f"{MAX_SIDE[pillow_format]} pixels a side); ask for PNG", "output_format")
    return Upscale(decode_image(request.image, settings, keep_alpha=True), model, scale), pillow_format, mime


def subject(request: vision_pb2.RemoveImageBackgroundRequest | vision_pb2.RemoveVideoBackgroundRequest,
            settings: VisionSettings, models: VisionModels) -> tuple[str, bool]:
    """(prompt, best_only): the prompt given, every instance of it kept; or, with none (or an empty one),
    the salient prompt and only its best-scoring instance."""
    if not models.serves_sam3:
        raise sam3_not_served()
    prompt = check_prompt(request.prompt, settings) if request.HasField("prompt") else ""
    return (prompt, False) if prompt else (settings.salient_prompt, True)


def plan_background(request: vision_pb2.RemoveImageBackgroundRequest, settings: VisionSettings,
                    models: VisionModels) -> BackgroundRemoval:
    prompt, best_only = subject(request, settings, models)
    return BackgroundRemoval(decode_image(request.image, settings), prompt, best_only)


def video_limits(settings: VisionSettings) -> video.VideoLimits:
    return video.VideoLimits(max_bytes=settings.max_video_bytes, max_seconds=settings.max_video_seconds,
                             max_frames=settings.max_video_frames, max_pixels=settings.max_video_pixels)


def rejected_video(exc: video.VideoError) -> ServiceError:
    return (too_large if exc.too_large else invalid)(exc.message, "video")


def plan_video(request: vision_pb2.RemoveVideoBackgroundRequest, settings: VisionSettings,
               models: VisionModels) -> VideoBackgroundRemoval:
    """The video probed and checked against every limit (headers first: a 20-minute video is refused
    without reading its packets)."""
    prompt, best_only = subject(request, settings, models)
    try:
        info = video.probe(request.video, video_limits(settings))
    except video.VideoError as exc:
        raise rejected_video(exc) from None
    return VideoBackgroundRemoval(request.video, info, prompt, best_only)
