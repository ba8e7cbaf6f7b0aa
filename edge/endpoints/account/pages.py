"""The pages' rendering: jinja2 templates (autoescaped) and the few static files, all in this folder and
served by the edge itself (no CDN), with headers that keep the pages out of frames and caches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Response
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from edge.errors import APIError

HERE = Path(__file__).parent
STATIC_PREFIX = "/static/account/"
_STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
# An install that left them out (package data) still serves the pages, unstyled.
STATIC = {path.name: (path.read_bytes(), _STATIC_TYPES[path.suffix])
          for path in sorted((HERE / "static").glob("*")) if path.suffix in _STATIC_TYPES}
ENVIRONMENT = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
                          undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
# Only this site's own scripts, styles and forms; never inside another site's frame.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; media-src *; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
DEFAULTS: dict[str, Any] = {"email": "", "csrf_token": "", "notice": "", "error": ""}


def render(template: str, status: int = 200, headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
    html = ENVIRONMENT.get_template(template).render(**{**DEFAULTS, **context})
    return HTMLResponse(html, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})})


def error_page(template: str, error: APIError, **context: Any) -> HTMLResponse:
    """The page again, with the error's message, its status and (429) its Retry-After."""
    headers = {k: v for k, v in error.headers.items() if k.lower() == "retry-after"}
    return render(template, error.status, headers, error=page_message(error), **context)


def page_message(error: APIError) -> str:
    """What a person reads: the service's message (never a secret), as a sentence."""
    text = error.message.strip()
    return (text[:1].upper() + text[1:]).rstrip(".") + "." if text else "Something went wrong."


def static_file(name: str) -> Response:
    found = STATIC.get(name)
    if found is None:
        raise APIError(404, f"Unknown request URL: GET {STATIC_PREFIX}{name}", code="unknown_url")
    body, media_type = found
    return Response(body, media_type=media_type,
                    headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"})
