"""POST /v1/images/generations, /v1/images/generations/batch and /v1/images/edits.

Every request is checked here first (model, size, prompt, counts; for edits the base64, each image's
header and pixel count) so nothing invalid reserves credits; then reserve → the image service → store
each image in media (owner = the caller) → commit. A failure, or a client that goes away, releases
the hold. In a batch only the items that succeed are charged.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from edge import inputs
from edge.auth import Principal, require_principal
from edge.clients import call
from edge.errors import from_reason
from edge.inputs import bad, check_range, check_text, too_large
from edge.metering import until_disconnect
from edge.outputs import mark_profile, store_output
from edge.protocol.common import COMMON_ERRORS, error_responses
from edge.protocol.images import (
    DEFAULT_SIZE,
    EDIT_FORM_SCHEMA,
    MAX_BATCH_REQUESTS,
    MAX_EDIT_SIDE,
    MAX_GUIDANCE,
    MAX_INPUT_ASPECT,
    MAX_INPUT_IMAGE_BYTES,
    MAX_INPUT_IMAGE_PIXELS,
    MAX_INPUT_IMAGES,
    MAX_N,
    MAX_PROMPT_CHARS,
    MAX_SEED,
    MAX_STEPS,
    MIN_EDIT_SIDE,
    MIN_INPUT_SIDE,
    SIZES,
    BatchGenerationRequest,
    BatchResponse,
    ImageEditRequest,
    ImageGenerationRequest,
    ImagesResponse,
    image_model,
    model_names,
)
from univence.accounts.v1 import accounts_pb2 as apb
from univence.common.v1 import common_pb2
from univence.image.v1 import image_pb2, image_pb2_grpc

router = APIRouter(tags=["images"], responses={**COMMON_ERRORS, **error_responses(402, 409, 413)})
OUTPUT_FORMATS = {None: common_pb2.IMAGE_FORMAT_PNG, "png": common_pb2.IMAGE_FORMAT_PNG,
                  "jpeg": common_pb2.IMAGE_FORMAT_JPEG, "webp": common_pb2.IMAGE_FORMAT_WEBP}
JSON = "application/json"


# -- checks shared by every endpoint ------------------------------------------------------------------

def parse_size(value: str, param: str) -> tuple[int, int]:
    width, sep, height = value.strip().lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit():
        raise bad(f"{param} must look like WIDTHxHEIGHT (e.g. 1024x1024), got {value!r}", param)
    return int(width), int(height)


def check_prompt(value: str | None, param: str, *, required: bool) -> None:
    check_text(value, param, required=required, max_chars=MAX_PROMPT_CHARS)


def check_image(data: bytes, param: str) -> tuple[int, int]:
    return inputs.check_image(data, param, max_bytes=MAX_INPUT_IMAGE_BYTES, max_pixels=MAX_INPUT_IMAGE_PIXELS)


def decode_base64(value: str, param: str) -> bytes:
    return inputs.decode_base64(value, param, max_bytes=MAX_INPUT_IMAGE_BYTES)


# -- plans: the checked request, its proto and its price ---------------------------------------------

@dataclass
class Plan:
    proto: Any
    charge: apb.ChargeItem
    response_format: str


def set_optional(proto: Any, **fields: Any) -> None:
    for name, value in fields.items():
        if value is not None:
            setattr(proto, name, value)


def plan_generation(body: ImageGenerationRequest, prefix: str = "") -> Plan:
    for name in ("image", "mask", "input_images"):
        if getattr(body, name) is not None:
            raise bad(f"`{name}` is not supported on /v1/images/generations; use POST /v1/images/edits to edit "
                      "images", prefix + name, "unsupported_parameter")
    check_prompt(body.prompt, prefix + "prompt", required=True)
    check_prompt(body.negative_prompt, prefix + "negative_prompt", required=False)
    model = image_model(body.model)
    if model is None:
        raise bad(f"Invalid model ID {body.model!r}; use one of {model_names()}", prefix + "model", "model_not_found")
    size, param = body.image_size, "image_size"
    if body.size and body.size.strip().lower() != "auto":
        if size and size.strip().lower() != body.size.strip().lower():
            raise bad(f"image_size ({size}) and size ({body.size}) disagree; send one of them", prefix + "size")
        size, param = size or body.size, "image_size" if size else "size"
    size = (size or DEFAULT_SIZE).strip().lower()
    if size not in SIZES:
        raise bad(f"{param} {size!r} is not supported; use one of {', '.join(SIZES)}", prefix + param)
    width, height = parse_size(size, prefix + param)
    if width > model.max_width or height > model.max_height:
        raise bad(f"{model.id} makes images up to {model.max_width}x{model.max_height} (width x height); {size} is "
                  "too large for it", prefix + param)
    n = 1 if body.n is None else body.n
    check_range(n, 1, MAX_N, prefix + "n")
    check_range(body.num_inference_steps, 1, MAX_STEPS, prefix + "num_inference_steps")
    guidance = body.guidance_scale if body.guidance_scale is not None else body.cfg
    check_range(guidance, 0, MAX_GUIDANCE, prefix + ("guidance_scale" if body.guidance_scale is not None else "cfg"))
    check_range(body.seed, 0, MAX_SEED, prefix + "seed")
    proto = image_pb2.GenerateImagesRequest(model=model.id, prompt=body.prompt, width=width, height=height, n=n,
                                            output_format=OUTPUT_FORMATS[body.output_format])
    set_optional(proto, negative_prompt=body.negative_prompt, seed=body.seed,
                 num_inference_steps=body.num_inference_steps, guidance_scale=guidance)
    charge = apb.ChargeItem(operation=apb.OPERATION_IMAGE_GENERATION, model=model.id, width=width, height=height,
                            quantity=n)
    return Plan(proto, charge, body.response_format or "b64_json")


def plan_edit(body: ImageEditRequest, images: list[tuple[str, bytes]], mask: bytes | None) -> Plan:
    """`images` are (param name, bytes) in order; the JSON form's base64 is already decoded."""
    check_prompt(body.prompt, "prompt", required=True)
    check_prompt(body.negative_prompt, "negative_prompt", required=False)
    model = image_model(body.model or None)
    if model is None:
        raise bad(f"Invalid model ID {body.model!r}; use black-forest-labs/FLUX.2-klein-4B (distilled) or "
                  "black-forest-labs/FLUX.2-klein-base-4B (base)", "model", "model_not_found")
    if not images:
        raise bad("at least one input image is required (input_images, or `image` files)", "input_images",
                  "missing_required_parameter")
    if len(images) > MAX_INPUT_IMAGES:
        raise bad(f"{len(images)} input images were sent; at most {MAX_INPUT_IMAGES} are accepted",
                  images[0][0].rpartition("[")[0] or "input_images")
    sizes = [check_image(data, param) for param, data in images]
    for (param, _), (w, h) in zip(images, sizes, strict=True):
        if min(w, h) < MIN_INPUT_SIDE:
            raise bad(f"{param} is {w}x{h}; each side of an input image must be at least {MIN_INPUT_SIDE} pixels",
                      param, "invalid_image")
        if max(w, h) > MAX_INPUT_ASPECT * min(w, h):
            raise bad(f"{param} is {w}x{h}; input images may be at most {MAX_INPUT_ASPECT}:1", param, "invalid_image")
    if mask is not None:
        if len(images) > 1:
            raise bad("a mask works with exactly one input image (it masks that image)", "mask")
        if check_image(mask, "mask") != sizes[0]:
            raise bad("mask must be the same size as the image it masks", "mask")
    width, height = body.width, body.height
    if body.size and body.size.strip().lower() != "auto":
        parsed = parse_size(body.size, "size")
        if (width is not None and width != parsed[0]) or (height is not None and height != parsed[1]):
            raise bad("size disagrees with width/height; send one of them", "size")
        width, height = parsed
    check_range(width, MIN_EDIT_SIDE, MAX_EDIT_SIDE, "width")
    check_range(height, MIN_EDIT_SIDE, MAX_EDIT_SIDE, "height")
    match = body.match_image_size or 0
    if match not in (0, 1):
        raise bad(f"match_image_size must be 0 or 1, got {match}", "match_image_size")
    if match and max(sizes[0]) > MAX_EDIT_SIDE:
        raise bad(f"match_image_size asks for the first image's size, {sizes[0][0]}x{sizes[0][1]}, but outputs are "
                  f"at most {MAX_EDIT_SIDE} on a side; send width and height instead", "match_image_size")
    n = 1 if body.n is None else body.n
    check_range(n, 1, MAX_N, "n")
    check_range(body.num_steps, 1, MAX_STEPS, "num_steps")
    check_range(body.guidance, 0, MAX_GUIDANCE, "guidance")
    check_range(body.seed, 0, MAX_SEED, "seed")
    proto = image_pb2.EditImagesRequest(model=model.edit_model, prompt=body.prompt,
                                        input_images=[data for _, data in images], mask=mask or b"",
                                        match_image_size=bool(match), n=n,
                                        output_format=OUTPUT_FORMATS[body.output_format])
    set_optional(proto, negative_prompt=body.negative_prompt, width=width, height=height, num_steps=body.num_steps,
                 guidance=body.guidance, seed=body.seed)
    charge = apb.ChargeItem(operation=apb.OPERATION_IMAGE_EDIT, model=model.edit_model, quantity=n)
    return Plan(proto, charge, body.response_format or "b64_json")


# -- running and answering ----------------------------------------------------------------------------

def image_stub(request: Request) -> image_pb2_grpc.ImageServiceStub:
    return image_pb2_grpc.ImageServiceStub(request.app.state.clients.modality_channel("image"))


def timeout(request: Request) -> float:
    return request.app.state.clients.settings.rpc_timeout_seconds


async def store_images(request: Request, principal: Principal, images, response_format: str) -> list[dict]:
    """Stores every image in media (owner = the caller); the answer's `data` entries, in order."""
    stored = await asyncio.gather(*(store_output(request, principal, im.data, im.mime_type, width=im.width,
                                                 height=im.height) for im in images))
    data = []
    for im, (_, url) in zip(images, stored, strict=True):
        entry = {"url": url} if response_format == "url" else {"b64_json": base64.b64encode(im.data).decode()}
        entry["seed"] = im.seed
        data.append(entry)
    return data


def json_bytes(content: dict) -> bytes:
    return json.dumps(content, separators=(",", ":")).encode()


async def run_priced(request: Request, principal: Principal, plan: Plan, rpc) -> Response:
    """Reserve → the image service → store → commit, for one generation or edit request."""
    await mark_profile(request, "image")
    async with request.app.state.meter.hold(request, principal, [plan.charge]) as hold:
        if hold.replay is not None:
            return hold.replay
        result = await until_disconnect(request, call("image", rpc, plan.proto, timeout=timeout(request)))
        data = await store_images(request, principal, result.images, plan.response_format)
        content = json_bytes({"created": int(time.time()), "data": data})
        await hold.commit([plan.charge], content)
    return Response(content, media_type=JSON)


@router.post("/v1/images/generations", response_model=ImagesResponse, summary="Generate images from a prompt")
async def create_images(body: ImageGenerationRequest, request: Request,
                        principal: Principal = Depends(require_principal)) -> Response:  # noqa: B008
    plan = plan_generation(body)
    return await run_priced(request, principal, plan, image_stub(request).GenerateImages)


@router.post("/v1/images/generations/batch", response_model=BatchResponse,
             summary=f"Up to {MAX_BATCH_REQUESTS} generations, answered in order; failed items cost nothing")
async def create_image_batch(body: BatchGenerationRequest, request: Request,
                             principal: Principal = Depends(require_principal)) -> Response:  # noqa: B008
    if not 1 <= len(body.requests) <= MAX_BATCH_REQUESTS:
        raise bad(f"requests must hold 1 to {MAX_BATCH_REQUESTS} generation requests, got {len(body.requests)}",
                  "requests")
    plans = [plan_generation(item, f"requests[{i}].") for i, item in enumerate(body.requests)]
    for i, plan in enumerate(plans):
        if plan.proto.n != 1:  # keeps a batch's answer within one message; n works on /v1/images/generations
            raise bad("n must be 1 in a batch item; send more items, or use n on /v1/images/generations",
                      f"requests[{i}].n")
    stub = image_stub(request)
    await mark_profile(request, "image")
    async with request.app.state.meter.hold(request, principal, [p.charge for p in plans]) as hold:
        if hold.replay is not None:
            return hold.replay
        result = await until_disconnect(request, call(
            "image", stub.BatchGenerateImages,
            image_pb2.BatchGenerateImagesRequest(requests=[p.proto for p in plans]), timeout=timeout(request)))
        slots = await asyncio.gather(*(batch_slot(request, principal, plan, item)
                                       for plan, item in zip(plans, result.results, strict=True)))
        content = json_bytes({"data": slots})
        done = [plan.charge for plan, slot in zip(plans, slots, strict=True) if "error" not in slot]
        if done:  # only the items that succeeded are charged; with none, the hold is released
            await hold.commit(done, content)
    return Response(content, media_type=JSON)


async def batch_slot(request: Request, principal: Principal, plan: Plan, item: image_pb2.BatchItemResult) -> dict:
    if item.error_code or not item.HasField("response"):
        error = from_reason(item.error_reason, item.error_message or "the image service failed on this item",
                            item.error_param)
        return {"error": {"message": error.message, "type": error.type, "param": error.param, "code": error.code}}
    data = await store_images(request, principal, item.response.images, plan.response_format)
    return {"created": int(time.time()), "data": data}


@router.post("/v1/images/edits", response_model=ImagesResponse,
             summary="Edit 1 to 4 images (JSON with base64 input_images, or OpenAI's multipart `image`/`image[]`)",
             openapi_extra={"requestBody": {"required": True, "content": {
                 JSON: {"schema": ImageEditRequest.model_json_schema()},
                 "multipart/form-data": {"schema": EDIT_FORM_SCHEMA}}}})
async def edit_images(request: Request, principal: Principal = Depends(require_principal)) -> Response:  # noqa: B008
    content_type = request.headers.get("content-type", JSON).split(";")[0].strip().lower()
    if content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        async with request.form(max_files=32, max_fields=64,
                                max_part_size=MAX_INPUT_IMAGE_BYTES * 4 // 3 + 1024) as form:
            body, images, mask = await read_edit_form(form)
    elif content_type == JSON or content_type.endswith("+json"):
        body, images, mask = read_edit_json(await request.body())
    else:
        raise bad(f"send the edit as application/json or multipart/form-data, not {content_type}", None,
                  "unsupported_media_type")
    plan = plan_edit(body, images, mask)
    return await run_priced(request, principal, plan, image_stub(request).EditImages)


def validated(fields: dict) -> ImageEditRequest:
    try:
        return ImageEditRequest.model_validate(fields)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None


def read_edit_json(raw: bytes) -> tuple[ImageEditRequest, list[tuple[str, bytes]], bytes | None]:
    try:
        fields = json.loads(raw or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise bad("the request body is not valid JSON", None, "invalid_json") from None
    if not isinstance(fields, dict):
        raise bad("the request body must be a JSON object", None, "invalid_json")
    body = validated(fields)
    encoded = body.input_images or []
    if len(encoded) > MAX_INPUT_IMAGES:
        raise bad(f"{len(encoded)} input images were sent; at most {MAX_INPUT_IMAGES} are accepted", "input_images")
    images = [(f"input_images[{i}]", decode_base64(value, f"input_images[{i}]")) for i, value in enumerate(encoded)]
    mask = decode_base64(body.mask, "mask") if body.mask else None
    return body, images, mask


async def read_edit_form(form) -> tuple[ImageEditRequest, list[tuple[str, bytes]], bytes | None]:
    """OpenAI's multipart: `image` (one file) or `image[]` (several), `mask`, and the other fields as text.
    Base64 text under `input_images`/`input_images[]` works too."""
    file_keys = {"image", "image[]", "input_images", "input_images[]", "mask"}
    fields = {key: value for key, value in form.multi_items() if key not in file_keys and isinstance(value, str)}
    entries = [(key, value) for key, value in form.multi_items() if key in file_keys - {"mask"}]
    if len(entries) > MAX_INPUT_IMAGES:
        raise bad(f"{len(entries)} input images were sent; at most {MAX_INPUT_IMAGES} are accepted", "image")
    body = validated(fields)
    images = []
    for i, (key, value) in enumerate(entries):
        param = f"{key.removesuffix('[]')}[{i}]"
        images.append((param, await form_bytes(value, param)))
    mask_value = form.get("mask")
    mask = await form_bytes(mask_value, "mask") if mask_value not in (None, "") else None
    return body, images, mask


async def form_bytes(value: UploadFile | str, param: str) -> bytes:
    if isinstance(value, str):
        return decode_base64(value, param)
    if value.size is not None and value.size > MAX_INPUT_IMAGE_BYTES:
        raise too_large(f"{param} is {value.size} bytes; at most {MAX_INPUT_IMAGE_BYTES // (1024 * 1024)} MiB per "
                        "image", param)
    return await value.read()
