"""What every JSON body must be before any endpoint parses it (edge.middleware checks each one): nested
at most MAX_DEPTH levels, and free of lone UTF-16 surrogates (`"\\ud800"`), which no service can
encode. One scan of the raw bytes, so chat, images and every endpoint still to come refuse them alike,
with a 400 envelope instead of a RecursionError or a UnicodeEncodeError deep in a handler."""

from __future__ import annotations

import json
import re
from typing import Any

from edge.errors import APIError

MAX_DEPTH = 64
# Content types read as JSON (chat reads its body as JSON whatever it is labelled).
JSON_TYPES = ("", "application/json", "text/plain")
# A JSON string (escapes included), and what is left of the structure once strings are gone.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.S)  # one never closed runs to the end
_BRACKETS = bytes.maketrans(b"{}", b"[]")  # the depth is the same whichever bracket opens a level
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# A \u escape of a surrogate (the body is then parsed to tell a valid pair from a lone one).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def is_json(content_type: str) -> bool:
    media = content_type.split(";")[0].strip().lower()
    return media in JSON_TYPES or media.endswith("+json")


def check(body: bytes, max_depth: int = MAX_DEPTH) -> None:
    """An APIError (400) for a body nested deeper than `max_depth` or holding a lone surrogate escape;
    anything else (even malformed JSON) is left to the endpoint. Each step runs in C (regular expressions
    and bytes methods), so a 16 MiB body costs milliseconds."""
    if body.count(b"[") + body.count(b"{") > max_depth and _depth_exceeds(body, max_depth):
        raise APIError(400, f"The request body is nested more than {max_depth} levels deep", code="json_too_deep")
    if _SURROGATE_ESCAPE.search(body):
        try:
            value = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return
        found, param = _find(value, "")
        if found:
            raise APIError(400, f"{param + ': ' if param else ''}the text holds a lone UTF-16 surrogate (a \\ud800 to "
                                "\\udfff escape without its pair); send valid Unicode", param=param,
                           code="invalid_unicode")


def _depth_exceeds(body: bytes, max_depth: int) -> bool:
    """Whether the brackets outside strings nest deeper than `max_depth`: each pass removes the innermost
    pairs, so what is left after `max_depth` passes nests deeper (or never closes)."""
    brackets = _STRING.sub(b"", body).translate(_BRACKETS, _NOT_BRACKETS)
    if b"[" * (max_depth + 1) in brackets:
        return True
    for _ in range(max_depth):
        if not brackets:
            return False
        shorter = brackets.replace(b"[]", b"")  # one pass: what it leaves is not rescanned
        if len(shorter) == len(brackets):  # unbalanced: malformed JSON, which the endpoint refuses
            return shorter.count(b"[") > max_depth
        brackets = shorter
    return bool(brackets)


def _find(value: Any, path: str) -> tuple[bool, str | None]:
    """(whether a string in `value` holds a lone surrogate, the field holding it as the API spells it:
    `messages[0].content`)."""
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return True, path or None
        return False, None
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{path}.{key}" if path else str(key)
            for part in (key, item):
                found = _find(part, name)
                if found[0]:
                    return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _find(item, f"{path}[{i}]")
            if found[0]:
                return found
    return False, None
