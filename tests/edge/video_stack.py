"""The video stack for tests/edge/test_video*.py: the tiny video service, the platform (accounts, media)
and an edge that routes to it, with short job heartbeats and leases so a dead runner is found in
seconds; and the inputs and checks the tests share."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import av
import httpx
import openai

from services.video.fixtures import VideoService, serve, settings_for
from tests.image.helpers import picture  # noqa: F401 - re-exported: the tests' input images
from tests.support.platform import Platform, running_platform
from univence.media.v1 import media_pb2

START_MC = 100_000
VIDEO_MC = 1000  # 1 credit per video (the default price table)
# Small requests for the tiny model: seconds on a CPU.
SMALL = {"num_frames": "9", "num_steps": "2", "resolution": "480p"}
LEASE_SECONDS, SWEEP_SECONDS, HEARTBEAT_SECONDS = 2, 0.2, 0.3


@dataclass
class Stack:
    platform: Platform
    http: httpx.AsyncClient
    video: VideoService
    _video_exit: contextlib.AsyncExitStack

    async def stop_video(self) -> None:
        """Stops the video service (as if it was killed: its streams end with an error)."""
        await self._video_exit.aclose()

    async def user(self, email: str, *, credits_mc: int = START_MC, premium: bool = False) -> tuple[str, dict]:
        user_id, secret = await self.platform.user_with_key(email, credits_mc=credits_mc, premium=premium)
        return user_id, {"X-API-Key": secret}

    def sdk(self, headers: dict) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(api_key=headers["X-API-Key"], base_url=f"{self.platform.base_url}/v1",
                                  max_retries=0)

    async def balance(self, user_id: str) -> tuple[int, int]:
        b = await self.platform.balance(user_id)
        return b.balance_mc, b.held_mc

    async def settled(self, user_id: str, balance_mc: int, within: float = 10.0) -> None:
        """Waits until the user's balance is `balance_mc` with nothing held (settlements are async)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + within
        while (now := await self.balance(user_id)) != (balance_mc, 0):
            assert loop.time() < end, f"balance {now}, expected ({balance_mc}, 0)"
            await asyncio.sleep(0.05)

    async def job(self, job_id: str) -> media_pb2.Job:
        return (await self.platform.media.GetJob(media_pb2.GetJobRequest(job_id=job_id))).job

    async def until(self, video_id: str, headers: dict, *statuses: str, within: float = 60.0) -> dict:
        """Polls GET /v1/videos/{id} until its status is one of `statuses`; the video object."""
        loop = asyncio.get_running_loop()
        end = loop.time() + within
        while True:
            body = (await self.http.get(f"/v1/videos/{video_id}", headers=headers)).json()
            if body.get("status") in statuses:
                return body
            assert loop.time() < end, f"video still {body}"
            await asyncio.sleep(0.05)

    async def idle(self, within: float = 30.0) -> None:
        """Until the video service's queue is empty (a cancelled job's thread has returned)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + within
        while self.video.servicer.queue.pending:
            assert loop.time() < end, "the video service's queue is still busy"
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running_stack(tmp_path: Path, accounts_overrides: dict | None = None,
                        **video_overrides) -> AsyncIterator[Stack]:
    async with contextlib.AsyncExitStack() as video_exit:
        video = await video_exit.enter_async_context(serve(settings_for(**video_overrides)))
        async with running_platform(tmp_path, modalities=["video"], modality_addresses={"video": video.address},
                                    accounts_overrides=accounts_overrides,
                                    media_overrides={"job_sweep_seconds": SWEEP_SECONDS},
                                    job_heartbeat_seconds=HEARTBEAT_SECONDS, job_lease_seconds=LEASE_SECONDS) \
                as platform, httpx.AsyncClient(base_url=platform.base_url, timeout=120) as http:
            yield Stack(platform, http, video, video_exit)


def mp4_frames(data: bytes) -> tuple[int, int, int, str]:
    """(frames, width, height, codec) of an MP4, decoded with PyAV."""
    with av.open(io.BytesIO(data)) as container:
        assert container.format.name.startswith("mov,mp4")
        stream = container.streams.video[0]
        frames = [frame for frame in container.decode(stream)]
        return len(frames), frames[0].width, frames[0].height, stream.codec_context.name
