"""Vision requests (multipart forms, or JSON for upscaling) → checked vision service protos with their
price, and the service's results → the API's answers.

Everything the edge can see is checked before any credits are reserved: the form's parts, each image's
header and pixel count (univence.imaging, nothing is decoded), the point JSON against the image's size,
the upscale method and its output size, a video's byte size. The methods, their scales and the limits
are the vision service's own (its GetServiceInfo, edge.catalog.Published). What only decoding can tell
(a video's duration, frame count and resolution, a corrupt file) the service checks before it works:
for a video it refuses before its stream's first event, which the progress flow prices (edge.serving).

Every output is stored in media for its caller (`X-Media-Id` names it, GET /v1/media/{id} serves it);
the candidate masks of a multimask segmentation are the frames of one animated PNG (`animated_png`).
"""

from __future__ import annotations

import json
import math
import struct
import time
import zlib
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel

from edge import inputs
from edge.catalog import Published, PublishedModel, PublishedModels
from edge.endpoints.images.translate import OUTPUT_FORMATS, b64_json_answer, json_bytes
from edge.endpoints.vision.protocol import (
    FRAMES_WITH_OBJECT_HEADER,
    MASK_SCORES_HEADER,
    MEDIA_ID_HEADER,
    TOTAL_FRAMES_HEADER,
    BackgroundForm,
    SegmentationForm,
    UpscaleRequest,
)
from edge.errors import APIError
from edge.inputs import bad, check_text, too_large
from edge.outputs import Outputs
from edge.serving import Answer, Modality, ProgressPlan, UnaryPlan
from univence import imaging
from univence.accounts.v1 import accounts_pb2 as apb
from univence.vision.v1 import vision_pb2, vision_pb2_grpc

VISION = Modality("vision", vision_pb2_grpc.VisionServiceStub)
# The task of the upscale methods among the vision service's models (ModelInfo.task): the request's
# `method` is one of them, and a request naming none gets the task's default.
UPSCALE = "image.upscale"
PNG = "image/png"
F = TypeVar("F", bound=BaseModel)


@dataclass(frozen=True)
class VisionLimits:
    """The bounds the vision service publishes (GetServiceInfoResponse.limits). One it does not publish
    is not checked here: the service checks its own."""

    max_input_image_bytes: float = math.inf
    max_input_image_pixels: float = math.inf
    max_output_pixels: float = math.inf
    max_prompt_chars: float = math.inf
    max_points: float = math.inf
    max_video_bytes: float = math.inf


def check_image(data: bytes, param: str, limits: VisionLimits) -> tuple[int, int]:
    """The image's size from its header (ImageRejected, a 400 or 413, for what is refused)."""
    return imaging.check_header(data, param, max_bytes=limits.max_input_image_bytes,
                                max_pixels=limits.max_input_image_pixels)


def optional_text(value: str | None, param: str, limits: VisionLimits) -> str | None:
    """A text field (a prompt); empty (`-F prompt=`) is the same as absent."""
    if value is None or not value.strip():
        return None
    check_text(value, param, required=False, max_chars=limits.max_prompt_chars)
    return value


# -- the multipart forms ----------------------------------------------------------------------------------

async def read_upload(request: Request, form_model: type[F], published: Published, *,
                      video: bool = False) -> tuple[F, bytes]:
    """A form of one `file` (an image, which may also come as base64 text, or a video) and text fields:
    the fields as `form_model` and the file's bytes (413 past the published limit, checked on the
    declared length before the body is read, then on the file)."""
    limits = published.bounds(VisionLimits)
    max_bytes, base64_text = (limits.max_video_bytes, False) if video else (limits.max_input_image_bytes, True)
    inputs.check_content_length(request, max_bytes, "file", base64_text=base64_text)
    part_bytes = inputs.text_part_bytes(max_bytes) if base64_text else inputs.TEXT_PART_BYTES
    async with inputs.read_form(request, max_files=2, max_fields=16, max_part_bytes=part_bytes) as form:
        fields = inputs.validated(form_model, inputs.form_values(form, {"file"}))
        value = inputs.single(form, "file")
        if value is None or value == "":
            raise bad("file is required: send it as a multipart file part named `file`", "file",
                      "missing_required_parameter")
        data = await inputs.form_bytes(value, "file", max_bytes=max_bytes, base64_text=base64_text)
    if not data:
        raise bad("file is empty", "file")
    return fields, data


# -- plans: the checked request, its proto and its price ---------------------------------------------

def _json_list(text: str, param: str, example: str) -> list:
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise bad(f"{param} is not valid JSON; send a JSON array, e.g. {example}", param, "invalid_json") from None
    if not isinstance(value, list) or not value:
        raise bad(f"{param} must be a non-empty JSON array, e.g. {example}", param)
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def parse_points(text: str, width: int, height: int, limits: VisionLimits) -> list[vision_pb2.Point]:
    """point_coords: [[x, y], ...], each inside the image (width by height pixels)."""
    values = _json_list(text, "point_coords", "[[520,375],[100,200]]")
    if len(values) > limits.max_points:
        raise bad(f"point_coords has {len(values)} points; at most {limits.max_points} are accepted", "point_coords")
    points = []
    for i, value in enumerate(values):
        if not (isinstance(value, list) and len(value) == 2 and all(map(_is_number, value))):
            raise bad(f"point_coords[{i}] must be an [x, y] pair of numbers, got {json.dumps(value)}", "point_coords")
        x, y = value
        if not (0 <= x < width and 0 <= y < height):
            raise bad(f"point_coords[{i}] ({x}, {y}) is outside the {width}x{height} image (x from 0 to "
                      f"{width - 1}, y from 0 to {height - 1})", "point_coords")
        points.append(vision_pb2.Point(x=x, y=y))
    return points


def parse_labels(text: str, count: int) -> list[int]:
    """point_labels: one 0 (background) or 1 (foreground) per point."""
    labels = _json_list(text, "point_labels", "[1,0]")
    if any(label not in (0, 1) or isinstance(label, bool | float) for label in labels):
        raise bad(f"point_labels must hold only 0 (background) and 1 (foreground), got {json.dumps(labels)}",
                  "point_labels")
    if len(labels) != count:
        raise bad(f"point_labels has {len(labels)} labels for {count} points; send one per point",
                  "point_labels")
    return labels


def plan_segmentation(form: SegmentationForm, image: bytes, published: Published) -> UnaryPlan:
    limits = published.bounds(VisionLimits)
    width, height = check_image(image, "file", limits)
    prompt = optional_text(form.prompt, "prompt", limits)
    coords = form.point_coords if form.point_coords and form.point_coords.strip() else None
    labels = form.point_labels if form.point_labels and form.point_labels.strip() else None
    if prompt is None and coords is None:
        raise bad("send prompt (what to segment), point_coords (where), or both", "prompt",
                  "missing_required_parameter")
    if coords is None and labels is not None:
        raise bad("point_labels label the points of point_coords; send point_coords too", "point_labels")
    if form.multimask_output and coords is None:
        raise bad("multimask_output needs point_coords: a text prompt gives one mask", "multimask_output")
    points = parse_points(coords, width, height, limits) if coords is not None else []
    proto = vision_pb2.SegmentImageRequest(
        image=image, prompt=prompt or "", points=points, multimask_output=form.multimask_output,
        point_labels=parse_labels(labels, len(points)) if labels is not None else [])
    charge = apb.ChargeItem(operation=apb.OPERATION_IMAGE_SEGMENTATION)
    return UnaryPlan(proto, [charge], segmentation_answer(charge, form.multimask_output),
                     params={"image": "file", "points": "point_coords"})


def plan_image_background(form: BackgroundForm, image: bytes, published: Published) -> UnaryPlan:
    limits = published.bounds(VisionLimits)
    check_image(image, "file", limits)
    proto = vision_pb2.RemoveImageBackgroundRequest(image=image)
    if (prompt := optional_text(form.prompt, "prompt", limits)) is not None:
        proto.prompt = prompt
    charge = apb.ChargeItem(operation=apb.OPERATION_IMAGE_BACKGROUND_REMOVAL)

    async def answer(result: vision_pb2.RemoveImageBackgroundResponse, outputs: Outputs) -> Answer:
        return await stored_answer(result.image, result.mime_type or PNG, outputs, [charge],
                                   width=result.width, height=result.height)

    return UnaryPlan(proto, [charge], answer, params={"image": "file"})


def upscale_method(name: str | None, models: PublishedModels) -> PublishedModel:
    """The published upscale method `name` (any case; none: the default), or a 400 listing them."""
    model = models.find(name, UPSCALE)
    if model is None or model.task != UPSCALE:
        raise bad(f"unknown upscale method {name!r}; use one of {', '.join(models.ids(UPSCALE))}", "method",
                  "invalid_method")
    return model


def upscale_enum(method: str) -> int:
    """The proto's UpscaleMethod for the API's method name (`lanczos`: UPSCALE_METHOD_LANCZOS)."""
    value = vision_pb2.UpscaleMethod.DESCRIPTOR.values_by_name.get(f"UPSCALE_METHOD_{method.upper()}")
    if value is None:
        raise bad(f"upscale method {method!r} is not known to this edge", "method", "invalid_method")
    return value.number


def upscale_scale(requested: int | None, method: PublishedModel) -> int:
    """The factor: the method's published scale, or one the request chooses where the method publishes a
    largest one (max_scale; an upscale at least doubles)."""
    scale = method.limits.get("scale")
    if scale is None:
        raise APIError(503, f"the vision service publishes no scale for {method.id}; retry shortly",
                       "processing_error", code="model_unavailable")
    if requested is None or requested == scale:
        return int(scale)
    high = method.limits.get("max_scale")
    if high is None:
        raise bad(f"{method.id} upscales by exactly {int(scale)}; leave scale out or use lanczos for another "
                  "factor", "scale")
    inputs.check_range(requested, 2, high, "scale")
    return requested


def plan_upscale(body: UpscaleRequest, published: Published) -> UnaryPlan:
    limits = published.bounds(VisionLimits)
    method = upscale_method(body.method, published.models)
    image = inputs.decode_base64(body.image, "image", max_bytes=limits.max_input_image_bytes)
    width, height = check_image(image, "image", limits)
    scale = upscale_scale(body.scale, method)
    out_width, out_height = width * scale, height * scale
    max_output = min(limits.max_output_pixels, method.limit("max_output_pixels"))
    if out_width * out_height > max_output:
        raise too_large(f"image is {width}x{height}; {method.id} would make it {out_width}x{out_height} "
                        f"({out_width * out_height} pixels), over the {max_output} output pixels accepted", "image")
    proto = vision_pb2.UpscaleImageRequest(image=image, method=upscale_enum(method.id),
                                           output_format=OUTPUT_FORMATS[body.output_format])
    if body.scale is not None:
        proto.scale = scale
    charge = apb.ChargeItem(operation=apb.OPERATION_IMAGE_UPSCALE, method=method.id, width=out_width,
                            height=out_height)
    response_format = body.response_format or "b64_json"

    async def answer(result: vision_pb2.UpscaleImageResponse, outputs: Outputs) -> Answer:
        saved = await outputs.store(result.image, result.mime_type, width=result.width, height=result.height)
        created = int(time.time())
        content = json_bytes({"created": created, "data": [{"url": saved.url}]}) if response_format == "url" \
            else b64_json_answer(created, [(result.image, {})])
        return Answer(content, [charge], headers={MEDIA_ID_HEADER: saved.media_id})

    return UnaryPlan(proto, [charge], answer)


def check_video(data: bytes) -> None:
    """What the edge can see of a video without decoding it: that it is not an image."""
    if imaging.probe(data) is not None:
        raise bad("file is an image, not a video; for images use POST "
                  "/v1/images/remove-background", "file", "invalid_video")


def plan_video_background(form: BackgroundForm, video: bytes, published: Published) -> ProgressPlan:
    """Priced by the stream's first event (the probe: total_steps = the video's frames), charged for the
    frames where the object was found."""
    limits = published.bounds(VisionLimits)
    check_video(video)
    proto = vision_pb2.RemoveVideoBackgroundRequest(video=video)
    if (prompt := optional_text(form.prompt, "prompt", limits)) is not None:
        proto.prompt = prompt
    return ProgressPlan(proto, quote=video_quote, result=video_result, answer=video_answer,
                        params={"video": "file"})


def per_frame(frames: int) -> apb.ChargeItem:
    return apb.ChargeItem(operation=apb.OPERATION_VIDEO_BACKGROUND_REMOVAL, quantity=frames)


def video_quote(first: vision_pb2.RemoveVideoBackgroundResponse) -> list[apb.ChargeItem]:
    """Every frame of the video, as the service's probe counted them."""
    frames = first.progress.total_steps if first.HasField("progress") else first.result.total_frames
    if frames < 1:
        raise APIError(500, "the vision service did not say how many frames the video has", "processing_error")
    return [per_frame(frames)]


def video_result(event: vision_pb2.RemoveVideoBackgroundResponse) -> vision_pb2.VideoBackgroundResult | None:
    return event.result if event.HasField("result") else None


async def video_answer(result: vision_pb2.VideoBackgroundResult, outputs: Outputs) -> Answer:
    """The WebM, charged for the frames with the object (none: nothing, the hold is released)."""
    charges = [per_frame(result.frames_with_object)] if result.frames_with_object > 0 else []
    return await stored_answer(result.video, result.mime_type or "video/webm", outputs, charges, headers={
        TOTAL_FRAMES_HEADER: str(result.total_frames), FRAMES_WITH_OBJECT_HEADER: str(result.frames_with_object)})


# -- answers -------------------------------------------------------------------------------------------------

async def stored_answer(content: bytes, mime_type: str, outputs: Outputs, charges: list[apb.ChargeItem], *,
                        headers: dict[str, str] | None = None, width: int = 0, height: int = 0) -> Answer:
    """`content` as the answer itself, stored in media (`X-Media-Id`) for the caller."""
    saved = await outputs.store(content, mime_type, width=width, height=height)
    return Answer(content, charges, mime_type, {**(headers or {}), MEDIA_ID_HEADER: saved.media_id}, saved.media_id)


def segmentation_answer(charge: apb.ChargeItem, multimask: bool):
    """The mask, or with multimask_output the candidate masks as one animated PNG, best first."""
    async def answer(result: vision_pb2.SegmentImageResponse, outputs: Outputs) -> Answer:
        masks = list(result.candidate_masks) or [result.mask]
        content = animated_png(masks) if multimask else result.mask
        headers = {MASK_SCORES_HEADER: ",".join(f"{score:.4f}" for score in result.scores)} if result.scores else {}
        return await stored_answer(content, PNG, outputs, [charge], headers=headers, width=result.width,
                                   height=result.height)

    return answer


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Chunks an APNG has once (from the first frame) or builds itself; the others before the first IDAT
# (palette, transparency, gamma...) are the first frame's and apply to every frame.
_FRAME_CHUNKS = {b"IHDR", b"IDAT", b"IEND", b"acTL", b"fcTL", b"fdAT"}


def _png_chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    if not png.startswith(PNG_SIGNATURE):
        raise APIError(500, "the vision service returned a mask that is not a PNG", "processing_error")
    chunks, i = [], len(PNG_SIGNATURE)
    while i + 8 <= len(png):
        length, kind = int.from_bytes(png[i:i + 4], "big"), png[i + 4:i + 8]
        chunks.append((kind, png[i + 8:i + 8 + length]))
        i += 12 + length
        if kind == b"IEND":
            break
    return chunks


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def animated_png(frames: list[bytes]) -> bytes:
    """One APNG whose frames are these PNGs in order (one size and pixel format, as one service call's
    masks are): the first is also the default image, which a viewer that knows no APNG shows. Built from
    the PNGs' own compressed data, nothing is decoded."""
    parsed = [_png_chunks(frame) for frame in frames]
    header = parsed[0][0]
    def palette(chunks: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        return [chunk for chunk in chunks if chunk[0] in (b"PLTE", b"tRNS")]

    for chunks in parsed:
        if header[0] != b"IHDR" or chunks[0] != header or palette(chunks) != palette(parsed[0]):
            raise APIError(500, "the vision service returned masks of different formats", "processing_error")
    before_data = []
    for kind, data in parsed[0][1:]:
        if kind == b"IDAT":
            break
        if kind not in _FRAME_CHUNKS:
            before_data.append(_chunk(kind, data))
    out = [PNG_SIGNATURE, _chunk(b"IHDR", header[1]), _chunk(b"acTL", struct.pack(">II", len(frames), 0)),
           *before_data]
    sequence = 0
    # fcTL after its sequence number: width, height (the IHDR's), x and y offsets, a 1 s delay, dispose
    # none, blend source.
    control = header[1][:8] + struct.pack(">IIHHBB", 0, 0, 1, 1, 0, 0)
    for index, chunks in enumerate(parsed):
        out.append(_chunk(b"fcTL", struct.pack(">I", sequence) + control))
        sequence += 1
        for kind, data in chunks:
            if kind != b"IDAT":
                continue
            if index == 0:
                out.append(_chunk(b"IDAT", data))
            else:
                out.append(_chunk(b"fdAT", struct.pack(">I", sequence) + data))
                sequence += 1
    out.append(_chunk(b"IEND", b""))
    return b"".join(out)
