"""Checks every endpoint group applies to its inputs before any credits are reserved: text limits,
numeric ranges, base64 payloads, and multipart forms read within bounds (how many parts, how large).
Image headers are checked by univence.imaging (the edge maps its ImageRejected to 400/413 in
edge.errors)."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import math
import sys
from collections.abc import AsyncIterator, Callable, Collection
from typing import Annotated, Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError
from pydantic.json_schema import JsonDict, models_json_schema
from starlette.datastructures import FormData, UploadFile

from edge import jsonbody
from edge.errors import APIError

MIB = 1024 * 1024
M = TypeVar("M", bound=BaseModel)

# Integers as the services' protos hold them: a request model's int field that reaches an int32 or int64
# proto field has one of these types, so a number that does not fit is a 400 naming the field (not a
# ValueError when the proto is built).
Int32 = Annotated[int, Field(ge=-(2 ** 31), le=2 ** 31 - 1)]
Int64 = Annotated[int, Field(ge=-(2 ** 63), le=2 ** 63 - 1)]


def documented(**bounds: Any) -> Callable[[JsonDict], None]:
    """A field's `json_schema_extra` that puts bounds into its schema (an optional field's: its non-null
    member) without checking them: for what translate checks (a bound the service publishes, shown at its
    documented default, or a check whose message names the field its own way)."""
    def extra(schema: JsonDict) -> None:
        members = schema.get("anyOf")
        target = members[0] if isinstance(members, list) and members else schema
        target.update(bounds)  # type: ignore[union-attr]

    return extra


def bad(message: str, param: str | None, code: str = "invalid_value") -> APIError:
    return APIError(400, message, param=param, code=code)


def too_large(message: str, param: str | None) -> APIError:
    return APIError(413, message, param=param, code="payload_too_large")


def size_text(max_bytes: float) -> str:
    """A byte limit as messages show it: "16 MiB"."""
    return f"{max_bytes / MIB:g} MiB"


def check_text(value: str | None, param: str, *, required: bool, max_chars: float = math.inf) -> None:
    if required and (value is None or not value.strip()):
        raise bad(f"{param} is required and must not be empty", param, "missing_required_parameter")
    if value is not None and len(value) > max_chars:
        raise too_large(f"{param} is {len(value)} characters; at most {max_chars} are accepted", param)
    if value is not None and "\x00" in value:
        raise bad(f"{param} must not contain NUL characters", param)


def check_range(value: int | float | None, low: float, high: float, param: str) -> None:
    if value is None:
        return
    if (isinstance(value, float) and not math.isfinite(value)) or not low <= value <= high:
        raise bad(f"{param} must be between {low:g} and {high:g}, got {value}", param)


def decode_base64(value: str, param: str, *, max_bytes: int) -> bytes:
    """Base64 (or a data: URL) → bytes; 413 before decoding when it cannot fit `max_bytes`."""
    if value.startswith("data:"):
        value = value.partition(",")[2]
    value = "".join(value.split())
    if len(value) > (max_bytes + 2) // 3 * 4:
        raise too_large(f"{param} is over {size_text(max_bytes)}", param)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise bad(f"{param} is not valid base64", param, "invalid_base64") from None


# -- multipart forms ------------------------------------------------------------------------------------------

FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
# A text part (a prompt, a JSON list of points) larger than this is refused while the form is parsed.
TEXT_PART_BYTES = 256 * 1024
# What a multipart request may hold besides its files' bytes: the parts themselves are bounded here, the
# whole body by the edge's body limit (edge.middleware).
MAX_FORM_FIELDS = 64


def media_type(request: Request, default: str = "application/json") -> str:
    """The request's Content-Type without parameters, lower case."""
    return request.headers.get("content-type", default).split(";")[0].strip().lower()


def check_content_length(request: Request, max_bytes: float, param: str, *, base64_text: bool = False,
                         slack: int = 64 * 1024) -> None:
    """413 at once for a declared body larger than a file of at most `max_bytes` needs (as base64 text
    where `base64_text`, plus the form's own few bytes): before the body is read, so an oversized upload
    is not even received."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_bytes * (4 / 3 if base64_text else 1) + slack:
        raise too_large(f"the request is {int(length)} bytes; {param} may be at most {size_text(max_bytes)}", param)


def text_part_bytes(max_file_bytes: float) -> int:
    """The largest text part worth reading when a file may come as base64 text (and a little more)."""
    if math.isinf(max_file_bytes):
        return sys.maxsize
    return max(TEXT_PART_BYTES, int(max_file_bytes) * 4 // 3 + 1024)


@contextlib.asynccontextmanager
async def read_form(request: Request, *, max_files: int, max_fields: int = MAX_FORM_FIELDS,
                    max_part_bytes: int = TEXT_PART_BYTES) -> AsyncIterator[FormData]:
    """The multipart (or urlencoded) body, parsed within these bounds (a malformed or truncated body, too
    many parts or a text part over `max_part_bytes` is a 400); uploaded files are closed afterwards."""
    content_type = media_type(request)
    if content_type not in FORM_TYPES:
        raise bad(f"send the request as multipart/form-data, not {content_type}", None, "unsupported_media_type")
    async with request.form(max_files=max_files, max_fields=max_fields, max_part_size=max_part_bytes) as form:
        if "idempotency-key" in request.headers:
            # What a retry must repeat is the form's content, not its encoding: curl and httpx draw a new
            # multipart boundary for every request, so the raw body's digest would never match.
            request.scope.setdefault("state", {})["body_sha256"] = await form_digest(form)
        yield form


async def form_digest(form: FormData) -> bytes:
    """A digest of the form's fields in order: each name and its text or file bytes (file names and
    part headers left out)."""
    digest = hashlib.sha256()

    def add(data: bytes) -> None:
        digest.update(len(data).to_bytes(8, "big") + data)

    for key, value in form.multi_items():
        add(key.encode())
        if isinstance(value, str):
            add(b"text:" + value.encode())
            continue
        digest.update(b"file:" + (value.size or 0).to_bytes(8, "big"))
        while chunk := await value.read(MIB):
            digest.update(chunk)
        await value.seek(0)
    return digest.digest()


def form_values(form: FormData, files: Collection[str] = ()) -> dict[str, str]:
    """The form's text fields, but those named in `files` (read with form_bytes)."""
    return {key: value for key, value in form.multi_items() if key not in files and isinstance(value, str)}


def single(form: FormData, name: str) -> UploadFile | str | None:
    """The one value of `name` (None when absent); a field sent more than once is a 400."""
    values = form.getlist(name)
    if len(values) > 1:
        raise bad(f"{name} was sent {len(values)} times; send it once", name)
    return values[0] if values else None


async def form_bytes(value: UploadFile | str, param: str, *, max_bytes: float, base64_text: bool = True) -> bytes:
    """An uploaded file's bytes (413 over `max_bytes`, before reading it), or base64 text sent in its place
    when `base64_text` (else a text value is a 400)."""
    if isinstance(value, str):
        if not base64_text:
            raise bad(f"{param} must be a file (a multipart file part)", param)
        return decode_base64(value, param, max_bytes=max_bytes)
    if value.size is not None and value.size > max_bytes:
        raise too_large(f"{param} is {value.size} bytes; at most {size_text(max_bytes)}", param)
    return await value.read()


def validated(model: type[M], values: Any) -> M:
    """`values` as the pydantic `model`; a mismatch is the same 400 as a JSON body's (naming the field)."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None


# -- JSON bodies an endpoint reads itself ---------------------------------------------------------------
# A route whose body is a FastAPI body parameter is solved by FastAPI on every request; one that reads its
# body here keeps its route lean (edge.routing), so it takes the lane below FastAPI (edge.lane).

def read_json_object(raw: bytes) -> dict[str, Any]:
    """A JSON body's object; a 400 (invalid_json) that says where it breaks, or that it is not an object,
    alike for every endpoint."""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise APIError(400, f"The request body is not valid JSON ({exc.msg} at character {exc.pos})",
                       code="invalid_json") from None
    except UnicodeDecodeError:
        raise APIError(400, "The request body is not valid JSON (it is not UTF-8 text)", code="invalid_json") from None
    except RecursionError:  # edge.jsonbody refuses deep bodies first; this is a last guard
        raise APIError(400, "The request body is nested too deeply", code="json_too_deep") from None
    if not isinstance(value, dict):
        raise APIError(400, "The request body must be a JSON object", code="invalid_json")
    return value


async def json_model(request: Request, model: type[M]) -> M:
    """The request's JSON body as `model`, its fields' mismatches the same 400s as a body parameter's. A
    body labelled as something else than JSON is refused (edge.middleware checks what is labelled JSON)."""
    content_type = request.headers.get("content-type", "")
    if not jsonbody.is_json(content_type):
        raise bad(f"send the request body as application/json, not {content_type.split(';')[0].strip()}", None,
                  "unsupported_media_type")
    return validated(model, read_json_object(await request.body()))


# The models json_body documents, by name: edge.app.api_document puts their schemas among the components.
_DOCUMENTED: dict[str, type[BaseModel]] = {}


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """A route's `openapi_extra` for a body it reads with json_model: the body documented as FastAPI documents
    a body parameter, by a reference to the model's schema among the document's components (FastAPI lists
    only the models it reads itself; body_schemas gives the rest)."""
    _DOCUMENTED[model.__name__] = model
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}}


def body_schemas() -> dict[str, Any]:
    """The component schemas of the models json_body documents, and of the models they hold, by name."""
    if not _DOCUMENTED:
        return {}
    _, schemas = models_json_schema([(model, "validation") for model in _DOCUMENTED.values()],
                                    ref_template="#/components/schemas/{model}")
    return schemas.get("$defs", {})
