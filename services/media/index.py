"""The metadata index: one SQL row per stored file (SQLite by default, PostgreSQL for scale-out).

Methods block; the servicer calls them through asyncio.to_thread.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import Engine, text

from services.common.database import Migration, make_engine, migrate, reading, sql, writing
from univence.media.v1 import media_pb2

SERVICE = "media"

# Creation time is integer microseconds since the epoch: exact ordering, same type on every database.
MIGRATIONS = [
    Migration(1, "media table", sql(
        "CREATE TABLE media ("
        " media_id VARCHAR(64) PRIMARY KEY,"
        " owner_id VARCHAR(255) NOT NULL,"
        " kind SMALLINT NOT NULL,"
        " mime_type VARCHAR(64) NOT NULL,"
        " size_bytes BIGINT NOT NULL,"
        " sha256 CHAR(64) NOT NULL,"
        " width INTEGER NOT NULL DEFAULT 0,"
        " height INTEGER NOT NULL DEFAULT 0,"
        " created_us BIGINT NOT NULL)",
        # Serve both listings (all kinds, one kind) from an index in either order.
        "CREATE INDEX media_owner_created ON media (owner_id, created_us, media_id)",
        "CREATE INDEX media_owner_kind_created ON media (owner_id, kind, created_us, media_id)",
    )),
]

_COLUMNS = "media_id, owner_id, kind, mime_type, size_bytes, sha256, width, height, created_us"


@dataclass(frozen=True)
class MediaRecord:
    media_id: str
    owner_id: str
    kind: int
    mime_type: str
    size_bytes: int
    sha256: str
    width: int
    height: int
    created_us: int

    def to_proto(self) -> media_pb2.Media:
        return media_pb2.Media(
            media_id=self.media_id, owner_id=self.owner_id, kind=self.kind, mime_type=self.mime_type,
            size_bytes=self.size_bytes, sha256=self.sha256, create_time=timestamp(self.created_us),
            width=self.width, height=self.height,
        )

    def variant(self, mime_type: str, size_bytes: int, sha256: str) -> MediaRecord:
        """The same file's metadata as a transcoded variant describes it."""
        return replace(self, mime_type=mime_type, size_bytes=size_bytes, sha256=sha256)


def timestamp(us: int) -> Timestamp:
    """A Timestamp from integer microseconds since the epoch (how the index keeps times)."""
    return Timestamp(seconds=us // 1_000_000, nanos=us % 1_000_000 * 1000)


class MediaIndex:
    def __init__(self, engine: Engine):
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> MediaIndex:
        """Connects and brings the schema up to date (safe from several replicas at once)."""
        engine = make_engine(url)
        migrate(engine, SERVICE, MIGRATIONS)
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    def insert(self, record: MediaRecord) -> None:
        with writing(self.engine) as conn:
            conn.execute(text(f"INSERT INTO media ({_COLUMNS}) VALUES (:media_id, :owner_id, :kind,"
                              " :mime_type, :size_bytes, :sha256, :width, :height, :created_us)"),
                         asdict(record))

    def get(self, media_id: str) -> MediaRecord | None:
        with reading(self.engine) as conn:
            row = conn.execute(text(f"SELECT {_COLUMNS} FROM media WHERE media_id = :id"),
                               {"id": media_id}).first()
        return None if row is None else MediaRecord(*row)

    def delete(self, media_id: str, owner_id: str | None = None) -> bool:
        """Removes the row (only the owner's, when `owner_id` is given); False when none matched."""
        query = "DELETE FROM media WHERE media_id = :id"
        if owner_id is not None:
            query += " AND owner_id = :owner"
        with writing(self.engine) as conn:
            return conn.execute(text(query), {"id": media_id, "owner": owner_id}).rowcount > 0

    def list(self, owner_id: str, kind: int, *, newest_first: bool, limit: int,
             offset: int) -> tuple[list[MediaRecord], int]:
        """One page of an owner's files (kind 0 = every kind) and how many match in all.

        The id breaks ties between files created in the same microsecond, so pages never overlap.
        """
        where = "owner_id = :owner" + (" AND kind = :kind" if kind else "")
        direction = "DESC" if newest_first else "ASC"
        params = {"owner": owner_id, "kind": kind, "limit": limit, "offset": offset}
        with reading(self.engine) as conn:  # one transaction: the page and the count agree
            total = conn.execute(text(f"SELECT COUNT(*) FROM media WHERE {where}"), params).scalar_one()
            rows = conn.execute(text(
                f"SELECT {_COLUMNS} FROM media WHERE {where}"
                f" ORDER BY created_us {direction}, media_id {direction} LIMIT :limit OFFSET :offset"
            ), params).all()
        return [MediaRecord(*row) for row in rows], int(total)
