"""POST /v1/auth/token and /v1/auth/refresh over HTTP: email and password or the session cookie → a JWT
that `Authorization: Bearer` accepts (the openai SDK too), refresh rotation, and a JWT from a user who
signed up on the page calling /v1/chat/completions (the real tiny LLM service) once made premium."""

from __future__ import annotations

import httpx
import jwt
import openai
import pytest

from tests.edge.account_site import PASSWORD, Browser, site
from tests.edge.test_auth import assert_envelope
from tests.llm.helpers import serve_llm
from univence.accounts.v1 import accounts_pb2 as apb

SIGNING = {"jwt_keys": [{"kid": "edge-test-1", "algorithm": "HS256", "secret": "s" * 40}],
           "access_token_ttl_seconds": 300}


@pytest.fixture
async def platform(tmp_path):
    async with site(tmp_path, accounts=SIGNING) as p:
        yield p


async def test_email_and_password_get_a_bearer_jwt_and_a_refresh_token(platform, browser):
    await browser.sign_up("token@example.com")
    response = await browser.http.post("/v1/auth/token", json={"email": "token@example.com", "password": PASSWORD})
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["token_type"] == "bearer" and body["expires_in"] == 300
    assert jwt.get_unverified_header(body["access_token"])["kid"] == "edge-test-1"
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    assert (await browser.http.get("/v1/models", headers=bearer)).status_code == 200
    client = openai.AsyncOpenAI(api_key=body["access_token"], base_url=f"{platform.base_url}/v1", max_retries=0)
    assert (await client.models.list()).data == []

    refreshed = (await browser.http.post("/v1/auth/refresh", json={"refresh_token": body["refresh_token"]})).json()
    assert refreshed["refresh_token"] != body["refresh_token"]
    assert (await browser.http.get("/v1/models", headers={
        "Authorization": f"Bearer {refreshed['access_token']}"})).status_code == 200
    reused = await browser.http.post("/v1/auth/refresh", json={"refresh_token": body["refresh_token"]})
    error = assert_envelope(reused, 401, "authentication_error")
    assert "already used" in error["message"] and error["code"] == "invalid_credentials"


async def test_wrong_password_and_unknown_email_get_the_same_401(platform, browser):
    await browser.sign_up("exists@example.com")
    answers = []
    for email in ("exists@example.com", "missing@example.com"):
        response = await browser.http.post("/v1/auth/token", json={"email": email, "password": "wrong wrong"})
        answers.append(assert_envelope(response, 401, "authentication_error"))
    assert answers[0] == answers[1] and answers[0]["message"] == "invalid email or password"
    async with httpx.AsyncClient(base_url=platform.base_url) as anonymous:
        nothing = await anonymous.post("/v1/auth/token", json={})
    assert assert_envelope(nothing, 401, "authentication_error")["code"] == "missing_credentials"


async def test_the_session_cookie_gets_a_token_from_this_site_only(platform, browser):
    await browser.sign_up("cookie@example.com")
    refused = await browser.http.post("/v1/auth/token", headers={"Origin": "https://evil.example.com"})
    assert assert_envelope(refused, 403, "authentication_error")["code"] == "csrf_failed"
    issued = await browser.http.post("/v1/auth/token", headers={"Origin": platform.base_url})
    assert issued.status_code == 200, issued.text
    claims = jwt.decode(issued.json()["access_token"], "s" * 40, algorithms=["HS256"])
    user = await platform.accounts.GetUser(apb.GetUserRequest(user="cookie@example.com"))
    assert claims["sub"] == user.user.user_id


async def test_a_jwt_from_the_token_endpoint_calls_chat_once_the_user_is_premium(tmp_path):
    async with serve_llm() as (_, llm), \
            site(tmp_path, accounts=SIGNING, modalities=["llm"],
                 modality_addresses={"llm": f"127.0.0.1:{llm.port}"}) as platform:
        browser = Browser(platform.base_url)
        try:
            await browser.sign_up("chat@example.com")
            token = (await browser.http.post("/v1/auth/token", json={"email": "chat@example.com",
                                                                     "password": PASSWORD})).json()["access_token"]
            browser.http.cookies.clear()  # only the JWT speaks from here on
            client = openai.AsyncOpenAI(api_key=token, base_url=f"{platform.base_url}/v1", max_retries=0,
                                        timeout=60)
            messages = [{"role": "user", "content": "Hello"}]
            with pytest.raises(openai.PermissionDeniedError) as refused:
                await client.chat.completions.create(model="any", messages=messages, max_tokens=4)
            assert refused.value.body["type"] == "premium_required"
            await platform.accounts.UpdateUser(apb.UpdateUserRequest(user="chat@example.com", premium=True))
            reply = await client.chat.completions.create(model="any", messages=messages, max_tokens=4)
            assert reply.choices[0].message.role == "assistant" and reply.usage.completion_tokens > 0
            raw = await browser.http.post("/v1/chat/completions", json={"messages": messages, "max_tokens": 4},
                                          headers={"Authorization": f"Bearer {token}"})
            assert raw.status_code == 200, raw.text
        finally:
            await browser.close()
