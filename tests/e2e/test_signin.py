"""A teacher signs in with a password in Chromium; the dashboard's socket rides the session."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import expect

from rooms.tokens import ADMIN_STATIC
from server.keys import ACCOUNTS, HUB, TOKENS
from server.settings import Settings
from tests.support.browser import Browsers, Node, node_at_public_url, screenshot
from tests.support.node import EXAM_BODY

PASSWORD = "e2e password 123"


@pytest.fixture
async def node(e2e_settings: Settings, vendor_ready: None) -> AsyncIterator[Node]:
    async with node_at_public_url(e2e_settings.replace(signin_account_failures=3)) as node:
        yield node


async def test_password_sign_in_then_the_dashboard_socket_uses_the_session(
    browsers: Browsers, node: Node, face_video: Path
) -> None:
    account = await node.app[ACCOUNTS].create(ADMIN_STATIC, "rivera@example.org", "Ms Rivera", "teacher", PASSWORD)
    # A room of an exam this account created (a token naming the account stands in for part C's UI).
    as_account = node.app[TOKENS].mint("teacher", account.id)
    exam = await node.rest("POST", "/api/exams", EXAM_BODY, token=as_account)
    room = await node.rest("POST", f"/api/exams/{exam['id']}/rooms", {"name": "Hall S", "seats": 5}, token=as_account)

    context = await browsers.context(face_video)
    page = await context.new_page()
    await page.goto(f"{node.url}/teacher/signin.html")
    await page.get_by_label("Email").fill(account.email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{node.url}/teacher/")
    cookies = {c["name"]: c for c in await context.cookies()}
    assert cookies["proctor_session"]["httpOnly"] and cookies["proctor_session"]["sameSite"] == "Lax"

    await page.goto(f"{node.url}/teacher/?room={room['id']}")
    await expect(page.locator("#conn")).to_have_text("Online")
    await screenshot(page, "signin-dashboard")
    hub = node.app[HUB]
    [session] = [s for s in hub.teachers.sessions.values() if s.claims.sub == account.id]
    assert session.claims.token_id.startswith("session:") and room["id"] in session.watching


async def test_the_sign_in_limit_shows_when_to_retry(browsers: Browsers, node: Node, face_video: Path) -> None:
    account = await node.app[ACCOUNTS].create(ADMIN_STATIC, "limited@example.org", "Limited", "teacher", PASSWORD)
    context = await browsers.context(face_video)
    page = await context.new_page()
    await page.goto(f"{node.url}/teacher/signin.html")
    await page.get_by_label("Email").fill(account.email)
    error = page.locator("#signin-error")
    for _ in range(3):
        await page.get_by_label("Password").fill("not the password")
        await page.get_by_role("button", name="Sign in").click()
        await expect(error).to_contain_text("wrong")
        await asyncio.sleep(0.1)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(error).to_contain_text("Too many sign-in attempts. Try again in")
    await expect(page.get_by_role("button", name="Sign in")).to_be_disabled()
    await screenshot(page, "signin-limited")
