"""The service around the ledger: migrations, readiness, configuration, the process entry point."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import text

from services.accounts.config import AccountsSettings
from services.accounts.migrations import MIGRATIONS, SERVICE
from services.accounts.server import definition
from services.common.database import make_engine, migrate
from tests.support.grpc_errors import expect_error
from tests.support.ports import free_port
from tests.support.runtime import running_service
from univence import admin
from univence.accounts.v1 import accounts_pb2 as pb
from univence.accounts.v1 import accounts_pb2_grpc
from univence.home import data_home

REPO = Path(__file__).resolve().parents[2]


def test_migrations_run_twice_without_harm(database_url):
    engine = make_engine(database_url)
    try:
        latest = MIGRATIONS[-1].version
        assert migrate(engine, SERVICE, MIGRATIONS) == latest
        assert migrate(engine, SERVICE, MIGRATIONS) == latest
        with engine.begin() as conn:
            versions = conn.execute(text("SELECT version FROM schema_migrations WHERE service = :s"),
                                    {"s": SERVICE}).scalars().all()
        assert sorted(versions) == [m.version for m in MIGRATIONS]
    finally:
        engine.dispose()


async def test_data_survives_a_restart(start_accounts):
    async with start_accounts() as accounts:
        user = await accounts.new_user(credits_mc=1234)
    async with start_accounts() as accounts:
        assert (await accounts.balance(user)).balance_mc == 1234


async def test_not_serving_until_the_database_is_ready(tmp_path):
    port = free_port()  # nothing listens on it
    settings = AccountsSettings(port=0, metrics_port=0,
                                database_url=f"postgresql://postgres@127.0.0.1:{port}/accounts")
    async with running_service(definition(settings), settings, wait_loaded=False) as runtime:
        for _ in range(100):
            if runtime.load_error:
                break
            await asyncio.sleep(0.1)
        assert runtime.load_error
        async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.port}") as channel:
            health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
            assert health.status == health_pb2.HealthCheckResponse.NOT_SERVING
            stub = accounts_pb2_grpc.AccountsServiceStub(channel)
            error = await expect_error(stub.GetBalance(pb.GetBalanceRequest(user_id="usr_x")), "MODEL_UNAVAILABLE")
            assert "accounts database" in error.message


async def test_a_bad_jwt_key_keeps_the_service_from_serving(tmp_path):
    settings = AccountsSettings(port=0, metrics_port=0, database_url=f"sqlite:///{tmp_path}/a.db",
                                jwt_rs256_public_key="not a pem")
    async with running_service(definition(settings), settings, wait_loaded=False) as runtime:
        for _ in range(50):
            if runtime.load_error:
                break
            await asyncio.sleep(0.1)
        assert "PEM" in (runtime.load_error or "")


def test_settings_from_the_config_file_and_the_environment(tmp_path, monkeypatch):
    config = tmp_path / "univence.toml"
    config.write_text(
        '[accounts]\nport = 6000\nadmin_token = "from-file"\nhold_ttl_seconds = 60\n\n'
        '[accounts.pricing]\nimage_edit_mc = 600\nupscale_minimum_mc = 150\n'
        '[accounts.pricing.bulk_discount_percent]\n5000 = 15\n')
    monkeypatch.setenv("UNIVENCE_CONFIG", str(config))
    monkeypatch.setenv("UNIVENCE_ACCOUNTS_ADMIN_TOKEN", "from-env")
    monkeypatch.setenv("UNIVENCE_ACCOUNTS_PRICING__VOICE_CLONE_MC", "1100")
    settings = AccountsSettings()
    assert (settings.port, settings.admin_token, settings.hold_ttl_seconds) == (6000, "from-env", 60)
    assert (settings.pricing.image_edit_mc, settings.pricing.upscale_minimum_mc,
            settings.pricing.voice_clone_mc) == (600, 150, 1100)
    assert settings.pricing.image_segmentation_mc == 250
    assert settings.pricing.bulk_discount_percent == {5000: 15}
    assert settings.metrics_port == 9151
    # Default paths are in the data folder, whatever the working directory (tests/conftest.py points
    # UNIVENCE_HOME at a temporary folder).
    assert settings.database_url == f"sqlite:///{data_home() / 'accounts.db'}"
    assert settings.admin_token_file == data_home() / "admin-token"


def test_python_dash_m_serves_closed_from_its_data_folder(tmp_path):
    """A fresh install, as `python -m services.accounts` in some directory: its database, JWT key and a
    generated admin token land in the data folder; admin RPCs need that token; it is never logged."""
    port = free_port()
    home = tmp_path / "home"
    env = {**os.environ, "UNIVENCE_ACCOUNTS_PORT": str(port), "UNIVENCE_ACCOUNTS_METRICS_PORT": "0",
           "UNIVENCE_HOME": str(home)}
    process = subprocess.Popen([sys.executable, "-m", "services.accounts"], env=env, cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            deadline = time.monotonic() + 30
            status = None
            while time.monotonic() < deadline and status != health_pb2.HealthCheckResponse.SERVING:
                try:
                    status = health.Check(health_pb2.HealthCheckRequest(), timeout=1).status
                except grpc.RpcError:
                    time.sleep(0.1)
            assert status == health_pb2.HealthCheckResponse.SERVING
            stub = accounts_pb2_grpc.AccountsServiceStub(channel)
            with pytest.raises(grpc.RpcError) as refused:
                stub.CreateUser(pb.CreateUserRequest(email="cli@example.com"))
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
            token = (home / "admin-token").read_text()
            assert (home / "admin-token").stat().st_mode & 0o777 == 0o600
            created = stub.CreateUser(pb.CreateUserRequest(email="cli@example.com"), metadata=admin.metadata(token))
            assert created.user.user_id
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
        assert process.returncode == 0, output
        assert f"admin token generated in {home / 'admin-token'}" in output and token not in output
        assert {"accounts.db", "jwt-signing.key", "admin-token"} <= {p.name for p in home.iterdir()}
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
