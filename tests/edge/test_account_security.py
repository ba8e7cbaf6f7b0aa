"""The session's defences, over HTTP against the real services: cross-site requests refused (forms and the
API), no session fixation, brute force slowed (429 with Retry-After), and no secret in any page after its
creation or in any log line."""

from __future__ import annotations

import logging
import re

import pytest

from tests.edge.account_site import PASSWORD, Browser, hidden, site, text_of
from tests.edge.test_auth import assert_envelope
from univence.accounts.v1 import accounts_pb2 as apb

EVIL = "https://evil.example.com"


@pytest.fixture
async def platform(tmp_path):
    async with site(tmp_path, accounts={"login_max_failures": 3, "login_lockout_seconds": 30}) as p:
        yield p


async def keys_of(platform, email: str) -> list:
    return list((await platform.accounts.ListApiKeys(apb.ListApiKeysRequest(user=email))).api_keys)


async def test_forms_posted_from_another_site_are_refused(platform, browser):
    await browser.sign_up("victim@example.com")
    token = hidden((await browser.page("/account")).text)
    # Another site's page posting the form: its Origin gives it away (the token would too).
    refused = await browser.submit("/account", "/account/keys", {"name": "evil"}, origin=EVIL, token=token)
    assert refused.status_code == 403 and "Cross-site request refused" in text_of(refused.text, "error")
    # Without the page's token (a browser that sends no Origin): refused as well.
    for wrong in ("", "0" * 64, hidden((await browser.page("/login")).text)):
        refused = await browser.submit("/account", "/account/keys", {"name": "evil"}, origin="", token=wrong)
        assert refused.status_code == 403
    assert await keys_of(platform, "victim@example.com") == []
    # The logout and password forms are guarded the same way.
    refused = await browser.submit("/account", "/logout", {}, origin=EVIL, token=token)
    assert refused.status_code == 403 and (await browser.page("/account")).status_code == 200
    # The page's own form goes through.
    assert (await browser.submit("/account", "/account/keys", {"name": "mine"})).status_code == 200
    assert [k.name for k in await keys_of(platform, "victim@example.com")] == ["mine"]


async def test_the_login_form_needs_its_token_too(platform, browser):
    await browser.sign_up("login@example.com")
    other = Browser(platform.base_url)
    try:
        refused = await other.submit("/login", "/login", {"email": "login@example.com", "password": PASSWORD},
                                     token="forged")
        assert refused.status_code == 403 and other.session is None
    finally:
        await other.close()


async def test_the_api_refuses_cookie_requests_from_another_site(platform, browser):
    await browser.sign_up("api@example.com")
    # Reading is fine (a cross-site GET cannot read the answer, and SameSite=Lax withholds the cookie
    # from cross-site subrequests anyway).
    assert (await browser.http.get("/v1/models")).status_code == 200
    body = {"prompt": "a fox"}
    for headers in ({"Origin": EVIL}, {}, {"Referer": EVIL + "/page"}, {"Origin": "null"}):
        response = await browser.http.post("/v1/images/generations", json=body, headers=headers)
        error = assert_envelope(response, 403, "authentication_error")
        assert error["code"] == "csrf_failed"
    # From the site itself the request passes the session check (then 503: no image service runs here).
    same = await browser.http.post("/v1/images/generations", json=body, headers={"Origin": platform.base_url})
    assert same.status_code == 503, same.text
    # An API key in a header is not ambient: no origin needed.
    secret = text_of((await browser.create_key("k")).text, "new-secret")
    keyed = await browser.http.post("/v1/images/generations", json=body, headers={"X-API-Key": secret,
                                                                                   "Origin": EVIL})
    assert keyed.status_code == 503


async def test_no_session_fixation(platform, browser):
    await browser.sign_up("fix@example.com")
    planted = "uvs_" + "A" * 43  # a value an attacker set in the victim's browser
    victim = Browser(platform.base_url)
    try:
        victim.plant(planted)
        await victim.log_in("fix@example.com")
        assert victim.session not in (None, planted)
        # A login with a live session replaces it, and the old one stops working.
        before = victim.session
        await victim.log_in("fix@example.com")
        assert victim.session not in (None, before)
        check = Browser(platform.base_url)
        check.plant(before)
        assert (await check.page("/account")).status_code == 401
        await check.close()
    finally:
        await victim.close()


async def test_brute_force_is_slowed_with_429_and_retry_after(platform, browser):
    await browser.sign_up("target@example.com")
    attacker = Browser(platform.base_url)
    try:
        for _ in range(3):
            assert (await attacker.log_in("target@example.com", "guess guess guess")).status_code == 401
        locked = await attacker.log_in("target@example.com", PASSWORD)  # even the right password waits
        assert locked.status_code == 429 and 25 <= int(locked.headers["retry-after"]) <= 30
        assert "too many failed login attempts" in text_of(locked.text, "error").lower()
        api = await attacker.http.post("/v1/auth/token", json={"email": "target@example.com", "password": "x"})
        assert_envelope(api, 429, "rate_limit_error")
        assert 25 <= int(api.headers["retry-after"]) <= 30
        # Unknown emails lock the same way.
        for _ in range(3):
            await attacker.log_in("nobody@example.com", "guess guess guess")
        assert (await attacker.log_in("nobody@example.com", "guess guess guess")).status_code == 429
    finally:
        await attacker.close()


async def test_secrets_never_appear_in_pages_after_creation_or_in_logs(platform, browser, caplog):
    caplog.set_level(logging.DEBUG)
    await browser.sign_up("secret@example.com")
    created = await browser.create_key("laptop")
    secret = text_of(created.text, "new-secret")
    session = browser.session
    tokens = (await browser.http.post("/v1/auth/token", json={"email": "secret@example.com",
                                                              "password": PASSWORD})).json()
    refreshed = (await browser.http.post("/v1/auth/refresh",
                                         json={"refresh_token": tokens["refresh_token"]})).json()
    await browser.http.get("/v1/models", headers={"X-API-Key": secret})
    await browser.log_in("secret@example.com", "a wrong password here")
    pages = [(await browser.page(path)).text for path in ("/account", "/account?done=revoked", "/login", "/logout")]
    key_id = re.search(r'data-key-id="([^"]+)"', pages[0]).group(1)
    pages.append((await browser.submit("/account", f"/account/keys/{key_id}/revoke", {})).text)
    pages.append((await browser.create_key("another")).text)
    secrets_ = [secret, secret[3:], session, PASSWORD, tokens["access_token"], tokens["refresh_token"],
                refreshed["refresh_token"], "a wrong password here"]
    for page in pages:
        assert secret not in page and secret[8:] not in page
    # Every log line of the services and the edge (the test's own HTTP client, httpx, logs what it sends).
    records = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in records)
    assert "logged in" in logged  # the capture works
    for value in secrets_:
        assert value and value not in logged
