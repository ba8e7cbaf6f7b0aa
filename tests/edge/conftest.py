from __future__ import annotations

import httpx
import pytest

from tests.support.platform import running_platform


@pytest.fixture
async def platform(tmp_path):
    async with running_platform(tmp_path) as p:
        yield p


@pytest.fixture
async def http(platform):
    async with httpx.AsyncClient(base_url=platform.base_url, timeout=30) as client:
        yield client
