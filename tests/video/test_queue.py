"""One video at a time: a second waits and hears its queue position, a third (past queue_max_pending) is
refused at once; a caller that leaves stops the denoising loop and frees its place for the next video.
Also the WorkQueue's positions themselves (services/common/workqueue.py)."""

from __future__ import annotations

import asyncio
import logging

import grpc
import pytest

from services.common.workqueue import WorkQueue
from tests.video.helpers import LONG, idle, refused, request, run

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def first_event(call, stage: str):
    """Reads the call's stream up to its first event of `stage`."""
    async for message in call:
        if message.progress.stage == stage:
            return message.progress
    raise AssertionError(f"the stream ended before a {stage!r} event")


async def test_a_full_queue_is_refused_at_once_and_a_waiting_video_hears_its_position(video):
    running = video.stub.GenerateVideo(request(**LONG))
    waiting = None
    try:
        await first_event(running, "encoding prompt")  # running before the second arrives: it must wait
        waiting = video.stub.GenerateVideo(request())
        queued = await first_event(waiting, "queued")
        assert (queued.queue_position, queued.step) == (1, 0)
        error = await refused(video, request())
        assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED and error.reason == "QUEUE_FULL"
        assert "queue is full" in error.message
        running.cancel()
        started = await first_event(waiting, "encoding prompt")  # it moves up once the first has stopped
        assert started.queue_position == 0
        events = [m async for m in waiting]
        assert events[-1].HasField("result") and events[-1].result.num_frames == 9
    finally:
        running.cancel()
        if waiting is not None:
            waiting.cancel()
        await idle(video)


async def test_a_cancelled_video_stops_in_the_denoising_loop_and_frees_the_gpu(video, caplog):
    caplog.set_level(logging.INFO, logger="services.video.servicer")
    """Cancelled while the pipeline prepares its latents: the first step's callback stops the loop, so
    neither the other steps nor the decoding run, and the queue is empty once the thread has returned."""
    call = video.stub.GenerateVideo(request(**LONG))
    await first_event(call, "encoding prompt")
    call.cancel()
    await idle(video)
    stopped = [r.getMessage() for r in caplog.records if "stopped after" in r.getMessage()]
    assert stopped == ["video generation stopped after 0 of 4 denoising steps: the caller went away"], caplog.text
    _, result = await run(video, request())  # the next video runs at once
    assert result.num_frames == 9


async def test_a_video_cancelled_while_waiting_leaves_the_queue():
    queue = WorkQueue("positions", max_pending=4)
    heard: dict[str, list[int]] = {"b": [], "c": []}
    release = asyncio.Event()

    async def hold():
        async with queue.slot():
            await release.wait()

    async def wait(name: str):
        async with queue.slot(on_position=heard[name].append):
            pass

    first = asyncio.create_task(hold())
    await asyncio.sleep(0)
    b, c = asyncio.create_task(wait("b")), asyncio.create_task(wait("c"))
    await asyncio.sleep(0)
    assert queue.waiting == 2 and heard == {"b": [1], "c": [2]}
    b.cancel()
    await asyncio.sleep(0)
    assert queue.waiting == 1 and heard["c"] == [2, 1]
    release.set()
    await asyncio.gather(first, c)
    assert queue.waiting == 0
    queue.close()
