"""Image requests (JSON, or OpenAI's multipart edit form) → checked image service protos with their
price, and the service's results → the API's answers.

Every request is checked here before any credits are reserved: model, size, prompt and counts, and for
edits the base64, each image's header and its pixel count (univence.imaging, nothing is decoded). The
model names, their sizes and bounds, and the limits are the image service's own (what its
GetServiceInfo publishes, edge.catalog.Published), so a name or a limit changed on the service changes
here too.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile

from edge import inputs
from edge.catalog import Published, PublishedModel, PublishedModels
from edge.endpoints.images.protocol import BatchGenerationRequest, ImageEditRequest, ImageGenerationRequest
from edge.errors import from_status
from edge.inputs import bad, check_range, check_text
from edge.outputs import Outputs
from edge.serving import Answer, Modality, UnaryPlan
from univence import imaging
from univence.accounts.v1 import accounts_pb2 as apb
from univence.common.v1 import common_pb2
from univence.image.v1 import image_pb2, image_pb2_grpc

IMAGE = Modality("image", image_pb2_grpc.ImageServiceStub)
OUTPUT_FORMATS = {None: common_pb2.IMAGE_FORMAT_PNG, "png": common_pb2.IMAGE_FORMAT_PNG,
                  "jpeg": common_pb2.IMAGE_FORMAT_JPEG, "webp": common_pb2.IMAGE_FORMAT_WEBP}
JSON = "application/json"
# The seed is an int64 in the proto.
MAX_SEED = 2**63 - 1


# -- what the image service publishes --------------------------------------------------------------------

# The tasks of the image service's models (ModelInfo.task): a request that names no model gets its
# task's default. Any of its models may be named for either; an edit runs on the model's `runs_on`.
GENERATION = "image.generation"
EDIT = "image.edit"


@dataclass(frozen=True)
class ImageLimits:
    """The bounds the image service publishes (GetServiceInfoResponse.limits). One it does not publish
    is not checked here: the service checks its own."""

    max_prompt_chars: float = math.inf
    max_n: float = math.inf
    max_steps: float = math.inf
    max_guidance: float = math.inf
    max_batch_requests: float = math.inf
    max_input_images: float = math.inf
    max_input_image_bytes: float = math.inf
    max_input_image_pixels: float = math.inf
    min_input_side: float = 1
    max_input_aspect: float = math.inf
    min_edit_side: float = 1
    max_edit_side: float = math.inf


def generation_model(name: str | None, models: PublishedModels, param: str) -> PublishedModel:
    """The model a generation names (an id or alias, any case; none: the default), or model_not_found."""
    model = models.find(name, GENERATION)
    if model is None:
        raise bad(f"Invalid model ID {name!r}; use one of {', '.join(models.names())}", param, "model_not_found")
    return model


def edit_model(name: str | None, models: PublishedModels) -> str:
    """The id of the model an edit naming `name` runs on (none: the default edit model), or
    model_not_found."""
    model = models.find(name, EDIT)
    if model is None:
        raise bad(f"Invalid model ID {name!r}; use {' or '.join(models.ids(EDIT))}", "model", "model_not_found")
    return model.runs_on


# -- plans: the checked request, its proto and its price ---------------------------------------------

def parse_size(value: str, param: str) -> tuple[int, int]:
    width, sep, height = value.strip().lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit():
        raise bad(f"{param} must look like WIDTHxHEIGHT (e.g. 1024x1024), got {value!r}", param)
    return int(width), int(height)


def set_optional(proto: Any, **values: Any) -> None:
    for name, value in values.items():
        if value is not None:
            setattr(proto, name, value)


@dataclass(frozen=True)
class _Item:
    proto: Any
    charge: apb.ChargeItem
    response_format: str


def _generation(body: ImageGenerationRequest, published: Published, prefix: str = "") -> _Item:
    limits = published.bounds(ImageLimits)
    for name in ("image", "mask", "input_images"):
        if getattr(body, name) is not None:
            raise bad(f"`{name}` is not supported on /v1/images/generations; use POST /v1/images/edits to edit "
                      "images", prefix + name, "unsupported_parameter")
    check_text(body.prompt, prefix + "prompt", required=True, max_chars=limits.max_prompt_chars)
    check_text(body.negative_prompt, prefix + "negative_prompt", required=False, max_chars=limits.max_prompt_chars)
    model = generation_model(body.model, published.models, prefix + "model")
    size, param = body.image_size, "image_size"
    if body.size and body.size.strip().lower() != "auto":
        if size and size.strip().lower() != body.size.strip().lower():
            raise bad(f"image_size ({size}) and size ({body.size}) disagree; send one of them", prefix + "size")
        size, param = size or body.size, "image_size" if size else "size"
    size = (size or model.default_size).strip().lower()
    if size not in model.sizes:
        raise bad(f"{param} {size!r} is not supported; use one of {', '.join(model.sizes)}", prefix + param)
    width, height = parse_size(size, prefix + param)
    max_width, max_height = model.limit("max_width"), model.limit("max_height")
    if width > max_width or height > max_height:
        raise bad(f"{model.id} makes images up to {max_width}x{max_height} (width x height); {size} is too large "
                  "for it", prefix + param)
    n = 1 if body.n is None else body.n
    check_range(n, 1, limits.max_n, prefix + "n")
    check_range(body.num_inference_steps, 1, limits.max_steps, prefix + "num_inference_steps")
    guidance = body.guidance_scale if body.guidance_scale is not None else body.cfg
    check_range(guidance, 0, limits.max_guidance,
                prefix + ("guidance_scale" if body.guidance_scale is not None else "cfg"))
    check_range(body.seed, 0, MAX_SEED, prefix + "seed")
    proto = image_pb2.GenerateImagesRequest(model=model.id, prompt=body.prompt, width=width, height=height, n=n,
                                            output_format=OUTPUT_FORMATS[body.output_format])
    set_optional(proto, negative_prompt=body.negative_prompt, seed=body.seed,
                 num_inference_steps=body.num_inference_steps, guidance_scale=guidance)
    charge = apb.ChargeItem(operation=apb.OPERATION_IMAGE_GENERATION, model=model.id, width=width, height=height,
                            quantity=n)
    return _Item(proto, charge, body.response_format or "b64_json")


def plan_generation(body: ImageGenerationRequest, published: Published) -> UnaryPlan:
    item = _generation(body, published)
    return UnaryPlan(item.proto, [item.charge], images_answer(item))


def plan_batch(body: BatchGenerationRequest, published: Published) -> UnaryPlan:
    """A batch is one hold and one call; only the items that succeed are charged."""
    limits = published.bounds(ImageLimits)
    if not 1 <= len(body.requests) <= limits.max_batch_requests:
        raise bad(f"requests must hold 1 to {limits.max_batch_requests} generation requests, got "
                  f"{len(body.requests)}", "requests")
    items = [_generation(request, published, f"requests[{i}].") for i, request in enumerate(body.requests)]
    for i, item in enumerate(items):
        if item.proto.n != 1:  # keeps a batch's answer within one message; n works on /v1/images/generations
            raise bad("n must be 1 in a batch item; send more items, or use n on /v1/images/generations",
                      f"requests[{i}].n")
    proto = image_pb2.BatchGenerateImagesRequest(requests=[item.proto for item in items])
    return UnaryPlan(proto, [item.charge for item in items], batch_answer(items))


def plan_edit(body: ImageEditRequest, images: list[tuple[str, bytes]], mask: bytes | None,
              published: Published) -> UnaryPlan:
    """`images` are (param name, bytes) in order; the JSON form's base64 is already decoded."""
    limits = published.bounds(ImageLimits)
    check_text(body.prompt, "prompt", required=True, max_chars=limits.max_prompt_chars)
    check_text(body.negative_prompt, "negative_prompt", required=False, max_chars=limits.max_prompt_chars)
    model = edit_model(body.model, published.models)
    if not images:
        raise bad("at least one input image is required (input_images, or `image` files)", "input_images",
                  "missing_required_parameter")
    check_image_count(len(images), limits, images[0][0].rpartition("[")[0] or "input_images")
    sizes = [check_header(data, param, limits) for param, data in images]
    for (param, _), (w, h) in zip(images, sizes, strict=True):
        if min(w, h) < limits.min_input_side:
            raise bad(f"{param} is {w}x{h}; each side of an input image must be at least {limits.min_input_side} "
                      "pixels", param, "invalid_image")
        if max(w, h) > limits.max_input_aspect * min(w, h):
            raise bad(f"{param} is {w}x{h}; input images may be at most {limits.max_input_aspect}:1", param,
                      "invalid_image")
    if mask is not None:
        if len(images) > 1:
            raise bad("a mask works with exactly one input image (it masks that image)", "mask")
        if check_header(mask, "mask", limits) != sizes[0]:
            raise bad("mask must be the same size as the image it masks", "mask")
    width, height = body.width, body.height
    if body.size and body.size.strip().lower() != "auto":
        parsed = parse_size(body.size, "size")
        if (width is not None and width != parsed[0]) or (height is not None and height != parsed[1]):
            raise bad("size disagrees with width/height; send one of them", "size")
        width, height = parsed
    check_range(width, limits.min_edit_side, limits.max_edit_side, "width")
    check_range(height, limits.min_edit_side, limits.max_edit_side, "height")
    match = body.match_image_size or 0
    if match not in (0, 1):
        raise bad(f"match_image_size must be 0 or 1, got {match}", "match_image_size")
    if match and max(sizes[0]) > limits.max_edit_side:
        raise bad(f"match_image_size asks for the first image's size, {sizes[0][0]}x{sizes[0][1]}, but outputs are "
                  f"at most {limits.max_edit_side} on a side; send width and height instead", "match_image_size")
    n = 1 if body.n is None else body.n
    check_range(n, 1, limits.max_n, "n")
    check_range(body.num_steps, 1, limits.max_steps, "num_steps")
    check_range(body.guidance, 0, limits.max_guidance, "guidance")
    check_range(body.seed, 0, MAX_SEED, "seed")
    proto = image_pb2.EditImagesRequest(model=model, prompt=body.prompt,
                                        input_images=[data for _, data in images], mask=mask or b"",
                                        match_image_size=bool(match), n=n,
                                        output_format=OUTPUT_FORMATS[body.output_format])
    set_optional(proto, negative_prompt=body.negative_prompt, width=width, height=height,
                 num_inference_steps=body.num_steps, guidance_scale=body.guidance, seed=body.seed)
    charge = apb.ChargeItem(operation=apb.OPERATION_IMAGE_EDIT, model=model, quantity=n)
    return UnaryPlan(proto, [charge], images_answer(_Item(proto, charge, body.response_format or "b64_json")))


def check_image_count(count: int, limits: ImageLimits, param: str) -> None:
    if count > limits.max_input_images:
        raise bad(f"{count} input images were sent; at most {limits.max_input_images} are accepted", param)


def check_header(data: bytes, param: str, limits: ImageLimits) -> tuple[int, int]:
    """The image's size from its header (ImageRejected, a 400 or 413, for what is refused)."""
    return imaging.check_header(data, param, max_bytes=limits.max_input_image_bytes,
                                max_pixels=limits.max_input_image_pixels)


# -- the HTTP body of an edit -------------------------------------------------------------------------------

async def read_edit(request: Request, limits: ImageLimits
                    ) -> tuple[ImageEditRequest, list[tuple[str, bytes]], bytes | None]:
    """The edit as JSON (base64 images) or as OpenAI's multipart form: the fields, the images as
    (param name, bytes) in order, and the mask."""
    content_type = inputs.media_type(request)
    if content_type in inputs.FORM_TYPES:
        async with inputs.read_form(request, max_files=32,
                                    max_part_bytes=inputs.text_part_bytes(limits.max_input_image_bytes)) as form:
            return await read_edit_form(form, limits)
    if content_type == JSON or content_type.endswith("+json"):
        return read_edit_json(await request.body(), limits)
    raise bad(f"send the edit as application/json or multipart/form-data, not {content_type}", None,
              "unsupported_media_type")


def read_edit_json(raw: bytes, limits: ImageLimits
                   ) -> tuple[ImageEditRequest, list[tuple[str, bytes]], bytes | None]:
    values = inputs.read_json_object(raw)
    body = inputs.validated(ImageEditRequest, values)
    encoded = body.input_images or []
    check_image_count(len(encoded), limits, "input_images")
    images = [(f"input_images[{i}]", decode_base64(value, f"input_images[{i}]", limits))
              for i, value in enumerate(encoded)]
    mask = decode_base64(body.mask, "mask", limits) if body.mask else None
    return body, images, mask


async def read_edit_form(form, limits: ImageLimits) -> tuple[ImageEditRequest, list[tuple[str, bytes]], bytes | None]:
    """OpenAI's multipart: `image` (one file) or `image[]` (several), `mask`, and the other fields as text.
    Base64 text under `input_images`/`input_images[]` works too."""
    file_keys = {"image", "image[]", "input_images", "input_images[]", "mask"}
    entries = [(key, value) for key, value in form.multi_items() if key in file_keys - {"mask"}]
    check_image_count(len(entries), limits, "image")
    body = inputs.validated(ImageEditRequest, inputs.form_values(form, file_keys))
    images = []
    for i, (key, value) in enumerate(entries):
        param = f"{key.removesuffix('[]')}[{i}]"
        images.append((param, await form_bytes(value, param, limits)))
    mask_value = form.get("mask")
    mask = await form_bytes(mask_value, "mask", limits) if mask_value not in (None, "") else None
    return body, images, mask


async def form_bytes(value: UploadFile | str, param: str, limits: ImageLimits) -> bytes:
    return await inputs.form_bytes(value, param, max_bytes=limits.max_input_image_bytes)


def decode_base64(value: str, param: str, limits: ImageLimits) -> bytes:
    return inputs.decode_base64(value, param, max_bytes=limits.max_input_image_bytes)


# -- answers -------------------------------------------------------------------------------------------------

def json_bytes(content: dict) -> bytes:
    return json.dumps(content, separators=(",", ":")).encode()


def b64_json_answer(created: int, files: Iterable[tuple[bytes, Mapping[str, int]]]) -> bytes:
    """`{"created", "data": [{"b64_json", **fields}, …]}` exactly as json_bytes writes it, each file's
    base64 put in as bytes: its alphabet needs no escaping in JSON, and json.dumps scanned every byte of it
    and copied it twice more (0.17 ms of a 64x64 edit's path in place here; for a 1.5 MB image, 16 ms in a
    loop, now 4, of which 3.6 are the base64 itself). tests/edge/test_image_answers.py checks it byte for
    byte against json_bytes."""
    parts = [b'{"created":%d,"data":[' % created]
    for index, (data, fields) in enumerate(files):
        parts += [b',{"b64_json":"' if index else b'{"b64_json":"', base64.b64encode(data), b'"']
        parts += [b",%s:%d" % (json.dumps(name).encode(), value) for name, value in fields.items()]
        parts.append(b"}")
    parts.append(b"]}")
    return b"".join(parts)  # the one copy of the files' base64


async def keep_all(images, outputs: Outputs) -> None:
    """Every image of a `b64_json` answer kept in media (Outputs.keep: not waited for). One image (the usual
    answer) is kept without gather's task, which would hand the loop to other work before the answer is
    made."""
    keeps = [outputs.keep(im.data, im.mime_type, width=im.width, height=im.height) for im in images]
    await (keeps[0] if len(keeps) == 1 else asyncio.gather(*keeps))


async def images_content(created: int, images, response_format: str, outputs: Outputs) -> bytes:
    """`{"created", "data"}` for the images: each stored in media (owner = the caller) and linked (`url`), or
    carried as base64 (`b64_json`, which does not wait for media: Outputs.keep), in order."""
    if response_format == "url":
        stored = await asyncio.gather(*(outputs.store(im.data, im.mime_type, width=im.width, height=im.height)
                                        for im in images))
        return json_bytes({"created": created, "data": [{"url": saved.url, "seed": im.seed}
                                                        for im, saved in zip(images, stored, strict=True)]})
    await keep_all(images, outputs)
    return b64_json_answer(created, ((im.data, {"seed": im.seed}) for im in images))


def images_answer(item: _Item):
    """The answer of a generation or an edit: `{"created", "data"}`, charged as quoted."""
    async def answer(result: image_pb2.GenerateImagesResponse, outputs: Outputs) -> Answer:
        return Answer(await images_content(int(time.time()), result.images, item.response_format, outputs),
                      [item.charge])

    return answer


def batch_answer(items: list[_Item]):
    """A batch's answer: `{"data": [slot, …]}`, one slot per item, in order (each a generation's answer, or
    its error); a failed item is not charged. The slots are joined as bytes, so a slot's base64 is never
    scanned by json.dumps (b64_json_answer)."""
    async def answer(result: image_pb2.BatchGenerateImagesResponse, outputs: Outputs) -> Answer:
        slots = await asyncio.gather(*(batch_slot(item, slot, outputs)
                                       for item, slot in zip(items, result.results, strict=True)))
        done = [item.charge for item, (_, ok) in zip(items, slots, strict=True) if ok]
        return Answer(b'{"data":[' + b",".join(content for content, _ in slots) + b"]}", done)

    return answer


async def batch_slot(item: _Item, result: image_pb2.BatchItemResult, outputs: Outputs) -> tuple[bytes, bool]:
    """An item's slot, and whether it succeeded."""
    if result.WhichOneof("result") != "response":  # its error, or neither (nothing to show for it)
        error = from_status(result.error, "the image service failed on this item")
        return json_bytes({"error": error.fields()}), False
    return await images_content(int(time.time()), result.response.images, item.response_format, outputs), True
