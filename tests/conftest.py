"""Fixtures every test folder shares. One PostgreSQL server serves the whole run (a fresh database
per test that asks for `postgres_url`)."""

from tests.support.postgres import postgres_server, postgres_url

__all__ = ["postgres_server", "postgres_url"]
