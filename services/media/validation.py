"""What the service accepts: media ids, MIME types and their kinds, and image bytes."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from services.common.errors import invalid, not_found, too_large
from univence.imaging import ImageRejected, identify
from univence.media.v1 import media_pb2

Kind = media_pb2.MediaKind

# 24 random bytes -> 32 URL-safe characters (192 bits; the contract asks for at least 128).
ID_BYTES = 24
_ID = re.compile(r"[A-Za-z0-9_-]{32}")

MIME_KINDS: dict[str, int] = {
    "image/png": Kind.MEDIA_KIND_IMAGE,
    "image/jpeg": Kind.MEDIA_KIND_IMAGE,
    "image/gif": Kind.MEDIA_KIND_IMAGE,
    "image/webp": Kind.MEDIA_KIND_IMAGE,
    "video/mp4": Kind.MEDIA_KIND_VIDEO,
    "video/webm": Kind.MEDIA_KIND_VIDEO,
    "audio/wav": Kind.MEDIA_KIND_AUDIO,
    "audio/mpeg": Kind.MEDIA_KIND_AUDIO,
    "audio/flac": Kind.MEDIA_KIND_AUDIO,
    "audio/ogg": Kind.MEDIA_KIND_AUDIO,
    "audio/aac": Kind.MEDIA_KIND_AUDIO,
    # A response body kept for Idempotency-Key replays (edge.metering), too large for accounts.
    "application/json": Kind.MEDIA_KIND_DATA,
}
# Common spellings of the same types, stored under the canonical name.
_ALIASES = {
    "image/jpg": "image/jpeg",
    "audio/x-wav": "audio/wav",
    "audio/wave": "audio/wav",
    "audio/mp3": "audio/mpeg",
    "audio/x-flac": "audio/flac",
}
# Pillow's format name for each image MIME type.
PILLOW_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF", "image/webp": "WEBP"}

MAX_OWNER_CHARS = 255


def new_media_id() -> str:
    return secrets.token_urlsafe(ID_BYTES)


def check_media_id(media_id: str) -> str:
    """A malformed id answers NOT_FOUND, like an unknown one: callers learn nothing about the format."""
    if not _ID.fullmatch(media_id):
        raise not_found("no media file with this id", "media_id")
    return media_id


def check_owner(owner_id: str) -> str:
    if not owner_id.strip():
        raise invalid("owner_id is required", "owner_id")
    if len(owner_id) > MAX_OWNER_CHARS:
        raise invalid(f"owner_id is longer than {MAX_OWNER_CHARS} characters", "owner_id")
    return owner_id


def canonical_mime(mime_type: str, kind: int) -> str:
    """The canonical MIME type, checked against the allow-list and against `kind`."""
    mime = mime_type.split(";", 1)[0].strip().lower()
    mime = _ALIASES.get(mime, mime)
    if mime not in MIME_KINDS:
        raise invalid(f"unsupported mime_type {mime_type!r}; supported: {', '.join(MIME_KINDS)}", "mime_type")
    if kind == Kind.MEDIA_KIND_UNSPECIFIED:
        raise invalid("kind is required", "kind")
    if kind not in Kind.values():
        raise invalid(f"unknown kind {kind}", "kind")
    if MIME_KINDS[mime] != kind:
        raise invalid(f"mime_type {mime} does not match kind {Kind.Name(kind)}", "mime_type")
    return mime


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int


def probe_image(data: bytes, mime: str) -> ImageInfo:
    """Reads the header (no pixel decoding) to check the bytes are the image `mime` says they are."""
    try:
        found, width, height = identify(data, "data", formats=tuple(PILLOW_FORMATS.values()))
    except ImageRejected as exc:
        if exc.too_large:
            raise too_large(f"image dimensions are too large: {exc.message}", "data") from None
        raise invalid(f"data is not a valid {mime} image", "data") from None
    if found != PILLOW_FORMATS[mime]:
        raise invalid(f"data is a {found} image but mime_type says {mime}", "mime_type")
    return ImageInfo(width, height)
