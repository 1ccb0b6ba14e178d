"""My account page in Chromium: a personal token minted (shown once) and revoked, a second
session revoked (that browser's next call is refused), and an admin creating and disabling a
teacher."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from rooms.accounts import claims_of_account
from rooms.tokens import ADMIN_STATIC
from server.keys import ACCOUNTS
from server.settings import Settings
from tests.support.browser import Browsers, Node, node_at_public_url, screenshot

PASSWORD = "e2e password 123"


@pytest.fixture
async def node(e2e_settings: Settings, vendor_ready: None) -> AsyncIterator[Node]:
    async with node_at_public_url(e2e_settings) as node:
        yield node


async def signed_in_page(browsers: Browsers, node: Node, camera: Path, email: str) -> Any:
    context = await browsers.context(camera)
    page = await context.new_page()
    await page.goto(f"{node.url}/teacher/signin.html")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{node.url}/teacher/")
    return page


async def confirm(page: Any) -> None:
    await page.locator("dialog.confirm button[value=ok]").click()


async def status_of(page: Any, path: str) -> int:
    # The page's own fetch: the browser sends its session cookie, as the pages' api() does.
    result: int = await page.evaluate("(p) => fetch(p, {credentials: 'same-origin'}).then((r) => r.status)", path)
    return result


async def test_my_account_tokens_sessions_and_the_admins_accounts(
    browsers: Browsers, node: Node, face_video: Path
) -> None:
    email = f"admin-{uuid.uuid4().hex[:8]}@example.org"
    await node.app[ACCOUNTS].create(ADMIN_STATIC, email, "Ada Admin", "admin", PASSWORD)
    page = await signed_in_page(browsers, node, face_video, email)
    await page.get_by_role("link", name="My account").click()
    await page.wait_for_url(f"{node.url}/teacher/account.html")
    await expect(page.locator("#whoami")).to_contain_text("Ada Admin")

    # Mint a token: shown once, with the warning; it works as a bearer token.
    await page.get_by_label("Token name").fill("grading script")
    await page.get_by_role("button", name="Create token").click()
    minted = page.locator("#minted")
    await expect(minted).to_be_visible()
    await expect(minted).to_contain_text("shown only once")
    secret = await page.locator("#minted-token").input_value()
    assert secret.startswith("pt_")
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=node.url)
    await page.get_by_role("button", name="Copy").click()
    await expect(page.locator("#minted-copied")).to_have_text("Copied.")
    assert await page.evaluate("() => navigator.clipboard.readText()") == secret
    row = page.locator("#tokens-table tbody tr", has_text="grading script")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text(secret[:10])
    assert secret not in await page.locator("#tokens-table").inner_text()
    async with node.http.get(f"{node.url}/auth/me", headers={"Authorization": f"Bearer {secret}"}) as resp:
        assert resp.status == 200
    await screenshot(page, "account-token-minted")
    await page.get_by_role("button", name="Done").click()
    await expect(minted).to_be_hidden()
    assert await page.locator("#minted-token").input_value() == ""
    # Revoke it: the row goes and the token stops working.
    await row.get_by_role("button", name="Revoke").click()
    await confirm(page)
    await expect(row).to_have_count(0)
    async with node.http.get(f"{node.url}/auth/me", headers={"Authorization": f"Bearer {secret}"}) as resp:
        assert resp.status == 401

    # A second browser signs in: two sessions, this one marked; revoke the other.
    other = await signed_in_page(browsers, node, face_video, email)
    assert await status_of(other, "/auth/me") == 200
    await page.reload()
    sessions = page.locator("#sessions-table tbody tr")
    await expect(sessions).to_have_count(2)
    await expect(page.locator("#sessions-table tbody tr.current")).to_contain_text("(this one)")
    await screenshot(page, "account-two-sessions")
    await page.locator("#sessions-table tbody tr:not(.current)").get_by_role("button", name="Revoke").click()
    await expect(sessions).to_have_count(1)
    assert await status_of(other, "/api/me/tokens") == 401
    assert await status_of(page, "/api/me/tokens") == 200

    # As an admin: create a teacher, then disable them.
    teacher = f"new-{uuid.uuid4().hex[:8]}@example.org"
    accounts = page.locator("#accounts")
    await expect(accounts).to_be_visible()
    await page.get_by_label("Email").fill(teacher)
    await accounts.get_by_label("Name").fill("Nora New")
    await page.get_by_label("Initial password").fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    created = page.locator(f'#accounts-table tr[data-email="{teacher}"]')
    await expect(created.locator("td.state")).to_have_text("active")
    signin = {"email": teacher, "password": PASSWORD}
    origin = {"Origin": node.url}
    async with node.http.post(f"{node.url}/auth/signin", json=signin, headers=origin) as resp:
        assert resp.status == 200
    await created.get_by_role("button", name="Disable").click()
    await confirm(page)
    await expect(created.locator("td.state")).to_have_text("disabled")
    await expect(created.get_by_role("button", name="Enable")).to_be_visible()
    await screenshot(page, "account-admin-disabled")
    async with node.http.post(f"{node.url}/auth/signin", json=signin, headers=origin) as resp:
        assert resp.status == 403 and (await resp.json())["error"]["code"] == "account_disabled"


async def test_a_teacher_sees_no_accounts_section(browsers: Browsers, node: Node, face_video: Path) -> None:
    email = f"teacher-{uuid.uuid4().hex[:8]}@example.org"
    account = await node.app[ACCOUNTS].create(ADMIN_STATIC, email, "Tom Teacher", "teacher", PASSWORD)
    page = await signed_in_page(browsers, node, face_video, email)
    await page.goto(f"{node.url}/teacher/account.html")
    await expect(page.locator("#sessions-table tbody tr")).to_have_count(1)
    await expect(page.locator("#tokens")).to_be_visible()
    await expect(page.locator("#accounts")).to_be_hidden()
    # Sign out everywhere: after the confirmation every session of mine ends, this one too.
    await page.get_by_role("button", name="Sign out everywhere").click()
    await confirm(page)
    await page.wait_for_url(f"{node.url}/teacher/signin.html")
    assert await status_of(page, "/auth/me") == 401
    assert await node.app[ACCOUNTS].sessions(claims_of_account(account, "session:x")) == []
