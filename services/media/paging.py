"""Pagination shared by the media listings and the job listings: page size bounds, offsets and page
tokens (base64 of "<offset>.<fingerprint of the query>", so a token only continues its own listing)."""

from __future__ import annotations

import base64
import binascii
import zlib

from services.common.errors import invalid

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


def page_size(requested: int, offset: int) -> int:
    """The page's size (unset: the default; at most MAX_PAGE_SIZE), after checking the request's bounds."""
    if requested < 0:
        raise invalid("page_size must not be negative", "page_size")
    if offset < 0:
        raise invalid("offset must not be negative", "offset")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def query_fingerprint(*parts: object) -> str:
    return format(zlib.crc32("\0".join(map(str, parts)).encode()), "08x")


def encode_page_token(offset: int, query: str) -> str:
    return base64.urlsafe_b64encode(f"{offset}.{query}".encode()).decode().rstrip("=")


def decode_page_token(token: str, query: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        offset, fingerprint = raw.split(".", 1)
        if fingerprint == query and offset.isdigit() and int(offset) < 2**31:
            return int(offset)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise invalid("page_token is not valid for this listing", "page_token")


def next_page_token(offset: int, count: int, total: int, query: str) -> str:
    """The token of the page after one of `count` items from `offset`; empty on the last page."""
    following = offset + count
    return encode_page_token(following, query) if count and following < total else ""
