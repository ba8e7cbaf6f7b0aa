"""Accounts for people over gRPC, on SQLite and PostgreSQL: sign-up, passwords (argon2id), email
verification through a real SMTP server, login throttling, sessions, disabled users, own API keys and the
price table."""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
import urllib.parse

import pytest
from sqlalchemy import inspect, text

from services.accounts.migrations import MIGRATIONS, SERVICE
from services.common.database import make_engine, migrate
from tests.support.grpc_errors import expect_error
from tests.support.smtp import smtp_server
from univence.accounts.v1 import accounts_pb2 as pb

PASSWORD = "correct horse battery"
# Cheap argon2id costs for the tests that are not about the cost (the timing test uses the defaults).
FAST = {"password_hash_memory_kib": 1024, "password_hash_time_cost": 1, "password_hash_parallelism": 1}
SIGNING = {"jwt_keys": [{"kid": "test-1", "algorithm": "HS256", "secret": "h" * 40}]}


async def sign_up(accounts, email: str, password: str = PASSWORD) -> pb.SignUpResponse:
    return await accounts.stub.SignUp(pb.SignUpRequest(email=email, password=password, client_ip="10.0.0.1"))


async def log_in(accounts, email: str, password: str = PASSWORD, ip: str = "10.0.0.1",
                 previous: str = "") -> pb.CreateSessionResponse:
    return await accounts.stub.CreateSession(pb.CreateSessionRequest(
        email=email, password=password, client_ip=ip, user_agent="pytest", previous_session_token=previous))


async def authenticate(accounts, credential: str) -> pb.AuthenticateResponse:
    return await accounts.stub.Authenticate(pb.AuthenticateRequest(credential=credential))


def dump(engine) -> str:
    """Every row of every table, as text: to check that no secret is stored."""
    with engine.begin() as conn:
        return "\n".join(repr(tuple(row)) for table in inspect(conn).get_table_names()
                         for row in conn.exec_driver_sql(f"SELECT * FROM {table}"))


# -- sign-up, login, sessions --------------------------------------------------------------------------


async def test_sign_up_log_in_and_the_session_authenticates(start_accounts, engine):
    async with start_accounts(**FAST) as accounts:
        signed = await sign_up(accounts, "  Ada@Example.com ")
        assert not signed.verification_required
        assert (signed.user.email, signed.user.premium, signed.user.email_verified) == ("Ada@Example.com", False,
                                                                                        True)
        login = await log_in(accounts, "ada@example.com")
        assert login.session_token.startswith("uvs_") and login.session.session_id.startswith("ses_")
        assert login.user.user_id == signed.user.user_id
        assert login.session.expire_time.seconds - time.time() == pytest.approx(7 * 86400, abs=60)
        auth = await authenticate(accounts, login.session_token)
        assert (auth.user.user_id, auth.kind, auth.key_id) == (signed.user.user_id, pb.CREDENTIAL_KIND_SESSION, "")
        stored = dump(engine)
        assert PASSWORD not in stored and login.session_token not in stored
        assert login.session_token[4:20] not in stored
        with engine.begin() as conn:
            password_hash = conn.execute(text("SELECT password_hash FROM users")).scalar()
        assert password_hash.startswith("$argon2id$v=19$m=1024,t=1,p=1$")


async def test_sign_up_checks_email_and_password_and_refuses_a_taken_email(start_accounts):
    async with start_accounts(**FAST) as accounts:
        error = await expect_error(sign_up(accounts, "not-an-email"), "INVALID_REQUEST")
        assert error.param == "email"
        error = await expect_error(sign_up(accounts, "short@example.com", "short"), "INVALID_REQUEST")
        assert error.param == "password" and "10 characters" in error.message
        await expect_error(sign_up(accounts, "long@example.com", "x" * 2000), "INVALID_REQUEST")
        await sign_up(accounts, "taken@example.com")
        error = await expect_error(sign_up(accounts, "TAKEN@example.com"), "INVALID_REQUEST")
        assert error.param == "email"


async def test_sign_up_can_be_closed(start_accounts):
    async with start_accounts(signup_enabled=False, **FAST) as accounts:
        error = await expect_error(sign_up(accounts, "a@example.com"), "PERMISSION_DENIED")
        assert "closed" in error.message


async def test_unknown_email_and_wrong_password_get_the_same_answer_in_the_same_time(start_accounts):
    """With the default argon2id costs: an unknown email still pays for one verification."""
    async with start_accounts(login_max_failures=1000, login_max_failures_per_ip=1000) as accounts:
        await sign_up(accounts, "known@example.com")
        operator_made = await accounts.new_user(email="nopassword@example.com")  # has no password at all
        assert operator_made

        async def attempt(email: str, password: str) -> tuple[float, str, str]:
            started = time.perf_counter()
            error = await expect_error(log_in(accounts, email, password), "AUTHENTICATION_FAILED")
            return time.perf_counter() - started, error.message, error.reason

        wrong, unknown, no_password = [], [], []
        for i in range(5):
            wrong.append(await attempt("known@example.com", f"wrong password {i}"))
            unknown.append(await attempt(f"nobody{i}@example.com", f"wrong password {i}"))
            no_password.append(await attempt("nopassword@example.com", f"wrong password {i}"))
        answers = {(message, reason) for _, message, reason in wrong + unknown + no_password}
        assert answers == {("invalid email or password", "AUTHENTICATION_FAILED")}
        medians = [statistics.median(t for t, _, _ in runs) for runs in (wrong, unknown, no_password)]
        assert max(medians) / min(medians) < 2, medians  # a path that skipped argon2 would be ~50x faster
        assert min(medians) > 0.02, "the argon2id verification should cost real time"


async def test_a_new_login_ends_the_session_the_browser_had(start_accounts):
    async with start_accounts(**FAST) as accounts:
        await sign_up(accounts, "fix@example.com")
        first = await log_in(accounts, "fix@example.com")
        second = await log_in(accounts, "fix@example.com", previous=first.session_token)
        assert second.session_token != first.session_token
        assert (await authenticate(accounts, second.session_token)).kind == pb.CREDENTIAL_KIND_SESSION
        error = await expect_error(authenticate(accounts, first.session_token), "AUTHENTICATION_FAILED")
        assert "ended" in error.message


async def test_logout_and_expiry_end_a_session(start_accounts):
    async with start_accounts(session_ttl_seconds=1, **FAST) as accounts:
        await sign_up(accounts, "out@example.com")
        session = await log_in(accounts, "out@example.com")
        await accounts.stub.RevokeSession(pb.RevokeSessionRequest(session_token=session.session_token))
        await accounts.stub.RevokeSession(pb.RevokeSessionRequest(session_token=session.session_token))  # again: fine
        error = await expect_error(authenticate(accounts, session.session_token), "AUTHENTICATION_FAILED")
        assert "logged out" in error.message
        short = await log_in(accounts, "out@example.com")
        assert (await authenticate(accounts, short.session_token)).user.email == "out@example.com"
        await asyncio.sleep(1.1)
        error = await expect_error(authenticate(accounts, short.session_token), "AUTHENTICATION_FAILED")
        assert "expired" in error.message
        await expect_error(authenticate(accounts, "uvs_" + "x" * 43), "AUTHENTICATION_FAILED")


async def test_changing_the_password_ends_every_session_and_refresh_token(start_accounts):
    async with start_accounts(**SIGNING, **FAST) as accounts:
        await sign_up(accounts, "change@example.com")
        laptop = await log_in(accounts, "change@example.com")
        phone = await log_in(accounts, "change@example.com")
        tokens = (await accounts.stub.IssueToken(pb.IssueTokenRequest(session_token=phone.session_token))).tokens
        request = pb.ChangePasswordRequest(session_token=laptop.session_token, current_password="wrong password!",
                                           new_password="a brand new password")
        error = await expect_error(accounts.stub.ChangePassword(request), "INVALID_REQUEST")
        assert error.param == "current_password"
        request.current_password = PASSWORD
        request.new_password = "short"
        assert (await expect_error(accounts.stub.ChangePassword(request), "INVALID_REQUEST")).param == "new_password"
        request.new_password = "a brand new password"
        changed = await accounts.stub.ChangePassword(request)
        for old in (laptop.session_token, phone.session_token):
            await expect_error(authenticate(accounts, old), "AUTHENTICATION_FAILED")
        await expect_error(accounts.stub.RefreshToken(pb.RefreshTokenRequest(refresh_token=tokens.refresh_token)),
                           "AUTHENTICATION_FAILED")
        assert (await authenticate(accounts, changed.session_token)).user.email == "change@example.com"
        await expect_error(log_in(accounts, "change@example.com"), "AUTHENTICATION_FAILED")
        await log_in(accounts, "change@example.com", "a brand new password")


# -- throttling ----------------------------------------------------------------------------------------


async def test_failed_logins_are_throttled_per_account_then_per_address(start_accounts):
    async with start_accounts(login_max_failures=3, login_max_failures_per_ip=5, login_lockout_seconds=30,
                              **FAST) as accounts:
        await sign_up(accounts, "victim@example.com")
        for ip in ("1.1.1.1", "2.2.2.2", "3.3.3.3"):
            await expect_error(log_in(accounts, "victim@example.com", "wrong password", ip), "AUTHENTICATION_FAILED")
        # Locked: even the right password is not checked, from any address.
        error = await expect_error(log_in(accounts, "victim@example.com", PASSWORD, "4.4.4.4"), "RATE_LIMITED")
        assert 25 <= int(error.metadata["retry_after_seconds"]) <= 30
        # An unknown email is throttled the same way (nothing tells the two apart).
        for _ in range(3):
            await expect_error(log_in(accounts, "ghost@example.com", "wrong password", "5.5.5.5"),
                               "AUTHENTICATION_FAILED")
        await expect_error(log_in(accounts, "ghost@example.com", "wrong password", "6.6.6.6"), "RATE_LIMITED")
        # One address trying many accounts: locked after 5 failures whatever the email.
        for i in range(2):
            await expect_error(log_in(accounts, f"spray{i}@example.com", "wrong password", "5.5.5.5"),
                               "AUTHENTICATION_FAILED")
        await sign_up(accounts, "other@example.com")
        await expect_error(log_in(accounts, "other@example.com", PASSWORD, "5.5.5.5"), "RATE_LIMITED")
        await log_in(accounts, "other@example.com", PASSWORD, "7.7.7.7")


async def test_sign_ups_are_throttled_per_address(start_accounts):
    async with start_accounts(signup_max_per_ip=2, login_lockout_seconds=60, **FAST) as accounts:
        for i in range(2):
            await sign_up(accounts, f"bulk{i}@example.com")
        error = await expect_error(sign_up(accounts, "bulk2@example.com"), "RATE_LIMITED")
        assert "sign-ups from this address" in error.message and int(error.metadata["retry_after_seconds"]) > 50
        await accounts.stub.SignUp(pb.SignUpRequest(email="bulk2@example.com", password=PASSWORD,
                                                    client_ip="10.9.9.9"))


async def test_the_lock_ends_and_a_success_forgets_the_failures(start_accounts):
    async with start_accounts(login_max_failures=2, login_lockout_seconds=1, **FAST) as accounts:
        await sign_up(accounts, "patient@example.com")
        for _ in range(2):
            await expect_error(log_in(accounts, "patient@example.com", "wrong password"), "AUTHENTICATION_FAILED")
        await expect_error(log_in(accounts, "patient@example.com"), "RATE_LIMITED")
        await asyncio.sleep(1.1)
        await log_in(accounts, "patient@example.com")
        await expect_error(log_in(accounts, "patient@example.com", "wrong password"), "AUTHENTICATION_FAILED")
        await log_in(accounts, "patient@example.com")  # one failure after a success: not locked


# -- disabled users ------------------------------------------------------------------------------------


async def test_a_disabled_user_s_keys_sessions_and_tokens_stop_working(start_accounts):
    async with start_accounts(**SIGNING, **FAST) as accounts:
        user = (await sign_up(accounts, "gone@example.com")).user.user_id
        session = await log_in(accounts, "gone@example.com")
        key = (await accounts.stub.CreateOwnApiKey(pb.CreateOwnApiKeyRequest(
            session_token=session.session_token, name="k"))).secret
        tokens = (await accounts.stub.IssueToken(pb.IssueTokenRequest(session_token=session.session_token))).tokens
        disabled = (await accounts.stub.UpdateUser(pb.UpdateUserRequest(user=user, disabled=True))).user
        assert disabled.disabled and not disabled.premium
        for credential in (key, session.session_token, tokens.access_token):
            error = await expect_error(authenticate(accounts, credential), "AUTHENTICATION_FAILED")
            assert "disabled" in error.message
        await expect_error(accounts.stub.RefreshToken(pb.RefreshTokenRequest(refresh_token=tokens.refresh_token)),
                           "AUTHENTICATION_FAILED")
        error = await expect_error(log_in(accounts, "gone@example.com"), "AUTHENTICATION_FAILED")
        assert "disabled" in error.message
        # a wrong password still gets the answer anyone gets
        error = await expect_error(log_in(accounts, "gone@example.com", "wrong password"), "AUTHENTICATION_FAILED")
        assert error.message == "invalid email or password"
        enabled = (await accounts.stub.UpdateUser(pb.UpdateUserRequest(user=user, disabled=False))).user
        assert not enabled.disabled
        assert (await authenticate(accounts, key)).user.user_id == user


# -- own API keys and the price table ------------------------------------------------------------------


async def test_own_api_keys_need_a_session_and_stay_the_user_s(start_accounts):
    async with start_accounts(**FAST) as accounts:
        await sign_up(accounts, "mine@example.com")
        await sign_up(accounts, "theirs@example.com")
        mine = (await log_in(accounts, "mine@example.com")).session_token
        theirs = (await log_in(accounts, "theirs@example.com")).session_token
        created = await accounts.stub.CreateOwnApiKey(pb.CreateOwnApiKeyRequest(session_token=mine, name="laptop"))
        assert created.secret.startswith("sk-") and created.api_key.name == "laptop"
        listed = (await accounts.stub.ListOwnApiKeys(pb.ListOwnApiKeysRequest(session_token=mine))).api_keys
        assert [k.key_id for k in listed] == [created.api_key.key_id]
        assert not (await accounts.stub.ListOwnApiKeys(pb.ListOwnApiKeysRequest(session_token=theirs))).api_keys
        await expect_error(accounts.stub.RevokeOwnApiKey(pb.RevokeOwnApiKeyRequest(
            session_token=theirs, key_id=created.api_key.key_id)), "NOT_FOUND")
        assert (await authenticate(accounts, created.secret)).kind == pb.CREDENTIAL_KIND_API_KEY
        revoked = await accounts.stub.RevokeOwnApiKey(pb.RevokeOwnApiKeyRequest(
            session_token=mine, key_id=created.api_key.key_id))
        assert revoked.api_key.HasField("revoke_time")
        await expect_error(authenticate(accounts, created.secret), "AUTHENTICATION_FAILED")
        for call in (accounts.stub.ListOwnApiKeys(pb.ListOwnApiKeysRequest(session_token=created.secret)),
                     accounts.stub.CreateOwnApiKey(pb.CreateOwnApiKeyRequest(session_token="uvs_nope"))):
            await expect_error(call, "AUTHENTICATION_FAILED")


async def test_the_price_table_is_the_configured_one(start_accounts):
    async with start_accounts(pricing={"image_edit_mc": 777, "bulk_discount_percent": {500: 5, 5000: 15}}) as accounts:
        table = await accounts.stub.GetPriceTable(pb.GetPriceTableRequest())
        by_key = {(p.operation, p.model, p.method): p for p in table.prices}
        edit = by_key[(pb.OPERATION_IMAGE_EDIT, "", "")]
        assert (edit.amount_mc, edit.unit) == (777, pb.PRICE_UNIT_REQUEST)
        turbo = by_key[(pb.OPERATION_IMAGE_GENERATION, "z-image-turbo", "")]
        assert (turbo.amount_mc, turbo.minimum_mc, turbo.unit) == (1000, 250, pb.PRICE_UNIT_MEGAPIXEL)
        assert by_key[(pb.OPERATION_IMAGE_UPSCALE, "", "realesrgan_4x")].amount_mc == 500
        assert by_key[(pb.OPERATION_VIDEO_BACKGROUND_REMOVAL, "", "")].unit == pb.PRICE_UNIT_FRAME
        assert by_key[(pb.OPERATION_CHAT_COMPLETION, "", "")].premium_only
        assert [(d.min_credits, d.percent) for d in table.bulk_discounts] == [(500, 5), (5000, 15)]
        assert {p.operation for p in table.prices} == set(pb.Operation.values()) - {pb.OPERATION_UNSPECIFIED}


# -- email verification --------------------------------------------------------------------------------


async def test_email_verification_through_a_real_smtp_server(start_accounts, engine):
    with smtp_server() as inbox:
        async with start_accounts(email_verification=True, smtp_host=inbox.host, smtp_port=inbox.port,
                                  smtp_from="Univence <accounts@univence.test>",
                                  public_base_url="https://api.example.com", **FAST) as accounts:
            signed = await sign_up(accounts, "new@example.com")
            assert signed.verification_required and not signed.HasField("user")
            [mail] = await inbox.wait_for("new@example.com")
            assert mail["From"] == "Univence <accounts@univence.test>"
            link = inbox.link(mail)
            assert link.startswith("https://api.example.com/verify-email?token=")
            token = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)["token"][0]
            assert token not in dump(engine)

            error = await expect_error(log_in(accounts, "new@example.com"), "AUTHENTICATION_FAILED")
            assert "confirm your email" in error.message
            await inbox.wait_for("new@example.com", count=2)  # logging in sent a fresh link
            error = await expect_error(log_in(accounts, "new@example.com", "wrong password"), "AUTHENTICATION_FAILED")
            assert error.message == "invalid email or password"

            verified = await accounts.stub.VerifyEmail(pb.VerifyEmailRequest(token=token))
            assert verified.user.email_verified and verified.user.email == "new@example.com"
            await log_in(accounts, "new@example.com")
            error = await expect_error(accounts.stub.VerifyEmail(pb.VerifyEmailRequest(token=token)),
                                       "INVALID_REQUEST")
            assert error.param == "token"

            # Signing up again with a registered email: the same answer, and a notice to the owner.
            again = await sign_up(accounts, "new@example.com")
            assert again == signed
            mails = await inbox.wait_for("new@example.com", count=3)
            assert "already has an account" in mails[-1].get_content()


async def test_migration_2_keeps_operator_made_users_verified(database_url):
    engine = make_engine(database_url)
    try:
        migrate(engine, SERVICE, MIGRATIONS[:1])
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO users (id, email, premium, balance_mc, held_mc, created_us)"
                              " VALUES ('usr_old', 'old@example.com', FALSE, 0, 0, 5)"))
        assert migrate(engine, SERVICE, MIGRATIONS[:2]) == 2
        with engine.begin() as conn:
            row = conn.execute(text("SELECT email_verified_us, disabled_us, password_hash FROM users")).one()
        assert tuple(row) == (5, None, None)
    finally:
        engine.dispose()


async def test_the_cli_disables_and_enables_a_user(start_accounts):
    async with start_accounts(admin_token="admin-secret", **FAST) as accounts:
        user = (await sign_up(accounts, "cli@example.com")).user.user_id
        session = (await log_in(accounts, "cli@example.com")).session_token

        async def cli(*args: str) -> dict:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "univence.cli", "accounts", "--address", f"127.0.0.1:{accounts.runtime.port}",
                "--admin-token", "admin-secret", "--json", *args, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE)
            out, err = await process.communicate()
            assert process.returncode == 0, err.decode()
            return json.loads(out)

        assert (await cli("disable", "cli@example.com"))["disabled"] is True
        await expect_error(authenticate(accounts, session), "AUTHENTICATION_FAILED")
        enabled = await cli("enable", user)
        assert enabled["disabled"] is False and enabled["email_verified"] is True
        assert (await authenticate(accounts, session)).user.user_id == user
