"""What the video service accepts, checked before any work: a GenerateVideoRequest becomes the VideoJob
the backend runs, or INVALID_REQUEST / PAYLOAD_TOO_LARGE naming the field. The image is decoded by
univence.imaging (bytes and declared pixels checked before decoding), then fitted to the output size.

The bounds come from VideoSettings; `limits` publishes them to the edge, which checks the same ones
before it reserves credits (the sizes are in the catalog's ModelInfo).
"""

from __future__ import annotations

import secrets

from services.common import errors
from services.common.errors import image_input, invalid
from services.video.backends import VideoJob
from services.video.catalog import BACKEND_RESOLUTIONS, RESOLUTIONS, Resolution, resolution
from services.video.config import FRAME_MULTIPLE, VideoSettings
from services.video.frames import fit
from univence.imaging import decode
from univence.video.v1 import video_pb2

# Seeds are drawn from, and accepted within, the non-negative int64 range torch generators take.
MAX_SEED = 2**63 - 1


def limits(settings: VideoSettings) -> dict[str, float]:
    """The bounds the edge checks before reserving credits (GetServiceInfoResponse.limits). num_frames
    is `frame_multiple` * k + 1 within [min_frames, max_frames]; `fps` turns frames into seconds."""
    return {
        "max_prompt_chars": settings.max_prompt_chars,
        "max_input_image_bytes": settings.max_input_image_bytes,
        "max_input_image_pixels": settings.max_input_image_pixels,
        "min_frames": settings.min_frames,
        "max_frames": settings.max_frames,
        "default_frames": settings.default_frames,
        "frame_multiple": FRAME_MULTIPLE,
        "min_steps": 1,
        "max_steps": settings.max_steps,
        "default_steps": settings.default_steps,
        "fps": settings.fps,
    }


def check_text(text: str, settings: VideoSettings, param: str, *, required: bool) -> str:
    errors.check_text(text, settings.max_prompt_chars, param)
    if required and not text.strip():
        raise invalid(f"{param} is required and must not be empty: describe the motion to make", param)
    return text.strip()


def check_frames(request: video_pb2.GenerateVideoRequest, settings: VideoSettings) -> int:
    frames = request.num_frames if request.HasField("num_frames") else settings.default_frames
    low, high = settings.min_frames, settings.max_frames
    if not low <= frames <= high:
        raise invalid(f"num_frames is {frames}; it must be between {low} and {high} (at {settings.fps} fps: "
                      f"{low / settings.fps:.2f} to {high / settings.fps:.2f} s)", "num_frames")
    if frames % FRAME_MULTIPLE != 1:
        below = frames - (frames - 1) % FRAME_MULTIPLE
        raise invalid(f"num_frames is {frames}; it must be {FRAME_MULTIPLE}k+1 (the model makes frames in groups "
                      f"of {FRAME_MULTIPLE} after the first), e.g. {max(low, below)} or "
                      f"{min(high, below + FRAME_MULTIPLE)}", "num_frames")
    return frames


def check_steps(request: video_pb2.GenerateVideoRequest, settings: VideoSettings) -> int:
    steps = request.num_inference_steps if request.HasField("num_inference_steps") else settings.default_steps
    if not 1 <= steps <= settings.max_steps:
        raise invalid(f"num_steps is {steps}; it must be between 1 and {settings.max_steps} (few-step sampling)",
                      "num_inference_steps")
    return steps


def check_resolution(request: video_pb2.GenerateVideoRequest, backend: str) -> Resolution:
    """The resolution class, if this deployment's backend makes it."""
    chosen = resolution(request.resolution)
    names = ", ".join(r.name for r in RESOLUTIONS)
    if chosen is None:
        raise invalid(f"resolution {request.resolution} is not known; use one of {names}", "resolution")
    served = BACKEND_RESOLUTIONS[backend]
    if chosen.name not in served:
        raise invalid(f"resolution {chosen.name} is not served by this deployment: it runs TurboDiffusion, which makes "
                      f"{' and '.join(served)} only", "resolution")
    return chosen


def check_seed(request: video_pb2.GenerateVideoRequest) -> int:
    if not request.HasField("seed"):
        return secrets.randbelow(2**31)
    if not 0 <= request.seed <= MAX_SEED:
        raise invalid(f"seed is {request.seed}; it must be between 0 and {MAX_SEED}", "seed")
    return request.seed


def plan(request: video_pb2.GenerateVideoRequest, settings: VideoSettings, *, profile: str,
         backend: str) -> VideoJob:
    """Every field checked (cheap ones first), then the image decoded and fitted to the output size. Runs
    in a thread: decoding a large image takes a moment."""
    prompt = check_text(request.prompt, settings, "prompt", required=True)
    negative = (check_text(request.negative_prompt, settings, "negative_prompt", required=False)
                if request.HasField("negative_prompt") else None)
    frames = check_frames(request, settings)
    steps = check_steps(request, settings)
    chosen = check_resolution(request, backend)
    seed = check_seed(request)
    if not request.image:
        raise invalid("image is required: the first frame of the video (PNG, JPEG or WebP)", "image")
    with image_input():
        image = decode(request.image, "image", max_bytes=settings.max_input_image_bytes,
                       max_pixels=settings.max_input_image_pixels, mode="RGB")
    width, height = chosen.size(profile, image.size)
    return VideoJob(fit(image, width, height), prompt, negative, frames, steps, width, height, chosen.name,
                    request.use_ode, seed)
