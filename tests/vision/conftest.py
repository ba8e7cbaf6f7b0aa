"""One tiny vision service for the whole session (its models are built once). Tests that use it run in
the session's event loop (`pytestmark = pytest.mark.asyncio(loop_scope="session")`)."""

from __future__ import annotations

import pytest_asyncio

from tests.vision.helpers import serve, settings_for

# Small tiles, so that the small test images are really upscaled in tiles (tests compare with one
# untiled call), and a small video byte limit, so that a test can pass it.
SESSION_SETTINGS = {"upscale_tile": 32, "upscale_tile_overlap": 24, "max_video_mb": 1.0, "video_batch_frames": 4}


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def vision():
    async with serve(settings_for(**SESSION_SETTINGS)) as service:
        yield service
