"""Helpers for the account pages' tests: a browser-like httpx client (cookies, forms with their tokens,
the page's Origin), and the platform started with cheap password hashing."""

from __future__ import annotations

import contextlib
import html
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from tests.support.platform import Platform, running_platform

PASSWORD = "a long enough password"
# Cheap argon2id costs: these tests are about the pages, not the hash (tests/accounts checks the costs).
FAST_HASH = {"password_hash_memory_kib": 1024, "password_hash_time_cost": 1, "password_hash_parallelism": 1}


@contextlib.asynccontextmanager
async def site(tmp_path: Path, accounts: dict | None = None, **edge) -> AsyncIterator[Platform]:
    async with running_platform(tmp_path, accounts_overrides={**FAST_HASH, **(accounts or {})}, **edge) as platform:
        yield platform


def hidden(page: str, name: str = "csrf_token") -> str:
    """The value of the first hidden input `name` of a page."""
    found = re.search(rf'<input type="hidden" name="{name}" value="([^"]*)"', page)
    assert found, f"no hidden {name} in the page"
    return html.unescape(found.group(1))


def text_of(page: str, element_id: str) -> str:
    """The text of the element with this id (no nested tags), unescaped."""
    found = re.search(rf'id="{element_id}"[^>]*>([^<]*)<', page)
    assert found, f"no #{element_id} in the page"
    return html.unescape(found.group(1)).strip()


class Browser:
    """An httpx client that behaves like a browser on the site's pages: cookies, and the Origin header on
    the forms it posts (a real browser sends it on every POST)."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.http = httpx.AsyncClient(base_url=base_url, timeout=30, follow_redirects=False)

    async def close(self) -> None:
        await self.http.aclose()

    @property
    def session(self) -> str | None:
        return self.http.cookies.get("univence_session")

    def plant(self, session: str) -> None:
        """Sets the session cookie as the site would have (same domain and path: it replaces the site's)."""
        self.http.cookies.set("univence_session", session, domain="127.0.0.1", path="/")

    async def page(self, path: str) -> httpx.Response:
        response = await self.http.get(path)
        if response.status_code == 303:
            response = await self.http.get(response.headers["location"])
        return response

    async def submit(self, page_path: str, action: str, fields: dict[str, str], *, follow: bool = True,
                     origin: str | None = None, token: str | None = None) -> httpx.Response:
        """Opens `page_path`, fills the form's token, posts `fields` to `action` (following a redirect)."""
        if token is None:
            token = hidden((await self.http.get(page_path)).text)
        headers = {"Origin": self.base_url if origin is None else origin}
        response = await self.http.post(action, data={**fields, "csrf_token": token}, headers=headers)
        if follow and response.status_code == 303:
            response = await self.http.get(response.headers["location"])
        return response

    async def sign_up(self, email: str, password: str = PASSWORD) -> httpx.Response:
        return await self.submit("/signup", "/signup", {"email": email, "password": password,
                                                        "password_again": password})

    async def log_in(self, email: str, password: str = PASSWORD, **kwargs) -> httpx.Response:
        return await self.submit("/login", "/login", {"email": email, "password": password}, **kwargs)

    async def create_key(self, name: str) -> httpx.Response:
        return await self.submit("/account", "/account/keys", {"name": name})
