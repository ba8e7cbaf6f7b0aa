from __future__ import annotations

import httpx
import pytest

from tests.edge.account_site import Browser
from tests.support.platform import running_platform


@pytest.fixture
async def platform(tmp_path):
    async with running_platform(tmp_path) as p:
        yield p


@pytest.fixture
async def http(platform):
    async with httpx.AsyncClient(base_url=platform.base_url, timeout=30) as client:
        yield client


@pytest.fixture
async def browser(platform):
    """A browser-like client of the account pages (tests/edge/account_site.py)."""
    b = Browser(platform.base_url)
    yield b
    await b.close()
