"""The account pages over HTTP, against the real edge, accounts and media services: sign-up, login, the
account page (balance, premium, keys, usage, videos, prices), logout, expiry, disabled users, password
changes, closed sign-up, and email verification through a real local SMTP server."""

from __future__ import annotations

import asyncio
import html
import re

import httpx
import pytest
from google.protobuf import struct_pb2

from tests.edge.account_site import PASSWORD, Browser, hidden, site, text_of
from tests.edge.test_auth import assert_envelope
from tests.support.smtp import smtp_server
from univence.accounts.v1 import accounts_pb2 as apb
from univence.media.v1 import media_pb2


@pytest.fixture
async def platform(tmp_path):
    async with site(tmp_path) as p:
        yield p


async def test_sign_up_lands_on_the_account_page_with_balance_prices_and_no_keys(platform, browser):
    page = await browser.sign_up("ada@example.com")
    assert page.status_code == 200 and str(page.url).endswith("/account?done=welcome")
    assert text_of(page.text, "who") == "ada@example.com"
    assert text_of(page.text, "balance-credits") == "0"
    assert "Standard account" in page.text and "No keys yet." in page.text
    # The price table is the accounts service's: one line per model, the minimum, the bulk discounts.
    assert "z-image-turbo</td><td>1 credit per megapixel (at least 0.25 per image)" in page.text
    assert "longcat-image-edit</td><td>1.5 credits per megapixel" in page.text
    assert "Image edit</td><td></td><td>0.5 credits per request" in page.text
    assert "Chat completion</td><td></td><td>Premium only" in page.text
    assert text_of(page.text, "discounts") == "Bulk discounts on purchases: 1000+ credits: 10% off; " \
                                              "10000+ credits: 20% off."
    for header, value in (("x-frame-options", "DENY"), ("cache-control", "no-store")):
        assert page.headers[header] == value
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert (await browser.page("/static/account/account.css")).headers["content-type"].startswith("text/css")


async def test_the_session_cookie_flags(platform, browser):
    await browser.sign_up("cookie@example.com")
    login = await browser.log_in("cookie@example.com", follow=False)
    assert login.status_code == 303 and login.headers["location"] == "/account"
    cookie = login.headers["set-cookie"]
    assert cookie.startswith("univence_session=uvs_")
    for flag in ("HttpOnly", "SameSite=lax", "Path=/", "Max-Age="):
        assert flag.lower() in cookie.lower(), cookie
    assert "secure" not in cookie.lower()  # plain http here


async def test_cookies_are_secure_when_the_public_url_is_https(tmp_path):
    async with site(tmp_path, public_base_url="https://api.example.com") as platform:
        await platform.accounts.SignUp(apb.SignUpRequest(email="secure@example.com", password=PASSWORD))
        async with httpx.AsyncClient(base_url=platform.base_url) as http:
            form = await http.get("/login")
            assert "secure" in form.headers["set-cookie"].lower()
            token = hidden(form.text)
            # A browser sends a Secure cookie back only over https: here it is set by hand.
            http.cookies.set("univence_form", token)
            response = await http.post("/login", data={"email": "secure@example.com", "password": PASSWORD,
                                                       "csrf_token": token},
                                       headers={"Origin": "https://api.example.com"})
            assert response.status_code == 303, response.text
            assert "secure" in response.headers["set-cookie"].lower()


async def test_keys_usage_and_videos_on_the_account_page(platform, browser):
    await browser.sign_up("keys@example.com")
    user_id = (await platform.accounts.GetUser(apb.GetUserRequest(user="keys@example.com"))).user.user_id
    await platform.accounts.GrantCredits(apb.GrantCreditsRequest(user=user_id, amount_mc=12_500, note="welcome"))
    created = await browser.create_key("laptop")
    assert created.status_code == 200
    secret = text_of(created.text, "new-secret")
    assert secret.startswith("sk-") and "shown only this once" in created.text
    assert created.headers["cache-control"] == "no-store"
    response = await platform.app.state.clients.accounts.Authenticate(apb.AuthenticateRequest(credential=secret))
    assert response.user.user_id == user_id

    page = (await browser.page("/account")).text
    assert secret not in page and secret[8:] not in page
    assert f"<code>{html.escape(secret[:8])}…</code>" in page and "laptop" in page
    assert text_of(page, "balance-credits") == "12.5"
    assert "<td>welcome</td><td>grant</td>" in page and "+12.5" in page

    # The videos tab lists the user's video jobs (as GET /v1/images/user-videos): a completed one links its
    # file, a queued one shows its status; a bare media file of kind video is no video of the library.
    stray = await platform.media.CreateMedia(media_pb2.CreateMediaRequest(
        owner_id=user_id, kind=media_pb2.MEDIA_KIND_VIDEO, mime_type="video/mp4", data=b"\0" * 1000))
    video = await platform.media.CreateMedia(media_pb2.CreateMediaRequest(
        owner_id=user_id, kind=media_pb2.MEDIA_KIND_VIDEO, mime_type="video/mp4", data=b"\0" * 1000))
    for prompt in ("a slow zoom", "waves at night"):
        params = struct_pb2.Struct()
        params.update({"prompt": prompt})
        job = (await platform.media.CreateJob(media_pb2.CreateJobRequest(
            owner_id=user_id, kind="video", params=params, runner_id="edge-test"))).job
    await platform.media.UpdateJob(media_pb2.UpdateJobRequest(
        job_id=job.job_id, runner_id="edge-test", status=media_pb2.JOB_STATUS_COMPLETED,
        result_media_ids=[video.media.media_id]))
    page = (await browser.page("/account")).text
    section = page.split('id="videos"', 1)[1].split("</section>", 1)[0]
    videos = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", section)).split())
    assert f'/v1/media/{video.media.media_id}">' in page and "waves at night completed" in videos
    assert "a slow zoom queued" in videos and stray.media.media_id not in page


async def test_a_revoked_key_is_refused_by_the_api(platform, browser):
    await browser.sign_up("revoke@example.com")
    secret = text_of((await browser.create_key("temp")).text, "new-secret")
    assert (await browser.http.get("/v1/models", headers={"X-API-Key": secret})).status_code == 200
    page = (await browser.page("/account")).text
    key_id = page.split('data-key-id="')[1].split('"')[0]
    revoked = await browser.submit("/account", f"/account/keys/{key_id}/revoke", {})
    assert "The key is revoked" in revoked.text and "revoked 20" in revoked.text
    refused = await browser.http.get("/v1/models", headers={"X-API-Key": secret})
    error = assert_envelope(refused, 401, "authentication_error")
    assert "revoked" in error["message"]


async def test_wrong_password_and_unknown_email_get_the_same_page(platform, browser):
    await browser.sign_up("known@example.com")
    other = Browser(platform.base_url)
    try:
        wrong = await other.log_in("known@example.com", "not the password at all")
        unknown = await other.log_in("unknown@example.com", "not the password at all")
    finally:
        await other.close()
    assert wrong.status_code == unknown.status_code == 401
    assert text_of(wrong.text, "error") == text_of(unknown.text, "error") == "Invalid email or password."
    assert wrong.text.replace("known@", "X@") == unknown.text.replace("unknown@", "X@")
    assert "univence_session" not in wrong.headers.get("set-cookie", "")


async def test_the_session_calls_the_api_and_logout_ends_it(platform, browser):
    await browser.sign_up("out@example.com")
    assert (await browser.http.get("/v1/models")).status_code == 200  # the cookie authenticates the API
    videos = await browser.http.get("/v1/images/user-videos")
    assert videos.status_code == 200 and videos.json()["data"] == []
    old = browser.session
    page = await browser.submit("/account", "/logout", {})
    assert "You are logged out." in page.text and browser.session is None
    browser.plant(old)
    assert_envelope(await browser.http.get("/v1/models"), 401, "authentication_error")
    again = await browser.page("/account")
    assert again.status_code == 401 and "logged out" in text_of(again.text, "error")


async def test_an_expired_session_gets_the_login_page_and_a_401_envelope(tmp_path):
    async with site(tmp_path, accounts={"session_ttl_seconds": 1}) as platform:
        browser = Browser(platform.base_url)
        try:
            await browser.sign_up("expire@example.com")
            token = browser.session
            await asyncio.sleep(1.2)
            # The cookie's Max-Age has run out too; a browser whose clock is behind still sends it.
            browser.plant(token)
            page = await browser.page("/account")
            assert page.status_code == 401 and "expired" in text_of(page.text, "error")
            assert 'action="/login"' in page.text
            cleared = page.headers["set-cookie"]  # the page clears the dead cookie
            assert cleared.startswith('univence_session=""') and "max-age=0" in cleared.lower()
            browser.plant(token)
            error = assert_envelope(await browser.http.get("/v1/models"), 401, "authentication_error")
            assert "expired" in error["message"]
        finally:
            await browser.close()


async def test_a_disabled_user_is_told_so_and_their_key_is_refused(platform, browser):
    await browser.sign_up("disabled@example.com")
    secret = text_of((await browser.create_key("k")).text, "new-secret")
    await platform.accounts.UpdateUser(apb.UpdateUserRequest(user="disabled@example.com", disabled=True))
    page = await browser.page("/account")
    assert page.status_code == 401 and "disabled" in text_of(page.text, "error")
    error = assert_envelope(await browser.http.get("/v1/models", headers={"X-API-Key": secret}), 401,
                            "authentication_error")
    assert "disabled" in error["message"]
    login = await browser.log_in("disabled@example.com")
    assert login.status_code == 401 and "disabled" in text_of(login.text, "error")
    other = await browser.log_in("disabled@example.com", "the wrong password")
    assert text_of(other.text, "error") == "Invalid email or password."


async def test_changing_the_password_logs_out_the_other_browsers(platform, browser):
    await browser.sign_up("pw@example.com")
    phone = Browser(platform.base_url)
    try:
        await phone.log_in("pw@example.com")
        assert (await phone.page("/account")).status_code == 200
        mismatch = await browser.submit("/account", "/account/password", {
            "current_password": PASSWORD, "new_password": "x" * 12, "new_password_again": "y" * 12})
        assert mismatch.status_code == 400 and "differ" in text_of(mismatch.text, "password-error")
        wrong = await browser.submit("/account", "/account/password", {
            "current_password": "not it at all", "new_password": "x" * 12, "new_password_again": "x" * 12})
        assert wrong.status_code == 400 and "current password" in text_of(wrong.text, "password-error")
        done = await browser.submit("/account", "/account/password", {
            "current_password": PASSWORD, "new_password": "my new passphrase", "new_password_again":
                "my new passphrase"})
        assert done.status_code == 200 and "password is changed" in done.text
        assert (await phone.page("/account")).status_code == 401
        await phone.log_in("pw@example.com", "my new passphrase")
        assert (await phone.page("/account")).status_code == 200
    finally:
        await phone.close()


async def test_sign_up_closed(tmp_path):
    async with site(tmp_path, accounts={"signup_enabled": False}) as platform:
        browser = Browser(platform.base_url)
        try:
            page = await browser.sign_up("late@example.com")
            assert page.status_code == 403 and "closed" in text_of(page.text, "error")
        finally:
            await browser.close()


async def test_email_verification_with_a_real_smtp_server(tmp_path):
    with smtp_server() as inbox:
        async with site(tmp_path, accounts={"email_verification": True, "smtp_host": inbox.host,
                                            "smtp_port": inbox.port, "public_base_url": "http://placeholder"}) \
                as platform:
            browser = Browser(platform.base_url)
            try:
                page = await browser.sign_up("verify@example.com")
                assert page.status_code == 200 and "Check your email" in page.text and browser.session is None
                [mail] = await inbox.wait_for("verify@example.com")
                link = inbox.link(mail).replace("http://placeholder", "")
                assert link.startswith("/verify-email?token=")
                refused = await browser.log_in("verify@example.com")
                assert refused.status_code == 401 and "Confirm your email" in text_of(refused.text, "error")
                confirmed = await browser.page(link)
                assert "confirmed" in text_of(confirmed.text, "notice")
                again = await browser.page(link)
                assert again.status_code == 400 and "invalid, used or expired" in text_of(again.text, "error")
                page = await browser.log_in("verify@example.com")
                assert page.status_code == 200 and text_of(page.text, "who") == "verify@example.com"
            finally:
                await browser.close()


async def test_pages_without_a_session(platform, browser):
    redirect = await browser.http.get("/account")
    assert redirect.status_code == 303 and redirect.headers["location"] == "/login"
    assert (await browser.http.get("/logout")).headers["location"] == "/login"
    assert 'name="csrf_token"' in (await browser.page("/login")).text
    assert hidden((await browser.page("/signup")).text)
    assert (await browser.http.get("/static/account/nope.js")).status_code == 404
