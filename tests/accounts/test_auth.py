"""API keys, JWTs and the admin token, over gRPC on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import inspect, text

from tests.support.grpc_errors import expect_error
from univence.accounts.v1 import accounts_pb2 as pb

HS_SECRET = "a-shared-secret-of-at-least-32-bytes!!"


def _pem_pair() -> tuple[rsa.RSAPrivateKey, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return key, public


@pytest.fixture(scope="module")
def rsa_key() -> tuple[rsa.RSAPrivateKey, str]:
    return _pem_pair()


def claims(sub: str, lifetime: float = 300, **extra) -> dict:
    return {"sub": sub, "exp": int(time.time() + lifetime), **extra}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def handmade_token(header: dict, payload: dict, sign=lambda signing_input: b"") -> str:
    """A JWT built by hand, for tokens PyJWT refuses to make (alg none, HMAC keyed with a PEM)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    return f"{signing_input}.{_b64(sign(signing_input.encode()))}"


async def authenticate(accounts, credential: str) -> pb.AuthenticateResponse:
    return await accounts.stub.Authenticate(pb.AuthenticateRequest(credential=credential))


# -- API keys ------------------------------------------------------------------------------------------


async def test_api_key_create_authenticate_list_revoke(accounts, engine):
    user = await accounts.new_user(email="Keys@Example.com")
    created = await accounts.stub.CreateApiKey(pb.CreateApiKeyRequest(user="keys@example.com", name="laptop"))
    secret = created.secret
    assert secret.startswith("sk-") and len(secret) >= 40
    assert created.api_key.key_id.startswith("key_")
    assert created.api_key.prefix == secret[:8]
    assert created.api_key.user_id == user
    assert not created.api_key.HasField("last_used_time")

    auth = await authenticate(accounts, secret)
    assert (auth.user.user_id, auth.kind, auth.key_id) == (user, pb.CREDENTIAL_KIND_API_KEY,
                                                           created.api_key.key_id)
    with engine.begin() as conn:
        first_use = conn.execute(text("SELECT last_used_us FROM api_keys")).scalar()
    assert first_use
    await authenticate(accounts, secret)  # a second use within the minute does not write again
    with engine.begin() as conn:
        assert conn.execute(text("SELECT last_used_us FROM api_keys")).scalar() == first_use

    listed = (await accounts.stub.ListApiKeys(pb.ListApiKeysRequest(user=user))).api_keys
    assert [k.key_id for k in listed] == [created.api_key.key_id]
    assert listed[0].HasField("last_used_time") and listed[0].name == "laptop"

    revoked = await accounts.stub.RevokeApiKey(pb.RevokeApiKeyRequest(key_id=created.api_key.key_id))
    assert revoked.api_key.HasField("revoke_time")
    error = await expect_error(authenticate(accounts, secret), "AUTHENTICATION_FAILED")
    assert "revoked" in error.message
    again = await accounts.stub.RevokeApiKey(pb.RevokeApiKeyRequest(key_id=created.api_key.key_id))
    assert again.api_key.revoke_time == revoked.api_key.revoke_time
    await expect_error(accounts.stub.RevokeApiKey(pb.RevokeApiKeyRequest(key_id="key_nope")), "NOT_FOUND")


async def test_unknown_keys_and_empty_credentials_fail(accounts):
    await expect_error(authenticate(accounts, "sk-" + "x" * 43), "AUTHENTICATION_FAILED")
    await expect_error(authenticate(accounts, ""), "AUTHENTICATION_FAILED")
    await expect_error(authenticate(accounts, "not a token"), "AUTHENTICATION_FAILED")
    await expect_error(authenticate(accounts, "sk-\x00"), "AUTHENTICATION_FAILED")
    await expect_error(authenticate(accounts, "eyJ\x00.x.y"), "AUTHENTICATION_FAILED")


async def test_the_secret_is_stored_only_as_a_hash(accounts, engine, database_url):
    user = await accounts.new_user()
    secret = (await accounts.stub.CreateApiKey(pb.CreateApiKeyRequest(user=user))).secret
    body = secret.removeprefix("sk-")
    with engine.begin() as conn:
        dump = "\n".join(repr(tuple(row)) for table in inspect(conn).get_table_names()
                         for row in conn.exec_driver_sql(f"SELECT * FROM {table}"))
    assert body[:8] not in dump and secret not in dump
    assert hashlib.sha256(secret.encode()).hexdigest() in dump
    if database_url.startswith("sqlite:///"):
        path = database_url.removeprefix("sqlite:///")
        for suffix in ("", "-wal"):
            try:
                with open(path + suffix, "rb") as f:
                    assert body[:12].encode() not in f.read()
            except FileNotFoundError:
                pass


async def test_a_pepper_keys_the_hash(start_accounts, engine):
    async with start_accounts(api_key_pepper="pepper") as accounts:
        user = await accounts.new_user()
        secret = (await accounts.stub.CreateApiKey(pb.CreateApiKeyRequest(user=user))).secret
        assert (await authenticate(accounts, secret)).user.user_id == user
    with engine.begin() as conn:
        stored = conn.exec_driver_sql("SELECT secret_hash FROM api_keys").scalar()
    assert stored == hmac.new(b"pepper", secret.encode(), hashlib.sha256).hexdigest()


# -- JWT -----------------------------------------------------------------------------------------------


async def test_hs256_jwt(start_accounts):
    async with start_accounts(jwt_hs256_secret=HS_SECRET) as accounts:
        user = await accounts.new_user()
        auth = await authenticate(accounts, jwt.encode(claims(user), HS_SECRET, algorithm="HS256"))
        assert (auth.user.user_id, auth.kind, auth.key_id) == (user, pb.CREDENTIAL_KIND_JWT, "")
        await expect_error(authenticate(accounts, jwt.encode(claims(user), "another-secret-of-32-bytes-or-more",
                                                             algorithm="HS256")), "AUTHENTICATION_FAILED")


async def test_rs256_jwt_and_its_pitfalls(start_accounts, rsa_key, tmp_path):
    private, public_pem = rsa_key
    key_file = tmp_path / "jwt.pem"
    key_file.write_text(public_pem)
    async with start_accounts(jwt_rs256_public_key_file=str(key_file)) as accounts:
        user = await accounts.new_user()
        auth = await authenticate(accounts, jwt.encode(claims(user), private, algorithm="RS256"))
        assert (auth.user.user_id, auth.kind) == (user, pb.CREDENTIAL_KIND_JWT)

        expired = jwt.encode(claims(user, lifetime=-120), private, algorithm="RS256")
        assert "expired" in (await expect_error(authenticate(accounts, expired), "AUTHENTICATION_FAILED")).message

        no_exp = jwt.encode({"sub": user}, private, algorithm="RS256")
        await expect_error(authenticate(accounts, no_exp), "AUTHENTICATION_FAILED")
        no_sub = jwt.encode({"exp": int(time.time()) + 60}, private, algorithm="RS256")
        await expect_error(authenticate(accounts, no_sub), "AUTHENTICATION_FAILED")

        stranger = jwt.encode(claims("usr_does_not_exist"), private, algorithm="RS256")
        error = await expect_error(authenticate(accounts, stranger), "AUTHENTICATION_FAILED")
        assert "not a known user" in error.message

        other_key, _ = _pem_pair()
        forged = jwt.encode(claims(user), other_key, algorithm="RS256")
        await expect_error(authenticate(accounts, forged), "AUTHENTICATION_FAILED")

        unsigned = handmade_token({"alg": "none", "typ": "JWT"}, claims(user))
        error = await expect_error(authenticate(accounts, unsigned), "AUTHENTICATION_FAILED")
        assert "not accepted" in error.message

        # The classic confusion: HS256 keyed with the RSA public key text, which attackers can read.
        confused = handmade_token({"alg": "HS256", "typ": "JWT"}, claims(user),
                                  lambda data: hmac.new(public_pem.encode(), data, hashlib.sha256).digest())
        error = await expect_error(authenticate(accounts, confused), "AUTHENTICATION_FAILED")
        assert "not accepted" in error.message


async def test_both_algorithms_with_issuer_and_audience(start_accounts, rsa_key):
    private, public_pem = rsa_key
    async with start_accounts(jwt_hs256_secret=HS_SECRET, jwt_rs256_public_key=public_pem,
                              jwt_issuer="https://id.example.com", jwt_audience="univence") as accounts:
        user = await accounts.new_user()
        good = {"iss": "https://id.example.com", "aud": "univence"}
        for token in (jwt.encode(claims(user, **good), HS_SECRET, algorithm="HS256"),
                      jwt.encode(claims(user, **good), private, algorithm="RS256")):
            assert (await authenticate(accounts, token)).user.user_id == user
        for bad in ({"iss": "https://evil.example.com", "aud": "univence"}, {"iss": good["iss"], "aud": "other"},
                    {"aud": "univence"}):
            await expect_error(authenticate(accounts, jwt.encode(claims(user, **bad), private, algorithm="RS256")),
                               "AUTHENTICATION_FAILED")


async def test_jwt_without_a_configured_key_is_refused(accounts):
    user = await accounts.new_user()
    token = jwt.encode(claims(user), HS_SECRET, algorithm="HS256")
    error = await expect_error(authenticate(accounts, token), "AUTHENTICATION_FAILED")
    assert "not configured" in error.message


# -- the admin token -----------------------------------------------------------------------------------


async def test_admin_rpcs_need_the_admin_token(start_accounts):
    async with start_accounts(admin_token="admin-secret") as accounts:
        request = pb.CreateUserRequest(email="a@example.com")
        await expect_error(accounts.anonymous.CreateUser(request), "PERMISSION_DENIED")
        await expect_error(accounts.stub.CreateUser(request, metadata=(("x-univence-admin-token", "wrong"),)),
                           "PERMISSION_DENIED")
        user = (await accounts.anonymous.CreateUser(request, metadata=accounts.admin)).user.user_id
        anonymous = accounts.anonymous
        for call in (anonymous.GetUser(pb.GetUserRequest(user=user)),
                     anonymous.ListUsers(pb.ListUsersRequest()),
                     anonymous.UpdateUser(pb.UpdateUserRequest(user=user, premium=True)),
                     anonymous.CreateApiKey(pb.CreateApiKeyRequest(user=user)),
                     anonymous.ListApiKeys(pb.ListApiKeysRequest(user=user)),
                     anonymous.RevokeApiKey(pb.RevokeApiKeyRequest(key_id="key_x")),
                     anonymous.GrantCredits(pb.GrantCreditsRequest(user=user, amount_mc=1))):
            await expect_error(call, "PERMISSION_DENIED")
        assert not accounts.settings.admin_token_file.exists()  # a configured token: no file is made
        # what the edge calls needs no admin token
        assert (await anonymous.GetBalance(pb.GetBalanceRequest(user_id=user))).balance_mc == 0
        await anonymous.Quote(pb.QuoteRequest(items=[pb.ChargeItem(operation=pb.OPERATION_IMAGE_EDIT)]))
