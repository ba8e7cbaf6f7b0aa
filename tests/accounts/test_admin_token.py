"""Closed by default: a fresh accounts service (no admin_token configured) makes its own admin token in
the data folder and refuses admin RPCs without it; the `univence accounts` CLI on the same machine
finds it there and needs no flag; a remote operator passes it."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys

from tests.support.grpc_errors import expect_error
from univence import admin
from univence.accounts.v1 import accounts_pb2 as pb


async def test_a_fresh_service_refuses_admin_rpcs_without_its_generated_token(start_accounts, caplog):
    caplog.set_level(logging.DEBUG)
    async with start_accounts() as accounts:
        token_file = accounts.settings.admin_token_file
        token = token_file.read_text()
        assert len(token) >= 32 and token_file.stat().st_mode & 0o777 == 0o600
        request = pb.CreateUserRequest(email="first@example.com")
        error = await expect_error(accounts.anonymous.CreateUser(request), "PERMISSION_DENIED")
        assert "admin token" in error.message and "--admin-token" in error.message
        wrong = admin.metadata("x" * len(token))
        error = await expect_error(accounts.anonymous.CreateUser(request, metadata=wrong), "PERMISSION_DENIED")
        assert "not this service's" in error.message
        created = await accounts.anonymous.CreateUser(request, metadata=admin.metadata(token))
        assert created.user.email == "first@example.com"
    assert token not in caplog.text and str(token_file) in caplog.text
    async with start_accounts() as accounts:  # a restart keeps the token
        assert accounts.settings.admin_token_file.read_text() == token
        await accounts.anonymous.GetUser(pb.GetUserRequest(user="first@example.com"), metadata=admin.metadata(token))


async def univence_cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "univence.cli", "accounts", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    return process.returncode, out.decode(), err.decode()


async def test_the_cli_finds_the_service_and_its_token_without_flags(start_accounts, tmp_path):
    home = tmp_path / "home"
    async with start_accounts(admin_token_file=home / "admin-token") as accounts:
        # This machine's settings: the data folder, and the port the service was moved to.
        env = {**os.environ, "UNIVENCE_HOME": str(home), "UNIVENCE_ACCOUNTS_PORT": str(accounts.runtime.port)}
        code, out, err = await univence_cli(env, "--json", "create-user", "cli@example.com")
        assert code == 0, err
        assert json.loads(out)["email"] == "cli@example.com"
        # A remote operator (no token file here) is told what to pass.
        elsewhere = {**env, "UNIVENCE_HOME": str(tmp_path / "other")}
        code, _, err = await univence_cli(elsewhere, "get-user", "cli@example.com")
        assert code == 1 and "PERMISSION_DENIED" not in err and "pass --admin-token" in err
        token = (home / "admin-token").read_text()
        code, out, err = await univence_cli(elsewhere, "--address", f"127.0.0.1:{accounts.runtime.port}",
                                            "--admin-token", token, "--json", "get-user", "cli@example.com")
        assert code == 0 and json.loads(out)["email"] == "cli@example.com", err
