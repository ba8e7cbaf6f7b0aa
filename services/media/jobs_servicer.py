"""The MediaService's job RPCs (CreateJob, GetJob, ListJobs, UpdateJob, CancelJob, DeleteJob) and the sweep that
ends the jobs whose runner died. See services/media/jobs.py for the rules a job follows.

A job is generic: its kind ("video", "music") and its public parameters (a Struct, shown back by the
API) are the caller's; this service keeps the state, checks ownership and the runner's lease, and
never runs anything itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import TYPE_CHECKING

from google.protobuf import json_format
from google.rpc import code_pb2, status_pb2

from services.common.database import now_us
from services.common.errors import ServiceError, invalid, not_found
from services.media.jobs import JobConflict, JobRecord, JobStore, Status, encode_status, new_job_id
from services.media.paging import decode_page_token, next_page_token, page_size, query_fingerprint
from services.media.validation import check_owner
from univence.common.v1 import common_pb2
from univence.media.v1 import media_pb2

if TYPE_CHECKING:
    from services.media.config import MediaSettings

log = logging.getLogger(__name__)
KIND = re.compile(r"[a-z][a-z0-9-]{0,31}")
MAX_PARAMS_CHARS = 16_384
MAX_NAME_CHARS = 255
MAX_LEASE_SECONDS = 3600
RUNNER_STOPPED = ("its runner stopped before it ended (the edge that ran it went away); nothing was charged, "
                  "create it again")


def check_kind(kind: str, *, required: bool = True) -> str:
    if (kind or required) and not KIND.fullmatch(kind):
        raise invalid(f"kind {kind!r} is not a job kind (lower-case letters, digits and '-', e.g. video)", "kind")
    return kind


def check_name(value: str, param: str, *, required: bool = True) -> str:
    if required and not value:
        raise invalid(f"{param} is required", param)
    if len(value) > MAX_NAME_CHARS:
        raise invalid(f"{param} is longer than {MAX_NAME_CHARS} characters", param)
    return value


def failure(code: int, api_code: str, message: str) -> status_pb2.Status:
    """A job's error: a google.rpc.Status whose ErrorInfo the edge reads as the API's error (its type from
    the reason, its `code` from the metadata, as the edge's own job errors carry it)."""
    status = ServiceError(common_pb2.ERROR_REASON_PROCESSING_FAILED, message, metadata={"code": api_code}).status()
    status.code = code
    return status


class JobsServicer:
    """The job RPCs, mixed into MediaServicer; `jobs` is attached once the database is open."""

    jobs: JobStore
    settings: MediaSettings

    async def remove_media(self, media_id: str, owner_id: str | None) -> bool:
        """Deletes a media file (its row, then its bytes); the MediaServicer's."""
        raise NotImplementedError

    def _lease_until(self, requested: int | None, now: int) -> int:
        if requested is not None and not 1 <= requested <= MAX_LEASE_SECONDS:
            raise invalid(f"lease_seconds must be from 1 to {MAX_LEASE_SECONDS}", "lease_seconds")
        seconds = self.settings.job_lease_seconds if requested is None else requested
        return now + int(seconds * 1_000_000)

    async def CreateJob(self, request: media_pb2.CreateJobRequest, context) -> media_pb2.CreateJobResponse:
        owner = check_owner(request.owner_id)
        kind = check_kind(request.kind)
        params = json.dumps(json_format.MessageToDict(request.params), separators=(",", ":"))
        if len(params) > MAX_PARAMS_CHARS:
            raise invalid(f"params are {len(params)} characters of JSON; at most {MAX_PARAMS_CHARS}", "params")
        check_name(request.hold_id, "hold_id", required=False)
        check_name(request.idempotency_key, "idempotency_key", required=False)
        check_name(request.request_fingerprint, "request_fingerprint", required=False)
        runner = check_name(request.runner_id, "runner_id")
        now = now_us()
        lease = self._lease_until(request.lease_seconds if request.HasField("lease_seconds") else None, now)
        record = JobRecord(
            job_id=new_job_id(kind), owner_id=owner, kind=kind, params=params, status=Status.JOB_STATUS_QUEUED,
            progress=0, queue_position=0, result_media_ids="[]", error="", hold_id=request.hold_id,
            idempotency_key=request.idempotency_key or None, request_fingerprint=request.request_fingerprint,
            runner_id=runner, created_us=now, updated_us=now,
            lease_us=lease)
        job, created = await asyncio.to_thread(self.jobs.create, record)
        return media_pb2.CreateJobResponse(job=job.to_proto(), created=created)

    async def GetJob(self, request: media_pb2.GetJobRequest, context) -> media_pb2.GetJobResponse:
        if request.idempotency_key:
            owner = check_owner(request.owner_id)
            record = await asyncio.to_thread(self.jobs.by_key, owner, request.idempotency_key)
        else:
            record = await asyncio.to_thread(self.jobs.get, check_name(request.job_id, "job_id"),
                                             request.owner_id or None)
        if record is None:
            raise not_found("no job with this id", "job_id")
        return media_pb2.GetJobResponse(job=record.to_proto())

    async def ListJobs(self, request: media_pb2.ListJobsRequest, context) -> media_pb2.ListJobsResponse:
        owner = check_owner(request.owner_id)
        kind = check_kind(request.kind, required=False)
        if request.order not in media_pb2.SortOrder.values():
            raise invalid(f"unknown order {request.order}", "order")
        size = page_size(request.page_size, request.offset)
        newest_first = request.order != media_pb2.SORT_ORDER_OLDEST_FIRST
        query = query_fingerprint(owner, kind, newest_first, request.after_job_id)
        offset = decode_page_token(request.page_token, query) if request.page_token else request.offset
        after = None
        if request.after_job_id:
            after = await asyncio.to_thread(self.jobs.get, request.after_job_id, owner)
            if after is None:
                raise not_found("after_job_id names no job of this owner", "after_job_id")
        records, total = await asyncio.to_thread(self.jobs.list, owner, kind, newest_first=newest_first,
                                                 limit=size, offset=offset, after=after)
        # With a cursor the total counts every job, not those after it: the token ends by the page's size.
        left = total if after is None else offset + len(records) + (1 if len(records) == size else 0)
        return media_pb2.ListJobsResponse(jobs=[r.to_proto() for r in records], total_size=total,
                                          next_page_token=next_page_token(offset, len(records), left, query))

    async def UpdateJob(self, request: media_pb2.UpdateJobRequest, context) -> media_pb2.UpdateJobResponse:
        job_id = check_name(request.job_id, "job_id")
        runner = check_name(request.runner_id, "runner_id")
        if request.status not in Status.values():
            raise invalid(f"unknown status {request.status}", "status")
        changes: dict = {"status": request.status or None, "result_media_ids": list(request.result_media_ids)}
        if request.HasField("progress"):
            if not 0 <= request.progress <= 100:
                raise invalid("progress must be from 0 to 100", "progress")
            changes["progress"] = request.progress
        if request.HasField("queue_position"):
            if request.queue_position < 0:
                raise invalid("queue_position must not be negative", "queue_position")
            changes["queue_position"] = request.queue_position
        if request.HasField("error"):
            changes["error"] = encode_status(request.error)
        if request.status == Status.JOB_STATUS_COMPLETED and not request.result_media_ids:
            raise invalid("a completed job names its outputs (result_media_ids)", "result_media_ids")
        now = now_us()
        lease = self._lease_until(request.lease_seconds if request.HasField("lease_seconds") else None, now)
        try:
            answer = await asyncio.to_thread(self.jobs.update, job_id, runner, now, lease, changes)
        except JobConflict:
            raise ServiceError(common_pb2.ERROR_REASON_PERMISSION_DENIED,
                               "another runner holds this job", param="runner_id") from None
        if answer is None:
            raise not_found("no job with this id", "job_id")
        record, stop = answer
        return media_pb2.UpdateJobResponse(job=record.to_proto(), stop=stop)

    async def CancelJob(self, request: media_pb2.CancelJobRequest, context) -> media_pb2.CancelJobResponse:
        job_id = check_name(request.job_id, "job_id")
        error = encode_status(failure(code_pb2.CANCELLED, "cancelled",
                                      "cancelled by its owner before it ended; nothing was charged"))
        record = await asyncio.to_thread(self.jobs.cancel, job_id, request.owner_id or None, now_us(), error)
        if record is None:
            raise not_found("no job with this id", "job_id")
        return media_pb2.CancelJobResponse(job=record.to_proto())

    async def DeleteJob(self, request: media_pb2.DeleteJobRequest, context) -> media_pb2.DeleteJobResponse:
        job_id = check_name(request.job_id, "job_id")
        owner = request.owner_id or None
        record = await asyncio.to_thread(self.jobs.get, job_id, owner)
        if record is None:
            raise not_found("no job with this id", "job_id")
        if not record.ended:
            raise invalid("the job is still queued or running: cancel it first (CancelJob)", "job_id")
        # Its files first, then the row: a delete cut short leaves the job (a retry finishes it), never
        # files no job names. Only the job owner's files are touched, whatever the job names.
        for media_id in json.loads(record.result_media_ids):
            await self.remove_media(media_id, record.owner_id)
        await asyncio.to_thread(self.jobs.delete, job_id, record.owner_id)
        return media_pb2.DeleteJobResponse(job=record.to_proto())

    async def sweep_forever(self) -> None:
        """Every job_sweep_seconds, ends failed the live jobs whose runner's lease ran out: a job is never
        left running longer than its lease plus one sweep after its runner died."""
        error = encode_status(failure(code_pb2.UNAVAILABLE, "runner_stopped", RUNNER_STOPPED))
        while True:
            await asyncio.sleep(self.settings.job_sweep_seconds)
            try:
                if swept := await asyncio.to_thread(self.jobs.sweep, now_us(), error):
                    log.warning("%d job(s) failed: their runner's lease ran out", swept)
            except Exception:  # the database is down for a moment: the next sweep tries again
                log.exception("job sweep failed")
