"""Fixtures: a real media service (aio gRPC server in-process) on a temp folder, and PostgreSQL for
the listing test that runs on each index backend (skipped where its binaries are missing)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.media.config import MediaSettings
from tests.media.helpers import Media, serve, settings_for

__all__ = ["media", "media_settings"]


@pytest.fixture
def media_settings(tmp_path) -> MediaSettings:
    return settings_for(tmp_path)


@pytest.fixture
async def media(media_settings) -> AsyncIterator[Media]:
    async with serve(media_settings) as service:
        yield service
