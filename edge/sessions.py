"""The login session in the browser: its cookie, and the checks that keep other sites from using it.

- The cookie holds the accounts service's session token: HttpOnly, SameSite=Lax, Path=/, Secure when
  the request came over HTTPS or the public base URL is https.
- A request the cookie authenticates that changes something (any method but GET/HEAD/OPTIONS) must
  come from this site: its Origin header (or, without one, its Referer) must be the site's own origin.
- The pages' forms also carry a token: bound to the session (an HMAC of the session token, which
  scripts cannot read) once logged in, and a random value that the form cookie repeats (double submit)
  on the login and sign-up forms.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from fastapi import Request, Response

from edge.errors import APIError

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_TOKEN_FIELD = "csrf_token"


def _settings(request: Request):
    return request.app.state.clients.settings


def _origin(url: str) -> str:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return ""
    default_port = {"http": ":80", "https": ":443"}.get(parts.scheme.lower(), "")
    netloc = parts.netloc.lower().removesuffix(default_port)
    return f"{parts.scheme.lower()}://{netloc}"


def own_origin(request: Request) -> str:
    """This site's origin: the public base URL's, else the request's own."""
    return _origin(_settings(request).public_base_url or str(request.base_url))


def sender_origin(request: Request) -> str:
    """The origin the browser says the request comes from: Origin, else the Referer's; "" when neither."""
    origin = request.headers.get("origin", "")
    if origin and origin != "null":
        return _origin(origin)
    return _origin(request.headers.get("referer", ""))


def require_same_origin(request: Request, *, missing_ok: bool = False) -> None:
    """403 unless the request comes from this site (`missing_ok`: a request that names no origin passes,
    for forms that carry their own token)."""
    sender = sender_origin(request)
    if (not sender and missing_ok) or (sender and hmac.compare_digest(sender, own_origin(request))):
        return
    raise APIError(403, "Cross-site request refused: a request authenticated by the session cookie must come "
                        "from this site's own pages (its Origin header did not match)", "authentication_error",
                   code="csrf_failed")


def secure(request: Request) -> bool:
    return request.url.scheme == "https" or _settings(request).public_base_url.startswith("https://")


def session_token(request: Request) -> str:
    """The session token the browser sent, or ""."""
    return request.cookies.get(_settings(request).session_cookie, "")


def set_session_cookie(request: Request, response: Response, token: str, max_age: int) -> None:
    response.set_cookie(_settings(request).session_cookie, token, max_age=max(0, max_age), path="/",
                        httponly=True, secure=secure(request), samesite="lax")


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(_settings(request).session_cookie, path="/", httponly=True, secure=secure(request),
                           samesite="lax")


def session_form_token(token: str) -> str:
    """The forms' token for a session: readable by the page, unusable without the (HttpOnly) session."""
    return hmac.new(token.encode(), b"univence form token", hashlib.sha256).hexdigest()


def form_cookie_token(request: Request) -> str:
    """The login/sign-up forms' token: the form cookie's value, or a new one (`ensure_form_cookie` sets it)."""
    return request.cookies.get(_settings(request).form_cookie, "") or secrets.token_urlsafe(24)


def ensure_form_cookie(request: Request, response: Response, value: str) -> None:
    if request.cookies.get(_settings(request).form_cookie) != value:
        response.set_cookie(_settings(request).form_cookie, value, path="/", httponly=True, secure=secure(request),
                            samesite="lax")


def check_form(request: Request, sent: str, session: str = "") -> None:
    """A posted form is this site's: its origin (when the browser names one) and its token, which must be
    the session's form token, or (before login) the form cookie's value."""
    require_same_origin(request, missing_ok=True)
    expected = session_form_token(session) if session else request.cookies.get(_settings(request).form_cookie, "")
    if not expected or not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise APIError(403, "This form has expired or did not come from this site; reload the page and try again",
                       "authentication_error", code="csrf_failed")
