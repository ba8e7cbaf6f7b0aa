"""The journey of a new user, in a real Chromium driven by Playwright, against the real edge, accounts,
media and a tiny image service: sign up, create a key, copy it, call /v1/images/generations with it,
see the charge in the usage table, revoke it and see the API refuse it, log out. The pages are also
checked on a phone-sized screen. Screenshots land in test-artifacts/account-browser/ (git ignores it).

Chromium is Debian's (`apt-get install -y chromium`), launched by path: Playwright's own browser
download is not needed. Without a chromium binary the tests skip, saying so.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.edge.account_site import PASSWORD, site
from tests.edge.test_auth import assert_envelope
from tests.image.helpers import serve, settings_for
from univence.accounts.v1 import accounts_pb2 as apb

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "account-browser"
CANDIDATES = (os.environ.get("UNIVENCE_CHROMIUM", ""), "chromium", "chromium-browser", "/usr/bin/chromium",
              "/usr/lib/chromium/chromium", "google-chrome")
CHROMIUM = next((found for name in CANDIDATES if name and (found := shutil.which(name))), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary: `apt-get install -y chromium` "
                                                         "(or set UNIVENCE_CHROMIUM to a Chromium/Chrome binary)")
START_CREDITS_MC = 10_000
# 512x512 with longcat-image-edit: 262,144 pixels at 1500 mc per 2**20 pixels = 375 mc.
IMAGE_MC = 375


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    args = ["--no-sandbox"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        yield browser
        await browser.close()


async def shot(page: Page, name: str) -> None:
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def test_sign_up_key_usage_revoke_log_out(tmp_path, chromium):
    async with serve(settings_for()) as image, \
            site(tmp_path, modalities=["image"], modality_addresses={"image": image.address}) as platform:
        base = platform.base_url
        context = await chromium.new_context(base_url=base, viewport={"width": 1280, "height": 900})
        await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
        page = await context.new_page()
        page.on("dialog", lambda dialog: dialog.accept())  # the revoke button asks first

        await page.goto("/signup")
        await shot(page, "01-signup")
        await page.fill("input[name=email]", "walker@example.com")
        await page.fill("input[name=password]", PASSWORD)
        await page.fill("input[name=password_again]", PASSWORD)
        await page.click("#signup-form button[type=submit]")
        await expect(page).to_have_url(f"{base}/account?done=welcome")
        await expect(page.locator("#who")).to_have_text("walker@example.com")
        await expect(page.locator("#price-table")).to_contain_text("z-image-turbo")

        await platform.accounts.GrantCredits(apb.GrantCreditsRequest(user="walker@example.com",
                                                                     amount_mc=START_CREDITS_MC))
        await page.reload()
        await expect(page.locator("#balance-credits")).to_have_text("10")

        await page.fill("#create-key-form input[name=name]", "from the browser")
        await page.click("#create-key")
        secret_box = page.locator("#new-secret")
        await expect(secret_box).to_be_visible()
        await page.click("#copy-secret")
        await expect(page.locator("#copy-secret")).to_have_text("Copied")
        secret = await page.evaluate("navigator.clipboard.readText()")
        assert secret.startswith("sk-") and secret == (await secret_box.text_content()).strip()
        await shot(page, "02-key-created")

        async with httpx.AsyncClient(base_url=base, timeout=120) as http:
            generated = await http.post("/v1/images/generations", headers={"X-API-Key": secret},
                                        json={"model": "longcat-image-edit", "prompt": "a lighthouse at dusk",
                                              "image_size": "512x512", "seed": 7})
            assert generated.status_code == 200, generated.text

            await page.goto("/account")
            assert secret not in await page.content()  # shown once, never again
            first_row = page.locator("#usage-table tbody tr").first
            await expect(first_row).to_contain_text("image_generation longcat-image-edit 512x512")
            await expect(first_row).to_contain_text("-0.375")
            await expect(page.locator("#balance-credits")).to_have_text("9.625")
            assert START_CREDITS_MC - IMAGE_MC == 9_625
            await expect(page.locator("#key-table")).to_contain_text("from the browser")
            await expect(page.locator("#key-table")).not_to_contain_text("never")  # last used is shown
            await shot(page, "03-usage")

            await page.click("#key-table button.danger")
            await expect(page.locator("#notice")).to_contain_text("The key is revoked")
            await expect(page.locator("#key-table")).to_contain_text("revoked")
            await shot(page, "04-revoked")
            refused = await http.post("/v1/images/generations", headers={"X-API-Key": secret},
                                      json={"prompt": "again", "image_size": "256x256"})
            assert "revoked" in assert_envelope(refused, 401, "authentication_error")["message"]

        await page.click("#logout")
        await expect(page).to_have_url(f"{base}/login?done=logged-out")
        await expect(page.locator("#notice")).to_have_text("You are logged out.")
        await shot(page, "05-logged-out")
        await page.goto("/account")
        await expect(page).to_have_url(f"{base}/login")
        await context.close()


async def test_the_pages_fit_a_phone_screen(tmp_path, chromium):
    async with site(tmp_path) as platform:
        context = await chromium.new_context(base_url=platform.base_url, viewport={"width": 375, "height": 740},
                                             device_scale_factor=2, is_mobile=True, has_touch=True)
        page = await context.new_page()
        await page.goto("/signup")
        await page.fill("input[name=email]", "phone@example.com")
        await page.fill("input[name=password]", PASSWORD)
        await page.fill("input[name=password_again]", PASSWORD)
        await page.click("#signup-form button[type=submit]")
        await page.fill("#create-key-form input[name=name]", "phone")
        await page.click("#create-key")
        await expect(page.locator("#new-secret")).to_be_visible()
        for path in (None, "/login"):
            if path:
                await context.clear_cookies()
                await page.goto(path)
            # Nothing wider than the screen but the tables, which scroll inside their own box.
            overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{path or '/account'} is {overflow}px wider than a phone screen"
            font = await page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
            assert font >= 16
            await shot(page, f"phone-{(path or '/account').strip('/')}")
        await context.close()
