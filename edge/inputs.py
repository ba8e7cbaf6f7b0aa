"""Checks every endpoint group applies to its inputs before any credits are reserved: text limits,
numeric ranges, base64 payloads and image headers (read without decoding, so a decompression bomb
is refused before a pixel is allocated)."""

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


def check_text(value: str | None, param: str, *, required: bool, max_chars: int) -> None:
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


def probe_image(data: bytes) -> tuple[str, int, int] | None:
    """(format, width, height) from a PNG, GIF, WebP or JPEG header, without decoding; None otherwise."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24 and data[12:16] == b"IHDR":
        return "png", int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return "gif", int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        chunk = data[12:16]
        if chunk == b"VP8X":
            return "webp", 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
        if chunk == b"VP8L" and data[20] == 0x2F:
            bits = int.from_bytes(data[21:25], "little")
            return "webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
            return ("webp", int.from_bytes(data[26:28], "little") & 0x3FFF,
                    int.from_bytes(data[28:30], "little") & 0x3FFF)
        return None
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[str, int, int] | None:
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            i += 2
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame
            if i + 9 > len(data):
                return None
            return "jpeg", int.from_bytes(data[i + 7:i + 9], "big"), int.from_bytes(data[i + 5:i + 7], "big")
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if length < 2:
            return None
        i += 2 + length
    return None


def check_image(data: bytes, param: str, *, max_bytes: int, max_pixels: int) -> tuple[int, int]:
    """The image's size from its header; 400 for what is not an image, 413 past the limits."""
    if not data:
        raise bad(f"{param} is empty", param)
    if len(data) > max_bytes:
        raise too_large(f"{param} is {len(data)} bytes; at most {max_bytes // MIB} MiB per image", param)
    probed = probe_image(data)
    if probed is None:
        raise bad(f"{param} is not an image (PNG, JPEG, WebP or GIF are accepted)", param, "invalid_image")
    _, width, height = probed
    if width < 1 or height < 1:
        raise bad(f"{param} has no pixels ({width}x{height})", param, "invalid_image")
    if width * height > max_pixels:
        raise too_large(f"{param} is {width}x{height} ({width * height} pixels); at most {max_pixels} "
                        "pixels per image", param)
    return width, height


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
