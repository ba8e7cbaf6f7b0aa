"""A real tiny image service (aio gRPC server in-process) per test that asks for one."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.image.helpers import ImageService, serve, settings_for


@pytest.fixture
async def image() -> AsyncIterator[ImageService]:
    async with serve(settings_for()) as service:
        yield service
