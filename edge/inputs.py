"""Checks every endpoint group applies to its inputs before any credits are reserved: text limits,
numeric ranges and base64 payloads. Image headers are checked by univence.imaging (the edge maps its
ImageRejected to 400/413 in edge.errors)."""

from __future__ import annotations

import base64
import binascii
import math

from edge.errors import APIError

MIB = 1024 * 1024


def bad(message: str, param: str | None, code: str = "invalid_value") -> APIError:
    return APIError(400, message, param=param, code=code)


def too_large(message: str, param: str | None) -> APIError:
    return APIError(413, message, param=param, code="payload_too_large")


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
        raise too_large(f"{param} is over {max_bytes // MIB} MiB", param)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise bad(f"{param} is not valid base64", param, "invalid_base64") from None
