"""Long jobs' state (a video, a song): one SQL row per job, in the media service's database, so every
edge replica answers for every job and a completed job outlives any process.

A job belongs to a runner (an edge process) that holds a lease on it and renews it with each report
(UpdateJob). The runner is the only writer of a live job besides its owner's cancel; once a job has
ended (completed, failed, cancelled) nothing changes it any more, so a runner that comes back late
learns it must stop instead of overwriting the end. A job whose lease ran out while queued or running
is marked failed by `sweep` (its runner died: the edge was killed), never left running forever.

Methods block; the servicer calls them through asyncio.to_thread.
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass, replace

from google.protobuf import json_format, struct_pb2
from google.rpc import status_pb2
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import IntegrityError

from services.common.database import Migration, is_postgres, migrate, reading, sql, writing
from services.media.index import MIGRATIONS, SERVICE, timestamp
from univence.media.v1 import media_pb2

Status = media_pb2.JobStatus
LIVE = (Status.JOB_STATUS_QUEUED, Status.JOB_STATUS_IN_PROGRESS)
ENDED = (Status.JOB_STATUS_COMPLETED, Status.JOB_STATUS_FAILED, Status.JOB_STATUS_CANCELLED)
ID_BYTES = 24

MIGRATION = Migration(2, "jobs table", sql(
    "CREATE TABLE jobs ("
    " job_id VARCHAR(80) PRIMARY KEY,"
    " owner_id VARCHAR(255) NOT NULL,"
    " kind VARCHAR(32) NOT NULL,"
    " params TEXT NOT NULL,"
    " status SMALLINT NOT NULL,"
    " progress SMALLINT NOT NULL DEFAULT 0,"
    " queue_position INTEGER NOT NULL DEFAULT 0,"
    " result_media_ids TEXT NOT NULL,"
    # A serialized google.rpc.Status, base64 (one column type on every database); '' when none.
    " error TEXT NOT NULL,"
    " hold_id VARCHAR(255) NOT NULL,"
    # NULL when the request had no Idempotency-Key: NULLs never collide in the unique index.
    " idempotency_key VARCHAR(255),"
    " request_fingerprint VARCHAR(128) NOT NULL,"
    " runner_id VARCHAR(255) NOT NULL,"
    " created_us BIGINT NOT NULL,"
    " updated_us BIGINT NOT NULL,"
    " ended_us BIGINT NOT NULL DEFAULT 0,"
    " lease_us BIGINT NOT NULL)",
    "CREATE UNIQUE INDEX jobs_owner_key ON jobs (owner_id, idempotency_key)",
    "CREATE INDEX jobs_owner_kind_created ON jobs (owner_id, kind, created_us, job_id)",
    "CREATE INDEX jobs_owner_created ON jobs (owner_id, created_us, job_id)",
    # The sweep's question: which live jobs' leases ran out.
    "CREATE INDEX jobs_status_lease ON jobs (status, lease_us)",
))

_COLUMNS = ("job_id, owner_id, kind, params, status, progress, queue_position, result_media_ids, error, hold_id,"
            " idempotency_key, request_fingerprint, runner_id, created_us, updated_us, ended_us, lease_us")


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    owner_id: str
    kind: str
    params: str  # JSON object
    status: int
    progress: int
    queue_position: int
    result_media_ids: str  # JSON array
    error: str  # base64 of a google.rpc.Status, or ''
    hold_id: str
    idempotency_key: str | None
    request_fingerprint: str
    runner_id: str
    created_us: int
    updated_us: int
    ended_us: int = 0
    lease_us: int = 0

    @property
    def ended(self) -> bool:
        return self.status in ENDED

    def row(self) -> dict:
        return {name: getattr(self, name) for name in _COLUMNS.replace(" ", "").split(",")}

    def to_proto(self) -> media_pb2.Job:
        params = struct_pb2.Struct()
        json_format.ParseDict(json.loads(self.params), params)
        job = media_pb2.Job(
            job_id=self.job_id, owner_id=self.owner_id, kind=self.kind, params=params, status=self.status,
            progress=self.progress, queue_position=self.queue_position,
            result_media_ids=json.loads(self.result_media_ids), hold_id=self.hold_id, runner_id=self.runner_id,
            request_fingerprint=self.request_fingerprint,
            create_time=timestamp(self.created_us), update_time=timestamp(self.updated_us),
            lease_expire_time=timestamp(self.lease_us))
        if self.error:
            job.error.ParseFromString(base64.b64decode(self.error))
        if self.ended_us:
            job.end_time.CopyFrom(timestamp(self.ended_us))
        return job


def new_job_id(kind: str) -> str:
    """`<kind>_` and 192 random bits: the id names what it is (OpenAI's ids read `video_…` too)."""
    return f"{kind}_{secrets.token_urlsafe(ID_BYTES)}"


def encode_status(status: status_pb2.Status | None) -> str:
    return base64.b64encode(status.SerializeToString()).decode() if status is not None and status.code else ""


class JobConflict(Exception):
    """An update from a runner that does not hold the job."""


class JobStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    @classmethod
    def on(cls, engine: Engine) -> JobStore:
        """The jobs table in the media index's database, its schema brought up to date (the media
        service's migrations, then the jobs table's)."""
        migrate(engine, SERVICE, [*MIGRATIONS, MIGRATION])
        return cls(engine)

    def _select(self, conn: Connection, where: str, params: dict, *, lock: bool = False) -> JobRecord | None:
        suffix = " FOR UPDATE" if lock and is_postgres(self.engine) else ""
        row = conn.execute(text(f"SELECT {_COLUMNS} FROM jobs WHERE {where}{suffix}"), params).first()
        return None if row is None else JobRecord(*row)

    def create(self, record: JobRecord) -> tuple[JobRecord, bool]:
        """The new job, or the owner's job with the same idempotency key (and False)."""
        try:
            with writing(self.engine) as conn:
                conn.execute(text(f"INSERT INTO jobs ({_COLUMNS}) VALUES ("
                                  + ", ".join(f":{name}" for name in record.row()) + ")"), record.row())
            return record, True
        except IntegrityError:
            if record.idempotency_key is None:
                raise
        existing = self.by_key(record.owner_id, record.idempotency_key)
        if existing is None:  # deleted between the insert and this read (its owner's DELETE): rare, retryable
            raise RuntimeError("idempotency key collided with a job that was deleted meanwhile")
        return existing, False

    def get(self, job_id: str, owner_id: str | None = None) -> JobRecord | None:
        with reading(self.engine) as conn:
            record = self._select(conn, "job_id = :id", {"id": job_id})
        return None if record is None or (owner_id and record.owner_id != owner_id) else record

    def by_key(self, owner_id: str, key: str) -> JobRecord | None:
        with reading(self.engine) as conn:
            return self._select(conn, "owner_id = :owner AND idempotency_key = :key", {"owner": owner_id, "key": key})

    def list(self, owner_id: str, kind: str, *, newest_first: bool, limit: int, offset: int,
             after: JobRecord | None = None) -> tuple[list[JobRecord], int]:
        """One page of an owner's jobs (kind '' = every kind), from `offset` or after the job `after`,
        and how many match in all. The id breaks ties of one microsecond, so pages never overlap."""
        where = "owner_id = :owner" + (" AND kind = :kind" if kind else "")
        direction, cmp = ("DESC", "<") if newest_first else ("ASC", ">")
        params = {"owner": owner_id, "kind": kind, "limit": limit, "offset": offset}
        page_where = where
        if after is not None:
            page_where += (f" AND (created_us {cmp} :after_us OR (created_us = :after_us AND job_id {cmp} :after_id))")
            params.update(after_us=after.created_us, after_id=after.job_id)
        with reading(self.engine) as conn:  # one transaction: the page and the count agree
            total = conn.execute(text(f"SELECT COUNT(*) FROM jobs WHERE {where}"), params).scalar_one()
            rows = conn.execute(text(
                f"SELECT {_COLUMNS} FROM jobs WHERE {page_where}"
                f" ORDER BY created_us {direction}, job_id {direction} LIMIT :limit OFFSET :offset"), params).all()
        return [JobRecord(*row) for row in rows], int(total)

    def update(self, job_id: str, runner_id: str, now: int, lease_us: int,
               changes: dict) -> tuple[JobRecord, bool] | None:
        """Applies a runner's report (`changes`: status, progress, queue_position, result_media_ids, error)
        and renews its lease: (the job, False). An ended job is left as it is: (the job, True), the runner
        stops. None when there is no such job; JobConflict when another runner holds it."""
        with writing(self.engine) as conn:
            record = self._select(conn, "job_id = :id", {"id": job_id}, lock=True)
            if record is None:
                return None
            if record.ended:
                return record, True
            if record.runner_id != runner_id:
                raise JobConflict(record.runner_id)
            values = {"updated_us": now, "lease_us": lease_us}
            status = changes.get("status") or record.status
            values["status"] = status
            if (progress := changes.get("progress")) is not None:
                values["progress"] = max(record.progress, progress)
            if (position := changes.get("queue_position")) is not None:
                values["queue_position"] = position
            if status == Status.JOB_STATUS_IN_PROGRESS:
                values["queue_position"] = 0
            if changes.get("result_media_ids"):
                values["result_media_ids"] = json.dumps(list(changes["result_media_ids"]))
            if changes.get("error"):
                values["error"] = changes["error"]
            if status in ENDED:
                values["ended_us"] = now
                values["queue_position"] = 0
                if status == Status.JOB_STATUS_COMPLETED:
                    values["progress"] = 100
            updated = replace(record, **values)
            self._write(conn, updated, values)
        return updated, False

    def cancel(self, job_id: str, owner_id: str | None, now: int, error: str) -> JobRecord | None:
        """Ends a live job CANCELLED (with `error`); an ended job stays as it is. None: no such job."""
        with writing(self.engine) as conn:
            record = self._select(conn, "job_id = :id", {"id": job_id}, lock=True)
            if record is None or (owner_id and record.owner_id != owner_id):
                return None
            if record.ended:
                return record
            values = {"status": Status.JOB_STATUS_CANCELLED, "error": error, "updated_us": now, "ended_us": now,
                      "queue_position": 0}
            updated = replace(record, **values)
            self._write(conn, updated, values)
        return updated

    def delete(self, job_id: str, owner_id: str | None) -> bool:
        """Removes an ended job's row (only the owner's, when `owner_id` is given); False when none matched.
        A live job is never removed here: its runner would report into nothing and store orphan outputs."""
        query = "DELETE FROM jobs WHERE job_id = :id AND status IN (:completed, :failed, :cancelled)"
        if owner_id:
            query += " AND owner_id = :owner"
        with writing(self.engine) as conn:
            return conn.execute(text(query), {"id": job_id, "owner": owner_id, "completed": ENDED[0],
                                              "failed": ENDED[1], "cancelled": ENDED[2]}).rowcount > 0

    def _write(self, conn: Connection, record: JobRecord, values: dict) -> None:
        assignments = ", ".join(f"{name} = :{name}" for name in values)
        conn.execute(text(f"UPDATE jobs SET {assignments} WHERE job_id = :job_id"),
                     {**values, "job_id": record.job_id})

    def sweep(self, now: int, error: str) -> int:
        """Marks failed (with `error`) every live job whose runner's lease ran out; how many."""
        with writing(self.engine) as conn:
            return conn.execute(text(
                "UPDATE jobs SET status = :failed, error = :error, updated_us = :now, ended_us = :now,"
                " queue_position = 0 WHERE status IN (:queued, :running) AND lease_us < :now"),
                {"failed": Status.JOB_STATUS_FAILED, "error": error, "now": now,
                 "queued": LIVE[0], "running": LIVE[1]}).rowcount
