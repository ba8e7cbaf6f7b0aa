"""Fixtures every test folder shares. One PostgreSQL server serves the whole run (a fresh database
per test that asks for `postgres_url`).

Tests never touch the real user data folder (univence.home): before any test is collected,
UNIVENCE_HOME points at a temporary folder for the whole run, and XDG_DATA_HOME too, so a test that
unsets UNIVENCE_HOME (or a subprocess started without it) still lands in a temporary folder. Fixtures
that need their own state pass explicit paths (the test's tmp_path)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from tests.support.postgres import postgres_server, postgres_url

__all__ = ["postgres_server", "postgres_url"]

_RUN_FOLDER: Path | None = None


def pytest_configure(config) -> None:
    global _RUN_FOLDER
    _RUN_FOLDER = Path(tempfile.mkdtemp(prefix="univence-tests-"))
    os.environ["UNIVENCE_HOME"] = str(_RUN_FOLDER / "home")
    os.environ["XDG_DATA_HOME"] = str(_RUN_FOLDER / "xdg-data")


def pytest_unconfigure(config) -> None:
    if _RUN_FOLDER is not None:
        shutil.rmtree(_RUN_FOLDER, ignore_errors=True)
