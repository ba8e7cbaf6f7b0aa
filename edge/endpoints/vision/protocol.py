"""Vision shapes: POST /v1/images/segmentations, /v1/images/upscale, /v1/images/remove-background and
/v1/videos/remove-background, with the reference's field names and the documented defaults.

Segmentation and the background removals are multipart forms (a `file` and text fields, read by
edge.inputs within bounds, their OpenAPI schemas given by hand below); upscaling is JSON with a base64
image and answers in OpenAI's images shape. The names and bounds checked are the vision service's
(see translate).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from edge.inputs import Int32, documented

# -- the documented names and defaults the shapes describe -----------------------------------------
# A deliberate copy of services/vision/catalog.py's values, for the OpenAPI document only (it is built
# before any service answers, and the edge never imports a service). The checks use what the vision
# service publishes (translate), never these; tests/edge/test_contract_copies.py fails when they differ.

# Each upscale method and its scale (lanczos: its default; it takes `scale`).
UPSCALE_SCALES = {"realesrgan_2x": 2, "realesrgan_4x": 4, "realesrgan_4x_anime": 4, "swin2sr": 4, "lanczos": 2}
DEFAULT_UPSCALE_METHOD = "realesrgan_4x"

# Headers of the answers.
MASK_SCORES_HEADER = "X-Mask-Scores"
MEDIA_ID_HEADER = "X-Media-Id"
TOTAL_FRAMES_HEADER = "X-Total-Frames"
FRAMES_WITH_OBJECT_HEADER = "X-Frames-With-Object"


# -- requests -----------------------------------------------------------------------------------------

class SegmentationForm(BaseModel):
    """The text fields of POST /v1/images/segmentations (the image is the `file` part)."""

    model_config = ConfigDict(extra="ignore")

    prompt: str | None = None
    point_coords: str | None = None
    point_labels: str | None = None
    multimask_output: bool = False


class BackgroundForm(BaseModel):
    """The text fields of POST /v1/images/remove-background and /v1/videos/remove-background."""

    model_config = ConfigDict(extra="ignore")

    prompt: str | None = None


class UpscaleRequest(BaseModel):
    """POST /v1/images/upscale."""

    model_config = ConfigDict(extra="ignore")

    # Bounds documented, checked by translate (an empty image is refused; a scale at least doubles).
    image: str = Field(description="The image, base64 (a data: URL too): PNG, JPEG, WebP or GIF",
                       json_schema_extra={"minLength": 1},
                       examples=["iVBORw0KGgoAAAANSUhEUgAA..."])
    method: str | None = Field(None, json_schema_extra={"default": DEFAULT_UPSCALE_METHOD}, description=(
        f"{', '.join(f'{name} ({scale}x)' for name, scale in UPSCALE_SCALES.items())}; default "
        f"{DEFAULT_UPSCALE_METHOD}. The output is exactly the input times the scale; lanczos needs no model"))
    scale: Int32 | None = Field(None, json_schema_extra=documented(minimum=2),
                                description="lanczos only: the factor, from 2; unset means the method's own")
    response_format: Literal["b64_json", "url"] | None = Field(
        "b64_json", description="b64_json, or url (a /v1/media link)")
    output_format: Literal["png", "jpeg", "webp"] | None = Field(None, description="png (default), jpeg or webp")
    user: str | None = Field(None, description="Accepted for OpenAI compatibility")


# -- responses ----------------------------------------------------------------------------------------

class UpscaledImage(BaseModel):
    b64_json: str | None = Field(None, description="The image, base64 (response_format b64_json)")
    url: str | None = Field(None, description="A public /v1/media link to the image (response_format url)")


class UpscaleResponse(BaseModel):
    created: int
    data: list[UpscaledImage]


def _form(required: list[str], fields: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """An OpenAPI multipart request body."""
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": required, "properties": fields}}}}}


_FILE = {"type": "string", "format": "binary"}
_MEDIA_ID = {"description": "The output's id: GET /v1/media/{id} serves it again", "schema": {"type": "string"}}


def _binary(media_type: str, description: str, headers: dict[str, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for a 200 whose body is a file of `media_type`, with these headers (name →
    description) besides X-Media-Id."""
    return {200: {"description": description, "content": {media_type: {"schema": _FILE}}, "headers": {
        MEDIA_ID_HEADER: _MEDIA_ID,
        **{name: {"description": text, "schema": {"type": "string"}} for name, text in headers.items()}}}}


SEGMENTATION_FORM = _form(["file"], {
    "file": {**_FILE, "description": "The image to segment (PNG, JPEG, WebP or GIF)"},
    "prompt": {"type": "string", "description": "What to segment, e.g. \"segment person in image\"; optional "
               "when point_coords are given (at least one of the two is required)"},
    "point_coords": {"type": "string", "description": "JSON array of [x, y] pixel positions inside the image, "
                     "e.g. [[520,375],[100,200]]"},
    "point_labels": {"type": "string", "description": "JSON array with one label per point: 1 foreground, "
                     "0 background; default all 1"},
    "multimask_output": {"type": "boolean", "default": False, "description": "Return the candidate masks "
                         "(with point_coords only) as the frames of one animated PNG, best first"},
})
SEGMENTATION_RESPONSES = _binary(
    "image/png", "The mask as a PNG (white = the object, black = the rest), the input's size. With "
    "`multimask_output=true` an animated PNG (APNG) whose frames are the candidate masks, best first: a plain "
    "PNG viewer shows the best one; read every frame with an APNG decoder (e.g. Pillow's `Image.seek`). "
    "`X-Mask-Scores` lists the predicted quality of each frame in order.",
    {MASK_SCORES_HEADER: "With multimask_output: comma-separated scores, one per frame, best first"})

BACKGROUND_FORM = _form(["file"], {
    "file": {**_FILE, "description": "The image (PNG, JPEG, WebP or GIF)"},
    "prompt": {"type": "string", "description": "What to keep, e.g. \"person\"; default the most salient object"},
})
BACKGROUND_RESPONSES = _binary(
    "image/png", "The image as an RGBA PNG whose alpha is the object's mask (transparent background, soft "
    "edges where the mask has them)", {})

VIDEO_FORM = _form(["file"], {
    "file": {**_FILE, "description": "The video (MP4, MOV, WebM, MKV, AVI or MPEG-TS)"},
    "prompt": {"type": "string", "description": "What to keep, e.g. \"person walking\"; default the most "
               "salient object"},
})
VIDEO_RESPONSES = _binary(
    "video/webm", "The video as WebM, VP9 with an alpha channel (yuva420p), with the input's frame rate and "
    "frame count; its audio, if any, is kept (re-encoded as Opus). Charged per frame that contains the object. "
    "Decode with libvpx-vp9 to read the alpha (FFmpeg's built-in vp9 decoder drops it).",
    {TOTAL_FRAMES_HEADER: "Frames in the video",
     FRAMES_WITH_OBJECT_HEADER: "Frames where the object was found (the ones charged)"})
