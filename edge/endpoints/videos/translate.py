"""Video requests (the img2video form, OpenAI's /v1/videos form) → a checked GenerateVideo job with its
price, and jobs → the API's video objects.

Everything the edge can see is checked before credits are reserved: the form's parts, the image's
header and pixel count (univence.imaging, nothing is decoded), the prompt's length, the model, the
resolution class (or OpenAI's `size`), num_frames and num_steps, against what the video service
publishes (its GetServiceInfo: the model's resolution classes with their sizes, and the service's
limits). OpenAI's `seconds` becomes frames at the service's frame rate.

One flat price per video (1 credit; free for premium, which accounts decides); a failed or cancelled
video costs nothing (edge.jobs releases its hold).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request
from google.protobuf import json_format
from pydantic import BaseModel

from edge import inputs
from edge.catalog import Published, PublishedModel
from edge.endpoints.videos.protocol import UserVideo, VideoError, VideoFields, VideoObject
from edge.errors import APIError, from_status
from edge.inputs import bad, check_text
from edge.jobs import JobSpec, discard
from edge.outputs import Outputs, media_url
from edge.serving import Modality
from univence import imaging
from univence.accounts.v1 import accounts_pb2 as apb
from univence.media.v1 import media_pb2
from univence.video.v1 import video_pb2, video_pb2_grpc

VIDEO = Modality("video", video_pb2_grpc.VideoServiceStub)
KIND = "video"
TASK = "video.generation"
MP4, JPEG = "video/mp4", "image/jpeg"
F = TypeVar("F", bound=BaseModel)
S = media_pb2.JobStatus
# A cancelled job is `failed` in OpenAI's statuses, with error.code "cancelled".
STATUSES = {S.JOB_STATUS_QUEUED: "queued", S.JOB_STATUS_IN_PROGRESS: "in_progress",
            S.JOB_STATUS_COMPLETED: "completed", S.JOB_STATUS_FAILED: "failed", S.JOB_STATUS_CANCELLED: "failed"}


@dataclass(frozen=True)
class VideoLimits:
    """The bounds the video service publishes (GetServiceInfoResponse.limits); one it does not publish is
    left to the service (which checks its own before it works)."""

    max_prompt_chars: float = math.inf
    max_input_image_bytes: float = math.inf
    max_input_image_pixels: float = math.inf
    min_frames: float = 1
    max_frames: float = math.inf
    default_frames: float = 81
    # Frames come in 4k+1 where the model needs it (the Wan VAE compresses time 4x): 4 here then.
    frame_multiple: float = 1
    min_steps: float = 1
    max_steps: float = math.inf
    default_steps: float = 4


async def read_upload(request: Request, fields: type[F], image_part: str, published: Published) -> tuple[F, bytes]:
    """A form of one image (the part `image_part`, a file or base64 text) and text fields: the fields as
    `fields` and the image's bytes (413 past the published limit, on the declared length before the body
    is read, then on the image)."""
    max_bytes = published.bounds(VideoLimits).max_input_image_bytes
    inputs.check_content_length(request, max_bytes, image_part, base64_text=True)
    async with inputs.read_form(request, max_files=2, max_fields=24,
                                max_part_bytes=inputs.text_part_bytes(max_bytes)) as form:
        values = inputs.validated(fields, inputs.form_values(form, {image_part}))
        value = inputs.single(form, image_part)
        if value is None or value == "":
            raise bad(f"{image_part} is required: send the first frame as a multipart file part named "
                      f"`{image_part}` (image to video)", image_part, "missing_required_parameter")
        data = await inputs.form_bytes(value, image_part, max_bytes=max_bytes)
    if not data:
        raise bad(f"{image_part} is empty", image_part)
    return values, data


def video_model(name: str | None, published: Published) -> PublishedModel:
    model = published.models.find(name, TASK)
    if model is None or model.task != TASK:
        raise bad(f"unknown video model {name!r}; use one of {', '.join(published.models.names())}", "model",
                  "invalid_model")
    return model


def class_size(model: PublishedModel, name: str, image: tuple[int, int]) -> str:
    """The WIDTHxHEIGHT a resolution class makes from an image of this size (its orientation)."""
    width, height = int(model.limit(f"{name}_width")), int(model.limit(f"{name}_height"))
    return f"{width}x{height}" if image[0] >= image[1] else f"{height}x{width}"


def resolution_of(fields: VideoFields, size: str | None, model: PublishedModel) -> str:
    """The resolution class: `resolution`, else OpenAI's `size` (a class's size either way round, or a
    class name), else the model's default."""
    offered = model.sizes
    if fields.resolution:
        if fields.resolution.lower() not in offered:
            note = " (this deployment runs TurboDiffusion, which makes 480p and 720p)" if "1080p" not in offered else ""
            raise bad(f"resolution must be one of {', '.join(offered)}, got {fields.resolution!r}{note}",
                      "resolution", "invalid_resolution")
        return fields.resolution.lower()
    if size:
        return class_of_size(size, model)
    return model.default_size or offered[0]


def class_of_size(size: str, model: PublishedModel) -> str:
    """The resolution class OpenAI's `size` asks for: a class name ("720p"), or WIDTHxHEIGHT either way
    round, whose short side picks the class with the nearest nominal short side (1280x720 → 720p,
    1792x1024 → 1080p, 832x480 → 480p), on every profile. The orientation follows the input image."""
    offered = model.sizes
    if size.lower() in offered:
        return size.lower()
    width, x, height = size.lower().partition("x")
    if not (x and width.isdigit() and height.isdigit() and 0 < int(width) <= 8192 and 0 < int(height) <= 8192):
        raise bad(f"size must be WIDTHxHEIGHT (like 1280x720) or one of {', '.join(offered)}, got {size!r}",
                  "size", "invalid_size")
    short = min(int(width), int(height))
    return min(offered, key=lambda name: (abs(model.limit(f"{name}_short_side") - short),
                                          -model.limit(f"{name}_short_side")))


def frames_of(fields: VideoFields, seconds: str | None, model: PublishedModel, limits: VideoLimits) -> int:
    """num_frames, else OpenAI's seconds at the service's frame rate (to the frame multiple), else the
    default; within the published bounds."""
    frames = fields.num_frames
    multiple = max(1, int(limits.frame_multiple))
    if frames is None and seconds:
        try:
            value = float(seconds)
        except ValueError:
            raise bad(f"seconds must be a number, got {seconds!r}", "seconds") from None
        if not math.isfinite(value) or value <= 0:
            raise bad(f"seconds must be above 0, got {seconds!r}", "seconds")
        fps = model.limit("fps")
        if math.isinf(fps):
            raise bad("seconds cannot be used: the video service publishes no frame rate; send num_frames", "seconds")
        frames = round(value * fps / multiple) * multiple + 1
        if frames > limits.max_frames:
            raise bad(f"seconds={seconds} is {frames} frames at {fps:g} fps; at most {limits.max_frames:g} frames "
                      f"({(limits.max_frames - 1) / fps:g} s) are made", "seconds")
    if frames is None:
        return int(limits.default_frames)
    inputs.check_range(frames, limits.min_frames, limits.max_frames, "num_frames")
    if (frames - 1) % multiple:
        raise bad(f"num_frames must be {multiple}k+1 ({limits.min_frames:g}, {limits.min_frames + multiple:g}, ..., "
                  f"{limits.max_frames:g}), got {frames}", "num_frames")
    return frames


def plan_video(fields: VideoFields, image: bytes, image_part: str, published: Published, *,
               seconds: str | None = None, size: str | None = None) -> JobSpec[video_pb2.VideoResult]:
    """The checked GenerateVideo job, its price and its public parameters."""
    limits = published.bounds(VideoLimits)
    model = video_model(fields.model, published)
    width, height = imaging.check_header(image, image_part, max_bytes=limits.max_input_image_bytes,
                                         max_pixels=limits.max_input_image_pixels)
    check_text(fields.prompt, "prompt", required=True, max_chars=limits.max_prompt_chars)
    negative = fields.negative_prompt
    check_text(negative, "negative_prompt", required=False, max_chars=limits.max_prompt_chars)
    resolution = resolution_of(fields, size, model)
    frames = frames_of(fields, seconds, model, limits)
    steps = fields.num_steps if fields.num_steps is not None else int(limits.default_steps)
    inputs.check_range(steps, limits.min_steps, limits.max_steps, "num_steps")
    request = video_pb2.GenerateVideoRequest(
        image=image, prompt=fields.prompt, num_frames=frames, num_inference_steps=steps, use_ode=fields.use_ode,
        resolution=video_pb2.Resolution.Value(f"RESOLUTION_{resolution.upper()}"))
    if negative is not None:
        request.negative_prompt = negative
    if fields.seed is not None:
        request.seed = fields.seed
    fps = model.limit("fps")
    params: dict[str, Any] = {
        "prompt": fields.prompt, "model": model.id, "resolution": resolution, "num_frames": frames,
        "num_steps": steps, "use_ode": fields.use_ode, "size": class_size(model, resolution, (width, height)),
        "seconds": f"{(frames - 1) / fps:g}" if math.isfinite(fps) else str(seconds or ""),
    }
    if negative is not None:
        params["negative_prompt"] = negative
    if fields.seed is not None:
        params["seed"] = str(fields.seed)  # a Struct holds doubles: an int64 seed travels as text
    return JobSpec(KIND, VIDEO, "GenerateVideo", request, [apb.ChargeItem(operation=apb.OPERATION_IMAGE_TO_VIDEO)],
                   params, result=video_result, store=store_video)


def video_result(event: video_pb2.GenerateVideoResponse) -> video_pb2.VideoResult | None:
    return event.result if event.HasField("result") else None


async def store_video(result: video_pb2.VideoResult, outputs: Outputs) -> list[str]:
    """The MP4 in media for its owner, then its thumbnail (when the service made one); all or nothing."""
    if not result.video:
        raise APIError(500, "the video service returned no video", "processing_error")
    video = await outputs.store(result.video, result.mime_type or MP4, width=result.width, height=result.height)
    ids = [video.media_id]
    if result.thumbnail:
        try:
            ids.append((await outputs.store(result.thumbnail, JPEG)).media_id)
        except BaseException:  # the job fails: its video would be named by no job
            await discard(outputs.clients, outputs.principal.user_id, ids)
            raise
    return ids


# -- jobs → the API's objects --------------------------------------------------------------------------------

def job_params(job: media_pb2.Job) -> dict[str, Any]:
    return json_format.MessageToDict(job.params)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def job_error(job: media_pb2.Job) -> VideoError | None:
    if not job.HasField("error"):
        return None
    error = from_status(job.error, "the video failed")
    return VideoError(code=error.code or error.type, message=error.message, type=error.type, param=error.param)


def video_object(job: media_pb2.Job, request: Request) -> VideoObject:
    params = job_params(job)
    ids = list(job.result_media_ids) if job.status == S.JOB_STATUS_COMPLETED else []
    return VideoObject(
        id=job.job_id, status=STATUSES.get(job.status, "failed"), progress=job.progress,
        created_at=job.create_time.seconds, completed_at=job.end_time.seconds if job.HasField("end_time") else None,
        model=params.get("model", ""), size=params.get("size", ""), seconds=params.get("seconds", ""),
        prompt=params.get("prompt"), error=job_error(job),
        queue_position=job.queue_position if job.status == S.JOB_STATUS_QUEUED else None,
        resolution=params.get("resolution"), num_frames=_int(params.get("num_frames")),
        num_steps=_int(params.get("num_steps")), url=media_url(request, ids[0]) if ids else None,
        thumbnail_url=media_url(request, ids[1]) if len(ids) > 1 else None)


def user_video(job: media_pb2.Job, request: Request) -> UserVideo:
    made = video_object(job, request)
    return UserVideo(id=made.id, url=made.url, thumbnail_url=made.thumbnail_url, prompt=made.prompt,
                     resolution=made.resolution, num_frames=made.num_frames, size=made.size, status=made.status,
                     progress=made.progress, created=made.created_at, error=made.error)


def content_media_id(job: media_pb2.Job, variant: str) -> str:
    """The media id of a completed video's `variant` (video, thumbnail); 409 before it has completed."""
    if job.status != S.JOB_STATUS_COMPLETED:
        raise APIError(409, f"video {job.job_id} is {STATUSES.get(job.status, 'failed')}, not completed: its content "
                       "is there once GET /v1/videos/{id} says completed", code="video_not_ready")
    index = {"video": 0, "thumbnail": 1}.get(variant)
    if index is None:
        raise bad(f"variant must be video or thumbnail, got {variant!r}", "variant")
    if index >= len(job.result_media_ids):
        raise APIError(404, f"video {job.job_id} has no {variant}", code="not_found", param="variant")
    return job.result_media_ids[index]

