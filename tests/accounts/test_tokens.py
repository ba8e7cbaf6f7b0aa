"""JWTs the service issues (HS256 or RS256 with a kid, rotation), refresh tokens (rotated on use, reuse
revokes the family), and externally issued JWTs working beside them; over gRPC on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from services.accounts.config import AccountsSettings
from services.accounts.jwt_auth import JwtVerifier
from services.accounts.tokens import JwtSigner
from tests.accounts.test_people import FAST, PASSWORD, SIGNING, authenticate, dump, log_in, sign_up
from tests.support.grpc_errors import expect_error
from univence.accounts.v1 import accounts_pb2 as pb

OLD_SECRET = "an-old-hs256-secret-of-at-least-32-characters"
LEGACY_SECRET = "the-external-identity-provider-shared-secret!"


def pem_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


@pytest.fixture(scope="module")
def rsa_pems() -> tuple[str, str]:
    return pem_pair()


def password_grant(email: str, password: str = PASSWORD) -> pb.IssueTokenRequest:
    return pb.IssueTokenRequest(password=pb.PasswordGrant(email=email, password=password), client_ip="10.0.0.9")


async def test_rs256_tokens_with_a_kid_and_rotation_to_a_new_key(start_accounts, rsa_pems, tmp_path):
    private, public = rsa_pems
    key_file = tmp_path / "signing.pem"
    key_file.write_text(private)
    first = {"jwt_keys": [{"kid": "2025-a", "algorithm": "RS256", "private_key_file": str(key_file)}],
             "access_token_ttl_seconds": 600, **FAST}
    async with start_accounts(**first) as accounts:
        user = (await sign_up(accounts, "jwt@example.com")).user.user_id
        issued = (await accounts.stub.IssueToken(password_grant("jwt@example.com"))).tokens
        assert issued.expires_in_seconds == 600 and issued.refresh_token.startswith("uvr_")
        assert jwt.get_unverified_header(issued.access_token) == {"alg": "RS256", "kid": "2025-a", "typ": "JWT"}
        claims = jwt.decode(issued.access_token, public, algorithms=["RS256"])
        assert claims["sub"] == user and claims["exp"] - claims["iat"] == 600
        auth = await authenticate(accounts, issued.access_token)
        assert (auth.user.user_id, auth.kind) == (user, pb.CREDENTIAL_KIND_JWT)
        old_token = issued.access_token

    # Rotation: a new HS256 key signs; the RSA key stays, for verification only, until its tokens expire.
    rotated = {"jwt_keys": [{"kid": "2025-b", "algorithm": "HS256", "secret": OLD_SECRET},
                            {"kid": "2025-a", "algorithm": "RS256", "public_key": public}],
               "jwt_signing_kid": "2025-b", **FAST}
    async with start_accounts(**rotated) as accounts:
        assert (await authenticate(accounts, old_token)).user.user_id == user
        new = (await accounts.stub.IssueToken(password_grant("jwt@example.com"))).tokens.access_token
        assert jwt.get_unverified_header(new)["kid"] == "2025-b"
        assert (await authenticate(accounts, new)).user.user_id == user
        # A token naming a kid must be signed with that key's algorithm.
        forged = jwt.encode({"sub": user, "exp": int(time.time()) + 60}, OLD_SECRET, algorithm="HS256",
                            headers={"kid": "2025-a"})
        await expect_error(authenticate(accounts, forged), "AUTHENTICATION_FAILED")

    # The old key dropped: its tokens stop working.
    async with start_accounts(jwt_keys=rotated["jwt_keys"][:1], **FAST) as accounts:
        await expect_error(authenticate(accounts, old_token), "AUTHENTICATION_FAILED")


async def test_externally_issued_jwts_keep_working_beside_issued_ones(start_accounts):
    keys = [{"kid": "own", "algorithm": "HS256", "secret": OLD_SECRET}]
    async with start_accounts(jwt_keys=keys, jwt_hs256_secret=LEGACY_SECRET, **FAST) as accounts:
        user = (await sign_up(accounts, "ext@example.com")).user.user_id
        external = jwt.encode({"sub": user, "exp": int(time.time()) + 60}, LEGACY_SECRET, algorithm="HS256")
        external_with_kid = jwt.encode({"sub": user, "exp": int(time.time()) + 60}, LEGACY_SECRET,
                                       algorithm="HS256", headers={"kid": "idp-key-7"})
        for token in (external, external_with_kid):
            assert (await authenticate(accounts, token)).user.user_id == user
        issued = (await accounts.stub.IssueToken(password_grant("ext@example.com"))).tokens.access_token
        assert jwt.get_unverified_header(issued)["kid"] == "own"
        assert (await authenticate(accounts, issued)).user.user_id == user


async def test_a_session_grant_and_refresh_rotation_with_reuse_detection(start_accounts, engine):
    async with start_accounts(**SIGNING, **FAST) as accounts:
        await sign_up(accounts, "refresh@example.com")
        session = await log_in(accounts, "refresh@example.com")
        first = (await accounts.stub.IssueToken(pb.IssueTokenRequest(session_token=session.session_token))).tokens
        second = (await accounts.stub.RefreshToken(pb.RefreshTokenRequest(refresh_token=first.refresh_token))).tokens
        assert second.refresh_token != first.refresh_token and second.access_token
        assert (await authenticate(accounts, second.access_token)).user.email == "refresh@example.com"
        stored = dump(engine)
        assert first.refresh_token not in stored and second.refresh_token[4:20] not in stored
        # The first token again: it was copied; its whole family ends, the second token too.
        error = await expect_error(accounts.stub.RefreshToken(pb.RefreshTokenRequest(
            refresh_token=first.refresh_token)), "AUTHENTICATION_FAILED")
        assert "already used" in error.message
        await expect_error(accounts.stub.RefreshToken(pb.RefreshTokenRequest(refresh_token=second.refresh_token)),
                           "AUTHENTICATION_FAILED")
        # Logging the session out ends the refresh tokens issued from it.
        third = (await accounts.stub.IssueToken(pb.IssueTokenRequest(session_token=session.session_token))).tokens
        await accounts.stub.RevokeSession(pb.RevokeSessionRequest(session_token=session.session_token))
        await expect_error(accounts.stub.RefreshToken(pb.RefreshTokenRequest(refresh_token=third.refresh_token)),
                           "AUTHENTICATION_FAILED")
        # A refresh token is not a credential.
        error = await expect_error(authenticate(accounts, third.refresh_token), "AUTHENTICATION_FAILED")
        assert "/v1/auth/refresh" in error.message


async def test_a_fresh_sqlite_install_issues_jwts_with_a_generated_key(start_accounts, database_url, tmp_path,
                                                                       engine):
    async with start_accounts(**FAST) as accounts:
        await sign_up(accounts, "fresh@example.com")
        if database_url.startswith("postgresql"):  # replicas must share a configured key: none is made
            error = await expect_error(accounts.stub.IssueToken(password_grant("fresh@example.com")),
                                       "PERMISSION_DENIED")
            assert "jwt_keys" in error.message
            return
        token = (await accounts.stub.IssueToken(password_grant("fresh@example.com"))).tokens.access_token
        key_file = tmp_path / "jwt-signing.key"
        assert key_file.stat().st_mode & 0o777 == 0o600
        assert jwt.get_unverified_header(token)["kid"].startswith("local-")
        assert key_file.read_text() not in dump(engine)  # the key is not in the database
    async with start_accounts(**FAST) as accounts:  # a restart keeps the key: the token still works
        assert (await authenticate(accounts, token)).user.email == "fresh@example.com"


async def test_token_requests_that_fail(start_accounts):
    async with start_accounts(jwt_auto_key=False, **FAST) as accounts:
        await sign_up(accounts, "nokey@example.com")
        error = await expect_error(accounts.stub.IssueToken(password_grant("nokey@example.com")), "PERMISSION_DENIED")
        assert "jwt_keys" in error.message
    async with start_accounts(**SIGNING, refresh_token_ttl_seconds=1, **FAST) as accounts:
        await expect_error(accounts.stub.IssueToken(password_grant("nokey@example.com", "wrong password")),
                           "AUTHENTICATION_FAILED")
        await expect_error(accounts.stub.IssueToken(password_grant("nobody@example.com")), "AUTHENTICATION_FAILED")
        error = await expect_error(accounts.stub.IssueToken(pb.IssueTokenRequest()), "INVALID_REQUEST")
        assert error.param == "grant"
        await expect_error(accounts.stub.IssueToken(pb.IssueTokenRequest(session_token="uvs_nope")),
                           "AUTHENTICATION_FAILED")
        short = (await accounts.stub.IssueToken(password_grant("nokey@example.com"))).tokens
        await asyncio.sleep(1.1)
        error = await expect_error(accounts.stub.RefreshToken(pb.RefreshTokenRequest(
            refresh_token=short.refresh_token)), "AUTHENTICATION_FAILED")
        assert "expired" in error.message


@pytest.mark.parametrize(("keys", "message"), [
    ([{"kid": "a", "algorithm": "HS256", "secret": "short"}], "at least 32"),
    ([{"kid": "a", "algorithm": "RS256"}], "needs private_key"),
    ([{"kid": "a", "algorithm": "RS256", "public_key": "not a pem"}], "not a PEM"),
    ([{"kid": "a", "algorithm": "HS256", "secret": OLD_SECRET}] * 2, "twice"),
])
def test_unusable_keys_are_named_at_start(keys, message):
    with pytest.raises(ValueError, match=message):
        JwtVerifier.from_settings(AccountsSettings(jwt_keys=keys))


def test_a_signing_kid_must_name_a_key_that_signs(rsa_pems):
    settings = AccountsSettings(jwt_keys=[{"kid": "pub", "algorithm": "RS256", "public_key": rsa_pems[1]}],
                                jwt_signing_kid="pub")
    with pytest.raises(ValueError, match="jwt_signing_kid"):
        JwtSigner.from_settings(settings)
    assert JwtSigner.from_settings(AccountsSettings(jwt_keys=settings.jwt_keys)) is None
    # A secret for other issuers' tokens only verifies.
    assert JwtSigner.from_settings(AccountsSettings(jwt_hs256_secret=LEGACY_SECRET)) is None
