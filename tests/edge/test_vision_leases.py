"""The progress flow (a video's background removal, priced per frame once the frames are counted) on
credit leases, the default: charged exactly the frames with the object, nothing for a video without one
or for a client that leaves, and every leased credit back once the leases are returned."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from tests.edge.vision_stack import START_MC, Stack, file_part, running_stack, video
from tests.support.waiting import eventually

FRAME_MC = 250


@pytest.fixture
async def stack(tmp_path) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path, credit_leases=True) as stack:
        yield stack


async def settled(stack: Stack, user_id: str) -> tuple[int, int]:
    """The balance once this edge has delivered its charges and returned its unused leases."""
    await stack.platform.app.state.meter.leases.return_all()
    return await stack.balance(user_id)


async def test_frames_are_charged_once_each_from_the_lease_and_the_rest_comes_back(stack):
    user_id, headers = await stack.user("leased-video@example.com")
    with stack.frames_with_object({0, 3}):
        response = await stack.http.post("/v1/videos/remove-background", headers=headers,
                                         files=file_part(video(frames=5), "clip.mp4", "video/mp4"))
    assert response.status_code == 200, response.text
    assert response.headers["x-frames-with-object"] == "2"
    assert (await stack.balance(user_id))[1] > 0, "spent from a lease (its rest stays held until returned)"
    assert await settled(stack, user_id) == (START_MC - 2 * FRAME_MC, 0)
    with stack.frames_with_object(set()):
        empty = await stack.http.post("/v1/videos/remove-background", headers=headers,
                                      files=file_part(video(frames=3), "clip.mp4", "video/mp4"))
    assert empty.status_code == 200 and empty.headers["x-frames-with-object"] == "0"
    assert await settled(stack, user_id) == (START_MC - 2 * FRAME_MC, 0), "a video without the object is free"


async def test_a_client_that_leaves_mid_video_pays_nothing_on_a_lease(stack):
    user_id, headers = await stack.user("leased-gone@example.com")
    seen: list[int] = []
    with stack.frames_with_object(set(range(40)), seen, delay=0.2):
        request = asyncio.ensure_future(stack.http.post(
            "/v1/videos/remove-background", headers=headers,
            files=file_part(video(frames=40, fps=30), "clip.mp4", "video/mp4")))
        assert await eventually(lambda: len(seen) >= 3, seconds=60)
        request.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await request

        async def nothing_charged() -> bool:
            return await settled(stack, user_id) == (START_MC, 0)

        assert await eventually(nothing_charged, seconds=30)
