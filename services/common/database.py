"""SQL databases for services that keep state (accounts, media): engines and schema migrations.

SQLite is the embedded default; PostgreSQL is used by URL when more than one replica shares state.
Engines are synchronous SQLAlchemy; async servicers call them through asyncio.to_thread.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import weakref
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)
# SQLite engines' in-process writer locks (see writing()).
_WRITE_LOCKS: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()


def now_us() -> int:
    """Now, in integer microseconds since the epoch: how the services' tables keep times."""
    return time.time_ns() // 1000


def make_engine(url: str) -> Engine:
    """An engine for `url`. SQLite gets WAL, a busy timeout and BEGIN IMMEDIATE transactions, so
    concurrent writers queue on the database lock instead of failing when they upgrade a read lock."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 60})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection, _record) -> None:
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
            cursor = dbapi_connection.cursor()
            for pragma in ("journal_mode=WAL", "busy_timeout=60000", "foreign_keys=ON", "synchronous=NORMAL"):
                cursor.execute(f"PRAGMA {pragma}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            read_only = conn.get_execution_options().get(_READ_ONLY, False)
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        _WRITE_LOCKS[engine] = threading.Lock()
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


_READ_ONLY = "univence_read_only"


@contextlib.contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A transaction that only reads. On SQLite it begins deferred, so readers share the database
    (WAL) instead of queuing for the write lock; elsewhere it is an ordinary transaction."""
    with engine.connect() as conn:
        conn.execution_options(**{_READ_ONLY: True})
        with conn.begin():
            yield conn


@contextlib.contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A transaction that writes. On SQLite the writers of this process first queue on a lock, so each
    starts the moment the one before commits, instead of meeting SQLite's busy handler, which retries
    with sleeps of up to 100 ms (writers in other processes still queue on SQLite's own lock)."""
    lock = _WRITE_LOCKS.get(engine)
    with lock if lock is not None else contextlib.nullcontext(), engine.begin() as conn:
        yield conn


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


@dataclass(frozen=True)
class Migration:
    """One step of a service's schema. `apply` runs inside the migration's transaction."""

    version: int
    description: str
    apply: Callable[[Connection], None]


def sql(*statements: str) -> Callable[[Connection], None]:
    """A migration step made of plain SQL statements that SQLite and PostgreSQL both accept."""

    def apply(conn: Connection) -> None:
        for statement in statements:
            conn.execute(text(statement))

    return apply


def migrate(engine: Engine, service: str, migrations: list[Migration]) -> int:
    """Applies the migrations `service` has not applied yet, in version order; returns the version.

    Safe to run from several replicas at once: PostgreSQL takes an advisory lock per service,
    SQLite's BEGIN IMMEDIATE serializes the writers.
    """
    versions = [m.version for m in migrations]
    if versions != sorted(set(versions)):
        raise ValueError(f"{service} migrations must have increasing, unique versions: {versions}")
    with writing(engine) as conn:
        if is_postgres(engine):
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": zlib.crc32(service.encode())})
        conn.execute(text(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " service VARCHAR(64) NOT NULL, version INTEGER NOT NULL, description TEXT NOT NULL,"
            " applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (service, version))"
        ))
        applied = {row[0] for row in conn.execute(
            text("SELECT version FROM schema_migrations WHERE service = :s"), {"s": service})}
        for m in migrations:
            if m.version in applied:
                continue
            log.info("%s: applying migration %d (%s)", service, m.version, m.description)
            m.apply(conn)
            conn.execute(text("INSERT INTO schema_migrations (service, version, description)"
                              " VALUES (:s, :v, :d)"), {"s": service, "v": m.version, "d": m.description})
    return max(versions, default=0)
