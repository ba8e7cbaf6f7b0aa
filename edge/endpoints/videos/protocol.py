"""Video shapes: POST /v1/images/img2video (the reference's multipart form, answered with the MP4), OpenAI's
/v1/videos jobs (create, retrieve, list, content, delete) and GET /v1/images/user-videos.

The forms are multipart (an image part and text fields, read by edge.inputs within bounds); their
OpenAPI schemas are given by hand below. The values checked (models, resolutions, frame and step bounds,
sizes) are the ones the video service publishes (see translate); the defaults shown are documentation.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from edge.inputs import Int32, Int64

# Headers of the synchronous answer.
MEDIA_ID_HEADER = "X-Media-Id"
VIDEO_ID_HEADER = "X-Video-Id"
# OpenAI's SDK polls create_and_poll at this interval when the answer names it.
POLL_AFTER_HEADER = "openai-poll-after-ms"


class VideoFields(BaseModel):
    """The fields of an image-to-video request, as the reference names them (img2video's whole form;
    POST /v1/videos accepts them beside OpenAI's)."""

    model_config = ConfigDict(extra="ignore")

    prompt: str | None = None
    negative_prompt: str | None = None
    num_frames: Int32 | None = None
    num_steps: Int32 | None = None
    resolution: str | None = None
    use_ode: bool = False
    seed: Int64 | None = None
    model: str | None = None


class VideoCreateFields(VideoFields):
    """POST /v1/videos's text fields: OpenAI's `seconds` and `size` besides ours."""

    seconds: str | None = None
    size: str | None = None


# -- responses ----------------------------------------------------------------------------------------

class VideoError(BaseModel):
    code: str
    message: str
    type: str | None = None
    param: str | None = None


class VideoObject(BaseModel):
    """OpenAI's video object, plus what this API adds (queue_position, resolution, num_frames...)."""

    id: str
    object: Literal["video"] = "video"
    status: Literal["queued", "in_progress", "completed", "failed"]
    progress: int
    created_at: int
    completed_at: int | None = None
    expires_at: int | None = None
    model: str
    size: str
    seconds: str
    prompt: str | None = None
    remixed_from_video_id: str | None = None
    error: VideoError | None = None
    queue_position: int | None = None
    resolution: str | None = None
    num_frames: int | None = None
    num_steps: int | None = None
    url: str | None = None
    thumbnail_url: str | None = None


class VideoList(BaseModel):
    """OpenAI's cursor list (GET /v1/videos)."""

    object: Literal["list"] = "list"
    data: list[VideoObject]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool


class VideoDeleted(BaseModel):
    id: str
    object: Literal["video.deleted"] = "video.deleted"
    # True when the video (the job and its files) is gone; false when it was queued or running: it is
    # cancelled then, and kept so that its end can be read (a second DELETE removes it).
    deleted: bool


class UserVideo(BaseModel):
    """One of the caller's videos (GET /v1/images/user-videos)."""

    id: str
    object: Literal["video"] = "video"
    url: str | None = None
    thumbnail_url: str | None = None
    prompt: str | None = None
    resolution: str | None = None
    num_frames: int | None = None
    size: str | None = None
    status: str
    progress: int
    created: int
    error: VideoError | None = None


class UserVideoList(BaseModel):
    object: Literal["list"] = "list"
    data: list[UserVideo]
    total: int
    limit: int
    offset: int
    has_more: bool


# -- OpenAPI of the multipart forms ------------------------------------------------------------------------

_FILE = {"type": "string", "format": "binary"}
_FIELDS: dict[str, dict[str, Any]] = {
    "prompt": {"type": "string", "description": "The motion to make, e.g. \"a dramatic cinematic dolly zoom\""},
    "negative_prompt": {"type": "string", "description": "What to avoid, e.g. \"blurry, distorted\""},
    "num_frames": {"type": "integer", "default": 81, "description": "Frames to make (4k+1: 5, 9, ..., 81; "
                   "the bounds are the video service's)"},
    "num_steps": {"type": "integer", "default": 4, "minimum": 1, "description": "Sampling steps, 1 to 4"},
    "resolution": {"type": "string", "default": "480p", "enum": ["480p", "720p", "1080p"], "description": (
        "Resolution class; the input image's orientation picks landscape or portrait. TurboDiffusion "
        "deployments make 480p and 720p (1080p is a 400 there); the diffusers backend all three")},
    "use_ode": {"type": "boolean", "default": False, "description": "Deterministic ODE sampler (else SDE)"},
    "seed": {"type": "integer", "description": "Seed for reproducible output; random when unset"},
    "model": {"type": "string", "description": "The video model (GET /v1/models); default the service's own"},
}


def _form(image: str, extra: dict[str, dict[str, Any]]) -> dict[str, Any]:
    fields = {image: {**_FILE, "description": "The first frame (PNG, JPEG or WebP)"}, **_FIELDS, **extra}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": [image, "prompt"], "properties": fields}}}}}


IMG2VIDEO_FORM = _form("image", {})
CREATE_FORM = _form("input_reference", {
    "seconds": {"type": "string", "description": "OpenAI's duration in seconds; becomes num_frames at the "
                "service's frame rate (num_frames wins when both are sent)"},
    "size": {"type": "string", "description": "OpenAI's WIDTHxHEIGHT (either way round): its short side "
             "picks the resolution class with the nearest nominal short side (832x480 → 480p, 1280x720 → 720p, "
             "1792x1024 → 1080p); or a class name (480p). The orientation follows the input image"},
})
IMG2VIDEO_RESPONSES: dict[int | str, dict[str, Any]] = {200: {
    "description": "The video, MP4 (H.264), made synchronously; it is also a job (GET /v1/videos/{X-Video-Id}) "
                   "and listed in GET /v1/images/user-videos",
    "content": {"video/mp4": {"schema": _FILE}},
    "headers": {MEDIA_ID_HEADER: {"description": "The video's id: GET /v1/media/{id} serves it (with Range)",
                                  "schema": {"type": "string"}},
                VIDEO_ID_HEADER: {"description": "Its job's id (GET /v1/videos/{id})", "schema": {"type": "string"}}}}}
CONTENT_RESPONSES: dict[int | str, dict[str, Any]] = {200: {
    "description": "The MP4 (variant=video), or a JPEG of its first frame (variant=thumbnail); Range works",
    "content": {"video/mp4": {"schema": _FILE}, "image/jpeg": {"schema": _FILE}}}}
