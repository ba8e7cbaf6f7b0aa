"""What the image service accepts, checked before any work: a GenerateImagesRequest or EditImagesRequest
becomes the Generations or the Edit the pipelines run, or INVALID_REQUEST / PAYLOAD_TOO_LARGE naming the
field. Input images are decoded by univence.imaging (bytes and declared pixels checked before decoding).

The bounds come from ImageSettings and the constants here; `limits` publishes them to the edge, which
checks the same ones before it reserves credits.
"""

from __future__ import annotations

import math
import secrets

from PIL import Image

from services.common.errors import check_text, image_input, invalid, too_large
from services.image.catalog import (
    DEFAULT_EDIT_NEGATIVE_PROMPT,
    DEFAULT_NEGATIVE_PROMPT,
    DEFAULT_SIZE,
    DEFAULTS,
    MAX_BATCH_REQUESTS,
    MIME_TYPES,
    SIZES,
    edit_model,
    generation_model,
    generation_model_names,
    size_names,
)
from services.image.config import ImageSettings
from services.image.pipelines import Edit, Generation, KleinPipelines
from univence.image.v1 import image_pb2
from univence.imaging import decode

MAX_SEED = 2**63 - 1
# FLUX.2 klein reads reference images of at least 64 px a side and at most 8:1. Any decodable image (1x1
# and up) is accepted: a smaller one is scaled up, keeping its aspect ratio, until its short side is 64
# (icons, thumbnails); one thinner than 8:1 is refused, as scaling it would make its long side huge.
MIN_REFERENCE_SIDE = 64
MIN_INPUT_SIDE = 1
MAX_REFERENCE_ASPECT = 8
# Smallest edit output side.
MIN_EDIT_SIDE = 64
# Drawn seeds stay small enough to read and retype.
DRAWN_SEED_BOUND = 2**32


def limits(settings: ImageSettings) -> dict[str, float]:
    """The bounds the edge checks before reserving credits (GetServiceInfoResponse.limits)."""
    return {
        "max_batch_requests": MAX_BATCH_REQUESTS,
        "max_prompt_chars": settings.max_prompt_chars,
        "max_n": settings.max_n,
        "max_steps": settings.max_steps,
        "max_guidance": settings.max_guidance,
        "max_input_images": settings.max_input_images,
        "max_input_image_bytes": settings.max_input_image_bytes,
        "max_input_image_pixels": settings.max_input_image_pixels,
        "min_input_side": MIN_INPUT_SIDE,
        "max_input_aspect": MAX_REFERENCE_ASPECT,
        "min_edit_side": MIN_EDIT_SIDE,
        "max_edit_side": settings.max_edit_side,
    }


# -- single fields ----------------------------------------------------------------------------------


def check_prompt(prompt: str, settings: ImageSettings, param: str = "prompt", *, required: bool = True) -> str:
    if required and not prompt.strip():
        raise invalid(f"{param} is required and must not be empty", param)
    check_text(prompt, settings.max_prompt_chars, param)
    return prompt


def check_seed(seed: int | None, param: str = "seed") -> int:
    """The given seed (0 to 2**63 - 1), or a freshly drawn one."""
    if seed is None:
        return secrets.randbelow(DRAWN_SEED_BOUND)
    if not 0 <= seed <= MAX_SEED:
        raise invalid(f"{param} must be between 0 and {MAX_SEED}, got {seed}", param)
    return seed


def seeds_for(seed: int, n: int) -> tuple[int, ...]:
    """Image i of a request gets seed + i, so image 0 is what the same request with n=1 makes."""
    return tuple((seed + i) % (MAX_SEED + 1) for i in range(n))


def check_n(n: int, settings: ImageSettings) -> int:
    n = n or 1
    if not 1 <= n <= settings.max_n:
        raise invalid(f"n must be between 1 and {settings.max_n}, got {n}", "n")
    return n


def check_steps(steps: int, settings: ImageSettings, param: str) -> int:
    if not 1 <= steps <= settings.max_steps:
        raise invalid(f"{param} must be between 1 and {settings.max_steps}, got {steps}", param)
    return steps


def check_guidance(guidance: float, settings: ImageSettings, param: str) -> float:
    if not math.isfinite(guidance) or not 0 <= guidance <= settings.max_guidance:
        raise invalid(f"{param} must be between 0 and {settings.max_guidance}, got {guidance}", param)
    return float(guidance)


def check_sampling(request: image_pb2.GenerateImagesRequest | image_pb2.EditImagesRequest, settings: ImageSettings,
                   steps: int, guidance: float, negative_prompt: str) -> tuple[int, float, str, int]:
    """(steps, guidance, negative prompt, seed): the request's num_inference_steps, guidance_scale,
    negative_prompt and seed, each checked; the model's defaults (given) where unset, a drawn seed."""
    s = settings
    steps = check_steps(request.num_inference_steps if request.HasField("num_inference_steps") else steps, s,
                        "num_inference_steps")
    guidance = check_guidance(request.guidance_scale if request.HasField("guidance_scale") else guidance, s,
                              "guidance_scale")
    negative = check_prompt(request.negative_prompt if request.HasField("negative_prompt") else negative_prompt, s,
                            "negative_prompt", required=False)
    return steps, guidance, negative, check_seed(request.seed if request.HasField("seed") else None)


def output_format(value: int) -> tuple[str, str]:
    """(Pillow format, MIME type) of an ImageFormat."""
    if value not in MIME_TYPES:
        raise invalid(f"unknown output_format {value}", "output_format")
    return MIME_TYPES[value]


def check_reference(image: Image.Image, param: str) -> Image.Image:
    """What the pipeline accepts as a reference image: no more than 8:1, each side at least 64 px (a smaller
    image is scaled up to that, keeping its aspect ratio)."""
    width, height = image.size
    if max(width, height) > MAX_REFERENCE_ASPECT * min(width, height):
        raise invalid(f"{param} is {width}x{height}; input images may be at most {MAX_REFERENCE_ASPECT}:1", param)
    size = reference_size(image.size)
    return image if size == image.size else image.resize(size, Image.Resampling.LANCZOS)


def reference_size(size: tuple[int, int]) -> tuple[int, int]:
    """The size a reference image of `size` is given: its own, or scaled up (aspect ratio kept) so that its
    short side is MIN_REFERENCE_SIDE."""
    width, height = size
    if min(width, height) >= MIN_REFERENCE_SIDE:
        return size
    scale = MIN_REFERENCE_SIDE / min(width, height)
    return max(MIN_REFERENCE_SIDE, round(width * scale)), max(MIN_REFERENCE_SIDE, round(height * scale))


def to_mask(image: Image.Image, size: tuple[int, int], param: str = "mask") -> Image.Image:
    """A mask as the inpainting pipeline reads it ("L", white = repaint). With an alpha channel it follows
    OpenAI: transparent pixels are the ones to edit; without one, white is the area to edit."""
    if image.size != size:
        raise invalid(f"{param} is {image.size[0]}x{image.size[1]} but the image it masks is {size[0]}x{size[1]};"
                      " they must be the same size", param)
    try:
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            alpha = image.convert("RGBA").getchannel("A")
            return alpha.point(lambda a: 255 - a)
        return image.convert("L")
    except (ValueError, OSError):
        raise invalid(f"{param} has a pixel format ({image.mode}) that cannot be read as a mask", param) from None


# -- whole requests ---------------------------------------------------------------------------------


def plan_generation(request: image_pb2.GenerateImagesRequest, settings: ImageSettings,
                    models: KleinPipelines) -> tuple[str, list[Generation], str, str]:
    """(public model id, one Generation per image, Pillow format, MIME type), or INVALID_REQUEST."""
    s = settings
    prompt = check_prompt(request.prompt, s)
    public = generation_model(request.model)
    if public is None:
        raise invalid(f"unknown model {request.model!r}; use one of {generation_model_names()}", "model")
    role = public.runs_on
    if role not in models.roles:
        raise invalid(f"{public.id} is not served by this deployment", "model")
    width, height = (request.width, request.height) if request.width or request.height else DEFAULT_SIZE
    if (width, height) not in SIZES:
        raise invalid(f"image_size {width}x{height} is not supported; use one of {size_names()}", "image_size")
    if width > public.max_width or height > public.max_height:
        raise invalid(f"{public.id} makes images up to {public.max_width}x{public.max_height} (width x height);"
                      f" {width}x{height} is too large for it", "image_size")
    n = check_n(request.n, s)
    steps, guidance, negative, seed = check_sampling(request, s, DEFAULTS[role].generation_steps,
                                                     DEFAULTS[role].guidance, DEFAULT_NEGATIVE_PROMPT)
    pillow_format, mime = output_format(request.output_format)
    if not models.uses_cfg(role, guidance):  # the pipeline ignores both: let such requests batch
        guidance, negative = 1.0, ""
    jobs = [Generation(role, prompt, negative, width, height, steps, guidance, image_seed)
            for image_seed in seeds_for(seed, n)]
    return public.id, jobs, pillow_format, mime


def plan_edit(request: image_pb2.EditImagesRequest, settings: ImageSettings,
              models: KleinPipelines) -> tuple[Edit, str, str, str]:
    """(the Edit, public model id, Pillow format, MIME type), or INVALID_REQUEST / PAYLOAD_TOO_LARGE.
    Blocking (decodes the input images, after every cheap check): run it off the event loop."""
    s = settings
    prompt = check_prompt(request.prompt, s)
    resolved = edit_model(request.model)
    if resolved is None:
        raise invalid(f"unknown edit model {request.model!r}; use black-forest-labs/FLUX.2-klein-4B (distilled)"
                      " or black-forest-labs/FLUX.2-klein-base-4B (base)", "model")
    public_id, role = resolved
    if role not in models.roles:
        raise invalid(f"{public_id} is not served by this deployment", "model")
    count = len(request.input_images)
    if count == 0:
        raise invalid("input_images needs at least one image", "input_images")
    if count > s.max_input_images:
        raise invalid(f"input_images holds {count} images; at most {s.max_input_images} are accepted",
                      "input_images")
    if request.mask and count > 1:
        raise invalid("a mask works with exactly one input image (it masks that image); send one image", "mask")
    n = check_n(request.n, s)
    steps, guidance, negative, seed = check_sampling(request, s, DEFAULTS[role].edit_steps, DEFAULTS[role].guidance,
                                                     DEFAULT_EDIT_NEGATIVE_PROMPT)
    for side in ("width", "height"):
        if request.HasField(side) and not request.match_image_size:
            value = getattr(request, side)
            if not MIN_EDIT_SIDE <= value <= s.max_edit_side:
                raise invalid(f"{side} must be between {MIN_EDIT_SIDE} and {s.max_edit_side}, got {value}", side)
    pillow_format, mime = output_format(request.output_format)
    for i, data in enumerate(request.input_images):  # byte sizes first: cheap, before any decoding
        if len(data) > s.max_input_image_bytes:
            raise too_large(f"input_images[{i}] is {len(data)} bytes; at most {s.max_input_image_mb:g} MiB per image",
                            f"input_images[{i}]")
    images, mask = decode_inputs(request, s)
    width, height = edit_size(request, images[0].size, s.max_edit_side)
    job = Edit(role, prompt, negative if models.uses_cfg(role, guidance) else "", tuple(images), mask,
               width, height, steps, guidance, seeds_for(seed, n))
    return job, public_id, pillow_format, mime


def decode_inputs(request: image_pb2.EditImagesRequest,
                  settings: ImageSettings) -> tuple[list[Image.Image], Image.Image | None]:
    """The input images in RGB (scaled up to 64 px a side where smaller) and the mask (as the pipeline reads
    it, scaled with its image), upright by their EXIF orientation."""
    bounds = {"max_bytes": settings.max_input_image_bytes, "max_pixels": settings.max_input_image_pixels}
    images, first = [], (0, 0)
    with image_input():
        for i, data in enumerate(request.input_images):
            param = f"input_images[{i}]"
            image = decode(data, param, mode="RGB", **bounds)
            first = first if i else image.size
            images.append(check_reference(image, param))
        mask = None
        if request.mask:  # the same size as the image as sent; scaled with it
            mask = to_mask(decode(request.mask, "mask", mode=None, **bounds), first)
            if mask.size != images[0].size:
                mask = mask.resize(images[0].size, Image.Resampling.NEAREST)
    return images, mask


def edit_size(request: image_pb2.EditImagesRequest, first: tuple[int, int], limit: int) -> tuple[int, int]:
    """The output size: the first image's with match_image_size, else width/height where given, else the
    first image's scaled down to fit `limit` (max_edit_side). `first` is the size the first image is given
    for the pipeline (a small one already scaled up to 64 px a side), so outputs are never under 64."""
    if request.match_image_size:
        if max(first) > limit:
            raise invalid(f"match_image_size asks for the first image's size, {first[0]}x{first[1]}, but outputs "
                          f"are at most {limit} on a side; send width and height instead", "match_image_size")
        return first
    scale = min(1.0, limit / max(first))
    width = request.width if request.HasField("width") else max(MIN_EDIT_SIDE, round(first[0] * scale))
    height = request.height if request.HasField("height") else max(MIN_EDIT_SIDE, round(first[1] * scale))
    return width, height
