"""One tiny video service for the whole session (its models are built once). Tests that use it run in
the session's event loop (`pytestmark = pytest.mark.asyncio(loop_scope="session")`)."""

from __future__ import annotations

import pytest_asyncio

from services.video.fixtures import serve, settings_for

# A queue of two (one running, one waiting), so that a test can fill it.
SESSION_SETTINGS = {"queue_max_pending": 2}


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def video():
    async with serve(settings_for(**SESSION_SETTINGS)) as service:
        yield service
