"""Media requests and answers: Range headers, ETags, transcoding formats. (The caller's video library,
once media files of kind video, is their video jobs now: edge.endpoints.videos.)"""

from __future__ import annotations

import re

from edge.errors import APIError
from univence.common.v1 import common_pb2

MEDIA_PATH = "/v1/media/{media_id}"
MEDIA_ID = re.compile(r"^[A-Za-z0-9_-]{22,64}$")
FORMATS = {"png": common_pb2.IMAGE_FORMAT_PNG, "jpeg": common_pb2.IMAGE_FORMAT_JPEG,
           "jpg": common_pb2.IMAGE_FORMAT_JPEG, "webp": common_pb2.IMAGE_FORMAT_WEBP}


def not_found(media_id: str) -> APIError:
    """The 404 of a media id; one that is not an id's shape (any length, any characters) is not echoed."""
    named = f"id '{media_id}'" if MEDIA_ID.match(media_id) else "this id"
    return APIError(404, f"No media file with {named}", param="mediaFileId", code="not_found")


def image_format(format: str | None) -> int:
    """The transcoding a `?format=` asks for (unspecified: the stored bytes)."""
    if format is None:
        return common_pb2.IMAGE_FORMAT_UNSPECIFIED
    if format.lower() not in FORMATS:
        raise APIError(400, f"format must be one of webp, jpeg, png (got '{format}')", param="format")
    return FORMATS[format.lower()]


MAX_POSITION = 2 ** 63 - 1  # GetMediaRequest.offset and .length are int64


def parse_range(header: str) -> tuple[int | None, int | None] | None:
    """`bytes=a-b`, `bytes=a-` or `bytes=-n` → (start, end inclusive) with None for open ends;
    None for anything else (several ranges, other units), which is served whole as RFC 9110 allows."""
    match = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", header)
    if not match or (not match[1] and not match[2]):
        return None
    # Positions beyond the proto's int64 are clamped: a start there is past any file (416), an end there is
    # past the end (served to the end, as RFC 9110 reads it).
    start = _position(match[1]) if match[1] else None
    end = _position(match[2]) if match[2] else None
    if start == MAX_POSITION:
        return start, None
    if end is not None:
        end = min(end, MAX_POSITION - 1)
    if start is not None and end is not None and end < start:
        return None
    return start, end


def _position(digits: str) -> int:
    """A Range position, at most MAX_POSITION (without converting thousands of digits)."""
    digits = digits.lstrip("0") or "0"
    return MAX_POSITION if len(digits) > 19 else min(int(digits), MAX_POSITION)


def etag_matches(header: str, etag: str) -> bool:
    candidates = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return etag in candidates or "*" in candidates
