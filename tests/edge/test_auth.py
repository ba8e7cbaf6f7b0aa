"""Authentication at the edge: the three ways the reference documents, and the error envelope."""

from __future__ import annotations

import time

import httpx
import jwt
import openai
import pytest

from tests.support.platform import JWT_SECRET, running_platform
from univence.accounts.v1 import accounts_pb2 as apb


def assert_envelope(response: httpx.Response, status: int, type_: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == type_ and error["message"]
    return error


async def test_x_api_key_bearer_key_and_jwt_all_authenticate(platform, http):
    user_id, secret = await platform.user_with_key("a@example.com")
    token = jwt.encode({"sub": user_id, "exp": int(time.time()) + 60}, JWT_SECRET, algorithm="HS256")
    for headers in ({"X-API-Key": secret}, {"Authorization": f"Bearer {secret}"},
                    {"Authorization": f"Bearer {token}"}):
        response = await http.get("/v1/models", headers=headers)
        assert response.status_code == 200, (headers, response.text)
        assert response.json()["object"] == "list"


async def test_the_openai_sdk_lists_models_and_a_wrong_key_gets_401(platform):
    _, secret = await platform.user_with_key("sdk@example.com")
    client = openai.AsyncOpenAI(api_key=secret, base_url=f"{platform.base_url}/v1", max_retries=0)
    page = await client.models.list()
    assert page.data == []  # no modality service runs in this test
    wrong = openai.AsyncOpenAI(api_key="sk-not-a-real-key", base_url=f"{platform.base_url}/v1", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as failed:
        await wrong.models.list()
    assert failed.value.status_code == 401
    assert failed.value.body["type"] == "authentication_error"


@pytest.mark.parametrize("headers", [
    {},
    {"X-API-Key": "sk-unknown"},
    {"Authorization": "Bearer sk-unknown"},
    {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": "Bearer not.a.jwt"},
    {"X-API-Key": "x" * 9000},
])
async def test_bad_credentials_get_the_401_envelope(http, headers):
    assert_envelope(await http.get("/v1/models", headers=headers), 401, "authentication_error")


async def test_expired_and_wrongly_signed_jwts_are_refused(platform, http):
    user_id, _ = await platform.user_with_key("jwt@example.com")
    expired = jwt.encode({"sub": user_id, "exp": int(time.time()) - 3600}, JWT_SECRET, algorithm="HS256")
    forged = jwt.encode({"sub": user_id, "exp": int(time.time()) + 60}, "another-secret-another-secret-another",
                        algorithm="HS256")
    unsigned = jwt.encode({"sub": user_id, "exp": int(time.time()) + 60}, None, algorithm="none")
    for token in (expired, forged, unsigned):
        response = await http.get("/v1/models", headers={"Authorization": f"Bearer {token}"})
        assert_envelope(response, 401, "authentication_error")


async def test_a_revoked_key_stops_working(platform, http):
    user_id, secret = await platform.user_with_key("revoke@example.com")
    assert (await http.get("/v1/models", headers={"X-API-Key": secret})).status_code == 200
    keys = await platform.accounts.ListApiKeys(apb.ListApiKeysRequest(user=user_id))
    await platform.accounts.RevokeApiKey(apb.RevokeApiKeyRequest(key_id=keys.api_keys[0].key_id))
    assert_envelope(await http.get("/v1/models", headers={"X-API-Key": secret}), 401, "authentication_error")


async def test_media_is_public_but_listings_need_a_key(http):
    assert_envelope(await http.get("/v1/images/user-videos"), 401, "authentication_error")
    assert_envelope(await http.get("/v1/media/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), 404, "invalid_request_error")


async def test_failed_authentications_are_limited_per_address(tmp_path):
    async with running_platform(tmp_path, auth_failures_per_minute=6, auth_failures_burst=3) as platform:
        _, secret = await platform.user_with_key("limited@example.com")
        async with httpx.AsyncClient(base_url=platform.base_url, timeout=30) as http:
            for _ in range(5):  # successes take nothing
                assert (await http.get("/v1/models", headers={"X-API-Key": secret})).status_code == 200
            for n in range(3):
                assert_envelope(await http.get("/v1/models", headers={"X-API-Key": f"sk-wrong-{n}"}),
                                401, "authentication_error")
            for headers in ({"X-API-Key": "sk-wrong-again"}, {"X-API-Key": secret}):
                refused = await http.get("/v1/models", headers=headers)
                error = assert_envelope(refused, 429, "rate_limit_error")
                assert error["code"] == "rate_limit_exceeded"
                assert 1 <= int(refused.headers["retry-after"]) <= 10
        other = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
        async with httpx.AsyncClient(base_url=platform.base_url, timeout=30, transport=other) as elsewhere:
            assert (await elsewhere.get("/v1/models", headers={"X-API-Key": secret})).status_code == 200
            assert_envelope(await elsewhere.get("/v1/models", headers={"X-API-Key": "sk-wrong"}),
                            401, "authentication_error")


async def test_failed_authentications_are_not_limited_when_turned_off(tmp_path):
    async with running_platform(tmp_path, auth_failures_per_minute=0, auth_failures_burst=1) as platform, \
            httpx.AsyncClient(base_url=platform.base_url, timeout=30) as http:
        for n in range(5):
            assert_envelope(await http.get("/v1/models", headers={"X-API-Key": f"sk-wrong-{n}"}),
                            401, "authentication_error")
