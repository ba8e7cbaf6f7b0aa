"""The jobs facility through real gRPC: create (idempotent per owner and key), get (owner-checked),
list (kind, order, offset, page tokens, after cursor, totals), a runner's updates (lease, monotonic
progress, queue position, the end), cancel (the runner learns it), delete (with its owner's files), the
sweep that fails a job whose runner died, and jobs that outlive a restart; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.protobuf import struct_pb2
from google.rpc import code_pb2, status_pb2

from tests.media.helpers import serve, settings_for
from tests.support.grpc_errors import error_info
from univence.media.v1 import media_pb2

S = media_pb2.JobStatus
NEWEST, OLDEST = media_pb2.SORT_ORDER_NEWEST_FIRST, media_pb2.SORT_ORDER_OLDEST_FIRST


def params(**values) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(values)
    return out


async def create(stub, owner: str = "alice", kind: str = "video", key: str = "", runner: str = "edge-1",
                 **fields) -> media_pb2.CreateJobResponse:
    return await stub.CreateJob(media_pb2.CreateJobRequest(
        owner_id=owner, kind=kind, params=params(prompt="a cat", num_frames=9), hold_id="hold-1",
        idempotency_key=key, runner_id=runner, **fields))


async def update(stub, job_id: str, runner: str = "edge-1", **fields) -> media_pb2.UpdateJobResponse:
    return await stub.UpdateJob(media_pb2.UpdateJobRequest(job_id=job_id, runner_id=runner, **fields))


async def failed_with(call, reason: str, param: str | None = None) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    info = error_info(caught.value)
    assert (info.reason, info.param) == (reason, param)


async def test_create_get_and_idempotency(media):
    made = await create(media.stub, key="k1")
    job = made.job
    assert made.created and job.job_id.startswith("video_") and len(job.job_id) > 32
    assert (job.status, job.progress, job.owner_id, job.kind, dict(job.params)) == (
        S.JOB_STATUS_QUEUED, 0, "alice", "video", {"prompt": "a cat", "num_frames": 9})
    again = await create(media.stub, key="k1")
    assert (again.created, again.job.job_id) == (False, job.job_id), "one job per owner and key"
    assert (await create(media.stub, owner="bob", key="k1")).created, "keys are per owner"
    assert (await create(media.stub)).created and (await create(media.stub)).created, "no key: always new"
    got = await media.stub.GetJob(media_pb2.GetJobRequest(job_id=job.job_id, owner_id="alice"))
    assert got.job == job
    by_key = await media.stub.GetJob(media_pb2.GetJobRequest(owner_id="alice", idempotency_key="k1"))
    assert by_key.job.job_id == job.job_id
    await failed_with(media.stub.GetJob(media_pb2.GetJobRequest(job_id=job.job_id, owner_id="bob")),
                      "NOT_FOUND", "job_id")
    await failed_with(create(media.stub, kind="Video!"), "INVALID_REQUEST", "kind")
    await failed_with(create(media.stub, runner=""), "INVALID_REQUEST", "runner_id")


async def test_runner_updates(media):
    job = (await create(media.stub)).job
    queued = await update(media.stub, job.job_id, queue_position=3)
    assert (queued.job.queue_position, queued.stop) == (3, False)
    running = await update(media.stub, job.job_id, status=S.JOB_STATUS_IN_PROGRESS, progress=40)
    assert (running.job.status, running.job.progress, running.job.queue_position) == (S.JOB_STATUS_IN_PROGRESS, 40, 0)
    lower = await update(media.stub, job.job_id, progress=10)
    assert lower.job.progress == 40, "progress never goes down"
    assert lower.job.lease_expire_time.ToMicroseconds() > running.job.lease_expire_time.ToMicroseconds()
    await failed_with(update(media.stub, job.job_id, runner="edge-2", progress=50), "PERMISSION_DENIED", "runner_id")
    await failed_with(update(media.stub, job.job_id, progress=101), "INVALID_REQUEST", "progress")
    await failed_with(update(media.stub, job.job_id, status=S.JOB_STATUS_COMPLETED), "INVALID_REQUEST",
                      "result_media_ids")
    done = await update(media.stub, job.job_id, status=S.JOB_STATUS_COMPLETED, result_media_ids=["m1", "m2"])
    assert (done.job.status, done.job.progress, list(done.job.result_media_ids)) == (
        S.JOB_STATUS_COMPLETED, 100, ["m1", "m2"])
    assert done.job.HasField("end_time")
    late = await update(media.stub, job.job_id, status=S.JOB_STATUS_FAILED,
                        error=status_pb2.Status(code=code_pb2.INTERNAL, message="late"))
    assert (late.stop, late.job.status, late.job.HasField("error")) == (True, S.JOB_STATUS_COMPLETED, False)


async def test_cancel_reaches_the_runner(media):
    job = (await create(media.stub)).job
    await update(media.stub, job.job_id, status=S.JOB_STATUS_IN_PROGRESS, progress=20)
    await failed_with(media.stub.CancelJob(media_pb2.CancelJobRequest(job_id=job.job_id, owner_id="bob")),
                      "NOT_FOUND", "job_id")
    cancelled = (await media.stub.CancelJob(media_pb2.CancelJobRequest(job_id=job.job_id, owner_id="alice"))).job
    assert (cancelled.status, cancelled.error.code) == (S.JOB_STATUS_CANCELLED, code_pb2.CANCELLED)
    heartbeat = await update(media.stub, job.job_id, progress=60)
    assert (heartbeat.stop, heartbeat.job.status, heartbeat.job.progress) == (True, S.JOB_STATUS_CANCELLED, 20)
    again = (await media.stub.CancelJob(media_pb2.CancelJobRequest(job_id=job.job_id))).job
    assert again == cancelled, "cancelling an ended job changes nothing"


async def test_a_job_whose_runner_died_fails(tmp_path):
    async with serve(settings_for(tmp_path, job_lease_seconds=0.3, job_sweep_seconds=0.1)) as media:
        dead = (await create(media.stub)).job
        alive = (await create(media.stub)).job
        done = (await create(media.stub)).job
        await update(media.stub, done.job_id, status=S.JOB_STATUS_COMPLETED, result_media_ids=["m"])
        for _ in range(8):  # the live runner keeps renewing; the dead one says nothing
            await update(media.stub, alive.job_id, lease_seconds=1)
            await asyncio.sleep(0.1)
        jobs = {j.job_id: j for j in (await media.stub.ListJobs(media_pb2.ListJobsRequest(owner_id="alice"))).jobs}
        assert jobs[dead.job_id].status == S.JOB_STATUS_FAILED
        assert "its runner stopped" in jobs[dead.job_id].error.message
        assert jobs[alive.job_id].status == S.JOB_STATUS_QUEUED
        assert jobs[done.job_id].status == S.JOB_STATUS_COMPLETED
        assert (await update(media.stub, dead.job_id, progress=50)).stop


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_listing_and_restart(request, tmp_path, backend):
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else ""
    settings = settings_for(tmp_path, database_url=url)
    async with serve(settings) as media:
        videos = [(await create(media.stub)).job.job_id for _ in range(5)]
        await create(media.stub, kind="music")
        await create(media.stub, owner="bob")
        await update(media.stub, videos[0], status=S.JOB_STATUS_COMPLETED, result_media_ids=["m"])

        async def listing(**fields) -> media_pb2.ListJobsResponse:
            return await media.stub.ListJobs(media_pb2.ListJobsRequest(owner_id="alice", **fields))

        first = await listing(kind="video", order=OLDEST, page_size=3)
        rest = await listing(kind="video", order=OLDEST, page_size=3, page_token=first.next_page_token)
        assert [j.job_id for j in [*first.jobs, *rest.jobs]] == videos
        assert (first.total_size, rest.next_page_token) == (5, "")
        newest = await listing(kind="video", page_size=2, offset=1)
        assert [j.job_id for j in newest.jobs] == videos[::-1][1:3]
        after = await listing(kind="video", page_size=2, after_job_id=videos[3])
        assert [j.job_id for j in after.jobs] == [videos[2], videos[1]] and after.next_page_token
        assert (await listing()).total_size == 6
        await failed_with(listing(after_job_id="video_nope"), "NOT_FOUND", "after_job_id")
    async with serve(settings) as media:  # a restart loses no job
        job = (await media.stub.GetJob(media_pb2.GetJobRequest(job_id=videos[0]))).job
        assert (job.status, list(job.result_media_ids)) == (S.JOB_STATUS_COMPLETED, ["m"])


async def test_delete_removes_an_ended_job_and_its_owners_files(media):
    """DeleteJob: a live job is refused (cancel it first); an ended one goes with the files it names, but
    only its owner's (a job naming someone else's file does not delete it)."""
    async def stored(owner: str) -> str:
        return (await media.stub.CreateMedia(media_pb2.CreateMediaRequest(
            owner_id=owner, kind=media_pb2.MEDIA_KIND_VIDEO, mime_type="video/mp4", data=b"\0" * 100))).media.media_id

    video, thumbnail, bobs = await stored("alice"), await stored("alice"), await stored("bob")
    job = (await create(media.stub)).job
    delete = media_pb2.DeleteJobRequest(job_id=job.job_id, owner_id="alice")
    await failed_with(media.stub.DeleteJob(delete), "INVALID_REQUEST", "job_id")
    await update(media.stub, job.job_id, status=S.JOB_STATUS_COMPLETED, result_media_ids=[video, thumbnail, bobs])
    await failed_with(media.stub.DeleteJob(media_pb2.DeleteJobRequest(job_id=job.job_id, owner_id="bob")),
                      "NOT_FOUND", "job_id")
    deleted = (await media.stub.DeleteJob(delete)).job
    assert (deleted.job_id, deleted.status) == (job.job_id, S.JOB_STATUS_COMPLETED)
    await failed_with(media.stub.GetJob(media_pb2.GetJobRequest(job_id=job.job_id)), "NOT_FOUND", "job_id")
    await failed_with(media.stub.DeleteJob(delete), "NOT_FOUND", "job_id")
    def metadata(media_id: str):
        return media.stub.GetMedia(media_pb2.GetMediaRequest(media_id=media_id, metadata_only=True)).read()

    for gone in (video, thumbnail):
        await failed_with(metadata(gone), "NOT_FOUND", "media_id")
    assert (await metadata(bobs)).media.owner_id == "bob"
