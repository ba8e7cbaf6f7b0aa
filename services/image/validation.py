"""What the image service accepts, checked before any work: prompts, seeds, steps, guidance, and
input images (format, bytes, declared pixels before decoding, then a full decode)."""

from __future__ import annotations

import io
import math
import secrets
import warnings

from PIL import Image, UnidentifiedImageError

from services.common.errors import invalid, too_large
from services.image.config import ImageSettings

ACCEPTED_FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "WEBP": "WebP", "GIF": "GIF"}
MAX_SEED = 2**63 - 1
# FLUX.2 klein reads reference images of at least 64 px a side and at most 8:1.
MIN_REFERENCE_SIDE = 64
MAX_REFERENCE_ASPECT = 8
# Drawn seeds stay small enough to read and retype.
DRAWN_SEED_BOUND = 2**32


def check_prompt(prompt: str, settings: ImageSettings, param: str = "prompt", *, required: bool = True) -> str:
    if required and not prompt.strip():
        raise invalid(f"{param} is required and must not be empty", param)
    if len(prompt) > settings.max_prompt_chars:
        raise too_large(f"{param} is {len(prompt)} characters; at most {settings.max_prompt_chars} are accepted",
                        param)
    if "\x00" in prompt:
        raise invalid(f"{param} must not contain NUL characters", param)
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


def open_image(data: bytes, settings: ImageSettings, param: str) -> Image.Image:
    """Decodes one input image to RGB(A as given). The header's size is checked against the pixel
    limit before a single pixel is decoded, so decompression bombs cost nothing."""
    if not data:
        raise invalid(f"{param} is empty", param)
    if len(data) > settings.max_input_image_bytes:
        raise too_large(f"{param} is {len(data)} bytes; at most {settings.max_input_image_mb:g} MiB per image",
                        param)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=list(ACCEPTED_FORMATS))
    except Image.DecompressionBombError:
        raise too_large(f"{param} declares more pixels than the {settings.max_input_image_pixels} accepted",
                        param) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        raise invalid(f"{param} is not an image (PNG, JPEG, WebP or GIF are accepted)", param) from None
    width, height = image.size
    if width < 1 or height < 1:
        raise invalid(f"{param} has no pixels ({width}x{height})", param)
    if width * height > settings.max_input_image_pixels:
        raise too_large(f"{param} is {width}x{height} ({width * height} pixels); at most "
                        f"{settings.max_input_image_pixels} pixels per image", param)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
        raise invalid(f"{param} is truncated or corrupt and cannot be decoded", param) from None
    return image


def check_reference(image: Image.Image, param: str) -> Image.Image:
    """What the pipeline accepts as a reference image: each side at least 64 px, no more than 8:1."""
    width, height = image.size
    if min(width, height) < MIN_REFERENCE_SIDE:
        raise invalid(f"{param} is {width}x{height}; each side of an input image must be at least "
                      f"{MIN_REFERENCE_SIDE} pixels", param)
    if max(width, height) > MAX_REFERENCE_ASPECT * min(width, height):
        raise invalid(f"{param} is {width}x{height}; input images may be at most {MAX_REFERENCE_ASPECT}:1", param)
    return image


def to_rgb(image: Image.Image, param: str) -> Image.Image:
    try:
        return image if image.mode == "RGB" else image.convert("RGB")
    except (ValueError, OSError):
        raise invalid(f"{param} has a pixel format ({image.mode}) that cannot be read as RGB", param) from None


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
