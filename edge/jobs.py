"""Long jobs on this edge (a video now, music next): created in the media service's jobs table (so any
edge replica answers for any job), run here in a background task, settled with the job's end.

    job, run = await runner.submit(request, principal, spec)   # reserve → CreateJob → start
    # async answer: the job as it is now; sync answer: `await run` (the outputs, or the job's error)

- Create: an Idempotency-Key the owner used before names its job, which is answered again (charged
  once); otherwise the price is reserved first (edge.metering: a 402 creates nothing), then the job.
  The Hold stays unsettled while the job runs, and the keeper (edge.settlement) renews it.
- Run: the service's progress stream (`spec.method`), its progress reported to the jobs table
  (monotonic, throttled, with the queue position while waiting), the outputs stored in media for the
  owner, the job marked completed, then the hold committed. Marking it completed before committing
  means a job cancelled at the last moment is never charged: completed-or-cancelled is decided by the
  jobs table, once. Outputs of a job that did not complete are deleted (none stored once it is known
  to be stopped), so no file is left that no job names.
- Heartbeat: every report renews this runner's lease on the job; its answer says whether the job was
  cancelled meanwhile (DELETE on any replica), which stops the work (the gRPC call is cancelled, the
  service's queue slot freed). If this edge dies, nobody renews the lease: the media service marks the
  job failed ("its runner stopped") and the hold expires by itself.
- Failure (the service failed or went away, a cancel, this edge shutting down): the hold is released
  and the job ends failed or cancelled with the error, so nothing is ever left running or charged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Request
from google.protobuf import struct_pb2

from edge.auth import Principal
from edge.clients import ServiceClients, call, stream
from edge.config import EdgeSettings
from edge.errors import APIError, ClientDisconnected, from_status, to_status
from edge.metering import Hold, Meter, fingerprint, replay_conflict, until_disconnect
from edge.outputs import Outputs
from edge.relay import until_result
from edge.serving import Modality
from edge.tasks import started
from univence.accounts.v1 import accounts_pb2
from univence.media.v1 import media_pb2

log = logging.getLogger(__name__)
R = TypeVar("R")
Status = media_pb2.JobStatus
# Why an Idempotency-Key settled before names no job now: its job was deleted (DELETE /v1/videos/{id}).
NO_JOB = "no job of yours has it now (its job was deleted since, or it was used for another request)"
# Reports go out at most this often (the progress of a fast loop would be one write per step).
MIN_REPORT_SECONDS = 0.5


@dataclass(frozen=True)
class JobSpec(Generic[R]):
    """A checked job: the service's progress stream to run, its price, the public parameters shown back
    with the job, how an event carries the result `R`, and how the result is stored (media ids, the main
    output first)."""

    kind: str
    modality: Modality
    method: str
    request: Any
    charges: list[accounts_pb2.ChargeItem]
    params: dict[str, Any]
    result: Callable[[Any], R | None]
    store: Callable[[R, Outputs], Awaitable[list[str]]]


@dataclass(frozen=True)
class Finished(Generic[R]):
    """A completed job: its outputs' media ids and the service's result, and how long the service took
    (from the call to its result; edge.serving.add_upstream_timing)."""

    job: media_pb2.Job
    result: R
    upstream_ms: float


class JobCancelled(APIError):
    def __init__(self, message: str = "the job was cancelled before it ended; nothing was charged"):
        super().__init__(409, message, code="cancelled")


class JobRunner:
    """The jobs this edge process runs (app.state.jobs)."""

    def __init__(self, clients: ServiceClients, meter: Meter, settings: EdgeSettings):
        self.clients, self.meter = clients, meter
        self.runner_id = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
        self.heartbeat_seconds = settings.job_heartbeat_seconds
        self.lease_seconds = settings.job_lease_seconds
        self.runs: dict[str, _Run] = {}
        self.closing = False

    async def submit(self, request: Request, principal: Principal,
                     spec: JobSpec[R]) -> tuple[media_pb2.Job, asyncio.Task[Finished[R]] | None]:
        """The job (a new one, running here; or the owner's job with this Idempotency-Key) and, when it
        runs on this edge, its task."""
        key = request.headers.get("idempotency-key", "")
        digest = fingerprint(request) if key else ""
        if key and (existing := await self.by_key(principal.user_id, key)) is not None:
            return self._same(existing, digest), self._task(existing.job_id)
        try:
            hold = await self.meter.reserve(request, principal, spec.charges)
        except APIError as exc:  # the key was settled before, for no job there is now
            if key and exc.code == "idempotency_conflict":
                if (existing := await self.by_key(principal.user_id, key)) is not None:  # made meanwhile
                    return self._same(existing, digest), self._task(existing.job_id)
                raise replay_conflict(NO_JOB) from None
            raise
        if hold.replay is not None:  # the key was committed for a request that made no job here
            if key and (existing := await self.by_key(principal.user_id, key)) is not None:
                return self._same(existing, digest), self._task(existing.job_id)
            raise replay_conflict(NO_JOB)
        params = struct_pb2.Struct()
        params.update(spec.params)
        try:
            made = await call("media", self.clients.media.CreateJob, media_pb2.CreateJobRequest(
                owner_id=principal.user_id, kind=spec.kind, params=params, hold_id=hold.hold.hold_id,
                idempotency_key=key, request_fingerprint=digest, runner_id=self.runner_id,
                lease_seconds=self.lease_seconds), timeout=30)
        except BaseException as exc:
            await self.meter.settle(hold, exc)
            raise
        if not made.created:  # the same key raced in: that job is the one, this hold is not needed
            await hold.release("duplicate_job")
            return self._same(made.job, digest), self._task(made.job.job_id)
        run = _Run(self, made.job, hold, spec, Outputs(request, principal, self.clients))
        self.runs[made.job.job_id] = run
        run.task.add_done_callback(lambda _: self.runs.pop(made.job.job_id, None))
        return made.job, run.task

    @staticmethod
    def _same(job: media_pb2.Job, digest: str) -> media_pb2.Job:
        """The job a retry names, unless the key was used for a different request (409, as elsewhere)."""
        if job.request_fingerprint != digest:
            raise APIError(409, "This Idempotency-Key was already used for a different request",
                           code="idempotency_conflict", param="Idempotency-Key")
        return job

    def _task(self, job_id: str) -> asyncio.Task | None:
        run = self.runs.get(job_id)
        return run.task if run is not None else None

    async def by_key(self, owner_id: str, key: str) -> media_pb2.Job | None:
        try:
            return (await call("media", self.clients.media.GetJob, media_pb2.GetJobRequest(
                owner_id=owner_id, idempotency_key=key), timeout=30)).job
        except APIError as exc:
            if exc.status == 404:
                return None
            raise

    async def get(self, job_id: str, owner_id: str) -> media_pb2.Job:
        """The owner's job; 404 for any other (someone else's job is not there for this caller)."""
        return (await call("media", self.clients.media.GetJob, media_pb2.GetJobRequest(
            job_id=job_id, owner_id=owner_id), timeout=30)).job

    async def wait(self, request: Request, job: media_pb2.Job,
                   task: asyncio.Task[Finished[R]] | None) -> media_pb2.Job | Finished[R]:
        """A synchronous answer's wait: the completed job as it finished here (with the service's result),
        or as read back when it ran elsewhere (its outputs are in media); the job's error when it did not
        complete. A client that goes away cancels the job (it costs nothing, as any request the client
        abandons)."""
        try:
            if task is not None:
                return await until_disconnect(request, asyncio.shield(task))
            # An earlier request's job (the same Idempotency-Key), perhaps on another replica: poll it.
            while job.status in (Status.JOB_STATUS_QUEUED, Status.JOB_STATUS_IN_PROGRESS):
                await until_disconnect(request, asyncio.sleep(MIN_REPORT_SECONDS))
                job = await self.get(job.job_id, job.owner_id)
        except ClientDisconnected:
            await self.cancel(job.job_id, job.owner_id)
            raise
        if job.status != Status.JOB_STATUS_COMPLETED:
            raise from_status(job.error, "the job did not complete")
        return job

    async def cancel(self, job_id: str, owner_id: str) -> media_pb2.Job:
        """Ends the owner's job CANCELLED (an ended job stays as it was); when it runs here it stops now,
        elsewhere at its runner's next heartbeat."""
        job = (await call("media", self.clients.media.CancelJob, media_pb2.CancelJobRequest(
            job_id=job_id, owner_id=owner_id), timeout=30)).job
        if (run := self.runs.get(job_id)) is not None:
            run.stop()
        return job

    async def delete(self, job_id: str, owner_id: str) -> media_pb2.Job:
        """Deletes the owner's ended job and its outputs (the media service refuses a live job)."""
        return (await call("media", self.clients.media.DeleteJob, media_pb2.DeleteJobRequest(
            job_id=job_id, owner_id=owner_id), timeout=30)).job

    async def close(self, timeout: float = 10.0) -> None:
        """At shutdown: every job still running here ends failed, its hold released (never left running
        until its lease runs out)."""
        self.closing = True
        runs = list(self.runs.values())
        for run in runs:
            run.stop()
        if runs:
            await asyncio.wait([run.task for run in runs], timeout=timeout)


class _Run(Generic[R]):
    """One job running on this edge: the work (the service's stream), and its reports."""

    def __init__(self, runner: JobRunner, job: media_pb2.Job, hold: Hold, spec: JobSpec[R], outputs: Outputs):
        self.runner, self.job, self.hold, self.spec, self.outputs = runner, job, hold, spec, outputs
        self.status, self.progress, self.queue_position = Status.JOB_STATUS_QUEUED, 0, 0
        self.changed = asyncio.Event()
        self.work: asyncio.Task | None = None
        self.stopped = False
        # Retrieved whether or not awaited: a synchronous waiter may be gone.
        self.task: asyncio.Task[Finished[R]] = started(self._run(), name=f"job {job.job_id}")

    def stop(self) -> None:
        self.stopped = True
        if self.work is not None:
            self.work.cancel()

    async def _run(self) -> Finished[R]:
        reports = asyncio.create_task(self._report_forever())
        began = time.perf_counter()
        try:
            self.work = asyncio.create_task(self._produce())
            if self.stopped:
                self.work.cancel()
            try:
                result = await self.work
            except asyncio.CancelledError:
                raise self._stopped_error() from None
            upstream_ms = (time.perf_counter() - began) * 1e3
            if self.stopped:  # cancelled as the work ended: nothing is stored for a job that will not complete
                raise self._stopped_error()
            media_ids = await self.spec.store(result, self.outputs)
            reports.cancel()
            job = await self._complete(media_ids)
            await self.hold.commit()
            return Finished(job, result, upstream_ms)
        except APIError as exc:
            await self.hold.release("cancelled" if isinstance(exc, JobCancelled) else exc.type)
            if not isinstance(exc, JobCancelled):  # a cancelled job was ended by its cancel
                await self._end_failed(exc)
            raise
        except BaseException as exc:
            log.exception("job %s failed", self.job.job_id)
            await self.hold.release("processing_error")
            await self._end_failed(APIError(500, "the job failed on the edge", "processing_error"))
            raise exc
        finally:
            reports.cancel()
            if self.work is not None:
                self.work.cancel()

    async def _complete(self, media_ids: list[str]) -> media_pb2.Job:
        """Marks the job completed with its outputs; when it does not complete (cancelled, swept or deleted
        meanwhile, or the report failed and the job is not completed) its outputs are deleted, so no
        stored file is left that no job names."""
        try:
            answer = await self._update(status=Status.JOB_STATUS_COMPLETED, result_media_ids=media_ids)
        except APIError as exc:
            if exc.status != 404:  # the report may have landed before it failed: only the job knows
                try:
                    job = await self.runner.get(self.job.job_id, self.job.owner_id)
                except APIError:
                    log.error("job %s: cannot tell whether it completed; its outputs %s are kept", self.job.job_id,
                              media_ids)
                    raise exc from None
                if job.status == Status.JOB_STATUS_COMPLETED and list(job.result_media_ids) == media_ids:
                    return job
            await discard(self.runner.clients, self.job.owner_id, media_ids)
            raise
        if answer.stop:  # ended meanwhile (cancelled, swept): not completed, so neither charged nor kept
            await discard(self.runner.clients, self.job.owner_id, media_ids)
            raise JobCancelled()
        return answer.job

    def _stopped_error(self) -> APIError:
        if self.runner.closing:
            return APIError(503, "the edge running this job shut down before it ended; nothing was charged, "
                            "create it again", "processing_error", code="runner_stopped")
        return JobCancelled()

    async def _end_failed(self, error: APIError) -> None:
        with contextlib.suppress(APIError):  # media unreachable: the lease runs out, the sweep fails it
            await self._update(status=Status.JOB_STATUS_FAILED, error=to_status(error))

    async def _produce(self) -> R:
        """The service's stream up to its result, noting progress and queue position on the way."""
        spec = self.spec
        rpc = getattr(self.runner.clients.modality(spec.modality.name, spec.modality.stub), spec.method)
        events: AsyncIterator[Any] = stream(spec.modality.name, rpc, spec.request,
                                            timeout=self.runner.clients.timeout)
        try:
            return await until_result(events, spec.result, spec.modality.name, self._note)
        finally:
            await events.aclose()

    async def _note(self, event: Any) -> None:
        """A progress event → the job's status, percent (never lower) and queue position."""
        if not event.HasField("progress"):
            return
        progress = event.progress
        if progress.queue_position > 0:
            status, position, percent = Status.JOB_STATUS_QUEUED, progress.queue_position, self.progress
        else:
            status, position = Status.JOB_STATUS_IN_PROGRESS, 0
            done = progress.step * 100 // progress.total_steps if progress.total_steps > 0 else 0
            percent = max(self.progress, min(99, done))
        if (status, percent, position) != (self.status, self.progress, self.queue_position):
            self.status, self.progress, self.queue_position = status, percent, position
            self.changed.set()

    async def _report_forever(self) -> None:
        """Reports what changed (at most every MIN_REPORT_SECONDS) and heartbeats otherwise; a report
        answered `stop` (cancelled elsewhere, or swept) or NOT_FOUND (deleted after that) stops the work."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), timeout=self.runner.heartbeat_seconds)
            self.changed.clear()
            began = time.monotonic()
            try:
                answer = await self._update(status=self.status, progress=self.progress,
                                            queue_position=self.queue_position)
            except APIError as exc:
                if exc.status == 404:  # ended and deleted elsewhere meanwhile: nobody wants its result
                    self.stop()
                    return
                # media away for a moment: the lease outlasts a few missed beats
                log.warning("job %s: report failed (%s)", self.job.job_id, exc.message)
                answer = None
            if answer is not None and answer.stop:
                self.stop()
                return
            await asyncio.sleep(max(0.0, MIN_REPORT_SECONDS - (time.monotonic() - began)))

    async def _update(self, **fields: Any) -> media_pb2.UpdateJobResponse:
        return await call("media", self.runner.clients.media.UpdateJob, media_pb2.UpdateJobRequest(
            job_id=self.job.job_id, runner_id=self.runner.runner_id, lease_seconds=self.runner.lease_seconds,
            **fields), timeout=30)


async def discard(clients: ServiceClients, owner_id: str, media_ids: list[str]) -> None:
    """Deletes outputs that no job will name (the owner's only); one that cannot be deleted now is logged."""
    for media_id in media_ids:
        try:
            await call("media", clients.media.DeleteMedia, media_pb2.DeleteMediaRequest(
                media_id=media_id, owner_id=owner_id), timeout=30)
        except APIError as exc:
            if exc.status != 404:
                log.error("could not delete the orphan output %s: %s", media_id, exc.message)


async def get_jobs(request: Request) -> JobRunner:
    return request.app.state.jobs


Jobs = Annotated[JobRunner, Depends(get_jobs)]
