"""Image generation and editing shapes (POST /v1/images/generations, /generations/batch, /edits), with
the documented names and defaults their descriptions give.

Fields are the API reference's, plus OpenAI's own (size, n, response_format, user, quality, style,
output_format), so the official `openai` SDK works unchanged. The counts in descriptions are the
documented defaults; the names, sizes and limits checked are the image service's (see translate).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from edge.inputs import Int32, Int64, documented

# -- the documented names and defaults the shapes describe -----------------------------------------
# A deliberate copy of services/image/catalog.py's values, for the OpenAPI document only (it is built
# before any service answers, and the edge never imports a service). The checks use what the image
# service publishes (translate), never these; tests/edge/test_contract_copies.py fails when they differ.

DEFAULT_GENERATION_MODEL = "z-image-turbo"
DISTILLED_ID = "black-forest-labs/FLUX.2-klein-4B"
BASE_ID = "black-forest-labs/FLUX.2-klein-base-4B"
SIZES = ("256x256", "512x512", "1024x1024", "1024x1792", "1792x1024")
DEFAULT_SIZE = "1024x1024"
DEFAULT_NEGATIVE_PROMPT = "blurry, distorted, low quality, bad anatomy, text, watermark, signature"
DEFAULT_EDIT_NEGATIVE_PROMPT = "blurry, distorted, low quality"
# The documented defaults of bounds the service publishes (ImageSettings' max_n and max_input_images, and
# catalog.MAX_BATCH_REQUESTS): shown as maximums in the schema; translate checks the published ones.
MAX_N = 4
MAX_INPUT_IMAGES = 4
MAX_BATCH_REQUESTS = 5


# -- requests -----------------------------------------------------------------------------------------

# The bounds below are documented, not checked here: translate checks them (a blank prompt, n, steps, seed…)
# with messages that name the field, and the upper ones where the image service publishes them.
Prompt = Annotated[str, Field(description="Text description of the image", json_schema_extra={"minLength": 1},
                              examples=["A beautiful sunset over mountains"])]
ResponseFormat = Literal["b64_json", "url"]
OutputFormat = Literal["png", "jpeg", "webp"]


class ImageGenerationRequest(BaseModel):
    """POST /v1/images/generations (and each item of a batch)."""

    model_config = ConfigDict(extra="ignore")

    # Unset: the image service's default (documented, not applied, here).
    model: str | None = Field(None, json_schema_extra={"default": DEFAULT_GENERATION_MODEL}, description=(
        "z-image-turbo (default) or longcat-image-edit; flux-schnell, qwen/qwen-image, pixart-sigma, dall-e-3 and "
        "dall-e-2 map to z-image-turbo. The FLUX.2 klein ids run their own pipeline (the base model runs CFG)."))
    prompt: Prompt
    negative_prompt: str | None = Field(None, description="Things to avoid (used by the base model's CFG; the "
                                        f"distilled model ignores it). Default: \"{DEFAULT_NEGATIVE_PROMPT}\"")
    image_size: str | None = Field(None, description=f"WIDTHxHEIGHT, one of {', '.join(SIZES)}; default {DEFAULT_SIZE}")
    size: str | None = Field(None, description="OpenAI's name for image_size (\"auto\" is the default)")
    seed: Int64 | None = Field(None, json_schema_extra=documented(minimum=0),
                               description="Same seed and request, same image; drawn (and returned) when unset")
    num_inference_steps: Int32 | None = Field(None, json_schema_extra=documented(minimum=1),
                                              description="Denoising steps; default 8 (50 on the base model)")
    guidance_scale: float | None = Field(None, description="Guidance scale (CFG on the base model only)")
    cfg: float | None = Field(None, description="Alternative name for guidance_scale")
    n: Int32 | None = Field(1, json_schema_extra=documented(minimum=1, maximum=MAX_N),
                            description="How many images, 1 to 4; image i uses seed + i (1 in a batch)")
    response_format: ResponseFormat | None = Field("b64_json", description="b64_json, or url (a /v1/media link)")
    output_format: OutputFormat | None = Field(None, description="png (default), jpeg or webp")
    user: str | None = Field(None, description="Accepted for OpenAI compatibility")
    quality: str | None = Field(None, description="Accepted for OpenAI compatibility and ignored")
    style: str | None = Field(None, description="Accepted for OpenAI compatibility and ignored")
    # Edit inputs are refused here with a pointer to /v1/images/edits.
    image: SkipJsonSchema[Any] = None
    mask: SkipJsonSchema[Any] = None
    input_images: SkipJsonSchema[Any] = None


class BatchGenerationRequest(BaseModel):
    """POST /v1/images/generations/batch."""

    requests: list[ImageGenerationRequest] = Field(
        json_schema_extra={"minItems": 1, "maxItems": MAX_BATCH_REQUESTS},
        description=f"1 to {MAX_BATCH_REQUESTS} generation requests, answered in order")


class ImageEditRequest(BaseModel):
    """POST /v1/images/edits as JSON. The same fields work as multipart form fields, with the images as
    files named `image` or `image[]` (what the openai SDK sends) and an optional `mask` file."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = Field(None, json_schema_extra={"default": DISTILLED_ID},
                              description=f"{DISTILLED_ID} (distilled, default) or {BASE_ID} (base)")
    prompt: Prompt
    negative_prompt: str | None = Field(None, description="Things to avoid (base model only); default "
                                        f"\"{DEFAULT_EDIT_NEGATIVE_PROMPT}\"")
    input_images: list[str] | None = Field(None, json_schema_extra=documented(minItems=1, maxItems=MAX_INPUT_IMAGES),
                                           description=f"1 to {MAX_INPUT_IMAGES} base64 images (PNG, JPEG, "
                                           "WebP or GIF; data: URLs too)")
    mask: str | None = Field(None, description="Base64 PNG mask for a single input image: transparent (or, without "
                             "alpha, white) pixels are repainted")
    width: Int32 | None = Field(None, description="Output width; default the first input's")
    height: Int32 | None = Field(None, description="Output height; default the first input's")
    size: str | None = Field(None, description="OpenAI's WIDTHxHEIGHT for width and height (\"auto\" = default)")
    match_image_size: Int32 | None = Field(0, description="1 = output exactly the first input's size")
    num_steps: Int32 | None = Field(None, json_schema_extra=documented(minimum=1),
                                    description="Denoising steps; default 4 (distilled) / 50 (base)")
    guidance: float | None = Field(None, description="Guidance; default 1.0 (distilled) / 4.0 (base)")
    seed: Int64 | None = Field(None, json_schema_extra=documented(minimum=0),
                               description="Random seed; drawn (and returned) when unset")
    n: Int32 | None = Field(1, json_schema_extra=documented(minimum=1, maximum=MAX_N),
                            description=f"How many images, 1 to {MAX_N}")
    response_format: ResponseFormat | None = "b64_json"
    output_format: OutputFormat | None = None
    user: str | None = None
    quality: str | None = Field(None, description="Accepted for OpenAI compatibility and ignored")


# -- responses ----------------------------------------------------------------------------------------

class ImageData(BaseModel):
    b64_json: str | None = Field(None, description="The image, base64 (response_format b64_json)")
    url: str | None = Field(None, description="A public /v1/media link to the image (response_format url)")
    seed: int | None = Field(None, description="The seed that made it")


class ImagesResponse(BaseModel):
    created: int
    data: list[ImageData]


class BatchItemError(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class BatchItem(BaseModel):
    """One batch slot: a generation response, or the error of the item that failed (not charged)."""

    created: int | None = None
    data: list[ImageData] | None = None
    error: BatchItemError | None = None


class BatchResponse(BaseModel):
    data: list[BatchItem]


EDIT_FORM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["prompt", "image"],
    "properties": {
        "image": {"type": "array", "items": {"type": "string", "format": "binary"}, "minItems": 1,
                  "maxItems": MAX_INPUT_IMAGES,
                  "description": f"1 to {MAX_INPUT_IMAGES} image files (sent as `image` or `image[]`)"},
        "mask": {"type": "string", "format": "binary"},
        "prompt": {"type": "string", "minLength": 1},
        **{name: {"type": "string"} for name in ("model", "negative_prompt", "size", "response_format",
                                                  "output_format", "user")},
        **{name: {"type": "integer"} for name in ("width", "height", "match_image_size", "num_steps", "seed", "n")},
        "guidance": {"type": "number"},
    },
}
