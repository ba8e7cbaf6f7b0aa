"""Video jobs that do not complete: cancelled mid-run (DELETE) or at the last moment (its stored files
deleted), the video service killed mid-job, the
runner that dies (its lease runs out), the edge shutting down with a job running. Each ends failed with a
clear error, never stuck, and costs nothing; the service's slot is free for the next job. Against the
real edge, accounts and media services and the tiny video service (a fresh stack per test: these tests
stop parts of it)."""

from __future__ import annotations

import asyncio

import pytest

from edge.endpoints.videos import translate
from edge.jobs import JobCancelled
from tests.edge.video_stack import LEASE_SECONDS, SMALL, START_MC, VIDEO_MC, picture, running_stack
from univence.media.v1 import media_pb2

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")
# Long enough on the tiny model (seconds) to be caught running.
LONG = {"num_frames": "81", "num_steps": "4", "resolution": "1080p"}


async def create(stack, headers: dict, fields: dict) -> dict:
    response = await stack.http.post("/v1/videos", headers=headers, data={"prompt": "a storm", **fields},
                                     files={"input_reference": ("first.png", picture(), "image/png")})
    assert response.status_code == 200, response.text
    return response.json()


async def test_cancel_mid_run_costs_nothing_and_frees_the_service(tmp_path):
    async with running_stack(tmp_path) as stack:
        user_id, headers = await stack.user("cancel@example.com")
        video = await create(stack, headers, LONG)
        await stack.until(video["id"], headers, "in_progress")
        waiting = await create(stack, headers, SMALL)  # behind it: one video at a time
        while (queued := await stack.until(waiting["id"], headers, "queued", "in_progress", "completed"))[
                "status"] == "queued" and not queued["queue_position"]:
            await asyncio.sleep(0.05)  # created; its place comes with the service's first event
        assert (queued["status"], queued["queue_position"]) == ("queued", 1), queued
        deleted = await stack.http.delete(f"/v1/videos/{video['id']}", headers=headers)
        assert deleted.json() == {"id": video["id"], "object": "video.deleted", "deleted": False}, "cancelled, kept"
        ended = await stack.until(video["id"], headers, "failed")
        assert ended["error"]["code"] == "cancelled" and "cancelled" in ended["error"]["message"]
        after = await stack.http.get(f"/v1/videos/{video['id']}/content", headers=headers)
        assert after.status_code == 409 and after.json()["error"]["code"] == "video_not_ready"
        assert (await stack.until(waiting["id"], headers, "completed", "failed"))["status"] == "completed"
        await stack.settled(user_id, START_MC - VIDEO_MC)
        again = await stack.http.delete(f"/v1/videos/{video['id']}", headers=headers)
        assert again.json() == {"id": video["id"], "object": "video.deleted", "deleted": True}, "ended: deleted"
        assert (await stack.http.get(f"/v1/videos/{video['id']}", headers=headers)).status_code == 404


async def test_cancelled_at_the_last_moment_leaves_no_stored_video(tmp_path, monkeypatch):
    """The cancel lands after the video is stored and before the job is marked completed: the job ends
    cancelled, uncharged, and the files stored for it are deleted (no file that no job names)."""
    stored: list[str] = []
    store = translate.store_video

    async def store_then_cancel(result, outputs):
        ids = await store(result, outputs)
        stored.extend(ids)
        job = (await stack.platform.media.ListJobs(media_pb2.ListJobsRequest(owner_id=user_id))).jobs[0]
        await stack.platform.media.CancelJob(media_pb2.CancelJobRequest(job_id=job.job_id))
        return ids

    monkeypatch.setattr(translate, "store_video", store_then_cancel)
    async with running_stack(tmp_path) as stack:
        user_id, headers = await stack.user("last-moment@example.com")
        video = await create(stack, headers, SMALL)
        ended = await stack.until(video["id"], headers, "failed")
        assert ended["error"]["code"] == "cancelled" and len(stored) == 2, (ended, stored)
        await stack.settled(user_id, START_MC)  # the runner has settled: it deleted the files before
        files = await stack.platform.media.ListMedia(media_pb2.ListMediaRequest(owner_id=user_id))
        assert list(files.media) == [], "the stored video and thumbnail were deleted"


async def test_cancelled_and_deleted_elsewhere_stops_the_runner(tmp_path):
    """Another replica cancels the job, then deletes it (DELETE twice), before this runner's next
    heartbeat: the heartbeat finds no job and stops the work (the service's slot freed), no file is kept."""
    async with running_stack(tmp_path) as stack:
        user_id, headers = await stack.user("deleted-elsewhere@example.com")
        video = await create(stack, headers, LONG)
        await stack.until(video["id"], headers, "in_progress")
        run = stack.platform.app.state.jobs.runs[video["id"]]
        await stack.platform.media.CancelJob(media_pb2.CancelJobRequest(job_id=video["id"]))
        await stack.platform.media.DeleteJob(media_pb2.DeleteJobRequest(job_id=video["id"]))
        await stack.settled(user_id, START_MC)
        # The hold is released as the run ends, just before its task returns: give the task that moment.
        await asyncio.wait({run.task}, timeout=2)
        assert run.stopped and run.task.done(), "stopped by its heartbeat, not run to its end"
        assert isinstance(run.task.exception(), JobCancelled)
        await stack.idle()
        assert list((await stack.platform.media.ListMedia(media_pb2.ListMediaRequest(owner_id=user_id))).media) == []


async def test_sync_request_cancelled_elsewhere_answers_the_cancel(tmp_path):
    """img2video is a job too: cancelling it (as another replica would, through the jobs table) ends the
    synchronous request with that error, uncharged."""
    async with running_stack(tmp_path) as stack:
        user_id, headers = await stack.user("sync-cancel@example.com")

        async def cancel_when_running() -> None:
            while True:
                listed = await stack.platform.media.ListJobs(media_pb2.ListJobsRequest(owner_id=user_id))
                if listed.jobs and listed.jobs[0].status == media_pb2.JOB_STATUS_IN_PROGRESS:
                    await stack.platform.media.CancelJob(media_pb2.CancelJobRequest(job_id=listed.jobs[0].job_id))
                    return
                await asyncio.sleep(0.05)

        canceller = asyncio.create_task(cancel_when_running())
        response = await stack.http.post("/v1/images/img2video", headers=headers, data={"prompt": "x", **LONG},
                                         files={"image": ("a.png", picture(), "image/png")})
        await canceller
        assert response.status_code == 409 and response.json()["error"]["code"] == "cancelled"
        await stack.settled(user_id, START_MC)


async def test_video_service_killed_mid_job(tmp_path):
    async with running_stack(tmp_path) as stack:
        user_id, headers = await stack.user("killed@example.com")
        video = await create(stack, headers, LONG)
        await stack.until(video["id"], headers, "in_progress")
        await stack.stop_video()
        ended = await stack.until(video["id"], headers, "failed")
        assert "video service" in ended["error"]["message"], ended["error"]
        await stack.settled(user_id, START_MC)


async def test_a_dead_runners_job_fails_within_its_lease(tmp_path):
    """A job whose runner (an edge) died: nobody renews its lease, the media service fails it."""
    async with running_stack(tmp_path) as stack:
        user_id, headers = await stack.user("orphan@example.com")
        job = (await stack.platform.media.CreateJob(media_pb2.CreateJobRequest(
            owner_id=user_id, kind="video", runner_id="an-edge-that-died", lease_seconds=1))).job
        seen = await stack.until(job.job_id, headers, "queued", "failed")
        assert seen["status"] == "queued"
        ended = await stack.until(job.job_id, headers, "failed", within=LEASE_SECONDS + 3)
        assert "its runner stopped" in ended["error"]["message"]


async def test_edge_shutdown_ends_its_jobs_failed_and_released(tmp_path):
    async with running_stack(tmp_path) as stack:
        user_id, headers = await stack.user("shutdown@example.com")
        video = await create(stack, headers, LONG)
        await stack.until(video["id"], headers, "in_progress")
        await stack.platform.app.state.jobs.close()  # what the edge's lifespan does at shutdown
        job = await stack.job(video["id"])
        assert job.status == media_pb2.JOB_STATUS_FAILED and "shut down" in job.error.message
        await stack.settled(user_id, START_MC)
