"""A throwaway PostgreSQL server for tests: `initdb` into a temp folder, one database per test.

Reuse from a conftest with `from tests.support.postgres import postgres_server, postgres_url`
(`postgres_server` is session-scoped; `postgres_url` gives each test its own fresh database). Tests
that use them are skipped when the server binaries are missing. initdb refuses to run as root, so
as root (CI, containers) the server runs as the `postgres` system user, or `nobody`.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.ports import free_port

BIN_DIRS = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin")
SUPERUSER = "postgres"
# Durability is not under test: these make initdb, CREATE DATABASE and commits fast.
FAST_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")


def find_bin_dir() -> Path | None:
    """Where initdb and pg_ctl are: $POSTGRES_BIN, the Debian versioned folders, then PATH."""
    candidates = [os.environ.get("POSTGRES_BIN", ""), *BIN_DIRS]
    found = shutil.which("initdb")
    if found:
        candidates.append(str(Path(found).resolve().parent))
    for candidate in filter(None, candidates):
        if (Path(candidate) / "initdb").is_file() and (Path(candidate) / "pg_ctl").is_file():
            return Path(candidate)
    return None


def _server_account() -> pwd.struct_passwd | None:
    """The unprivileged account to run the server as when we are root; None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root, and there is neither a postgres nor a nobody user to run PostgreSQL")


class PostgresServer:
    """One server in a temp folder. `start()`, `create_database()`, `stop()` (removes everything)."""

    def __init__(self, bin_dir: Path):
        self.bin_dir = bin_dir
        self.account = _server_account()
        self.root = Path(tempfile.mkdtemp(prefix="univence-pg-"))
        self.data_dir = self.root / "data"
        self.port = 0
        self._names = itertools.count(1)

    def _run(self, *args: str) -> None:
        """Runs a server binary as the server's account; a failure shows its output."""
        kwargs = {"user": self.account.pw_uid, "group": self.account.pw_gid, "extra_groups": []} \
            if self.account else {}
        result = subprocess.run([str(self.bin_dir / args[0]), *args[1:]], capture_output=True, text=True,
                                cwd=self.root, env={**os.environ, "LC_ALL": "C"}, check=False, **kwargs)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")

    def start(self) -> None:
        if self.account:
            os.chown(self.root, self.account.pw_uid, self.account.pw_gid)
        self._run("initdb", "-D", str(self.data_dir), "-A", "trust", "-U", SUPERUSER, "-E", "UTF8",
                  "--locale=C", "--no-sync")
        options = " ".join(f"-c {s}" for s in FAST_SETTINGS)
        for attempt in range(3):  # a free port can be taken between choosing and listening
            self.port = free_port()
            try:
                self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.root / "server.log"), "-w",
                          "-t", "60", "-o",
                          f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 {options}", "start")
                return
            except RuntimeError as error:
                if attempt == 2:
                    log = self.root / "server.log"
                    raise RuntimeError(f"PostgreSQL did not start:\n{log.read_text() if log.exists() else ''}"
                                       ) from error

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            with contextlib.suppress(RuntimeError):
                self._run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _admin(self, statement: str) -> None:
        import psycopg  # imported here so modules that never use PostgreSQL do not need it

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(statement)

    def create_database(self) -> str:
        """A new empty database; returns its name."""
        name = f"test_{os.getpid()}_{next(self._names)}"
        self._admin(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A running server for the whole test session, skipped when PostgreSQL is not installed."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    server = PostgresServer(bin_dir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a fresh database of its own for one test, dropped after it."""
    name = postgres_server.create_database()
    yield postgres_server.url(name)
    postgres_server.drop_database(name)
