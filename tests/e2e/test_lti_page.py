"""The admins' LTI page in Chromium: the tool's values to paste, registering a platform through
the form (a bad URL is refused with the field named), and removing it."""

from __future__ import annotations

import pytest

from tests.support.browser import Browsers, Node
from tests.support.node import ADMIN

pytestmark = pytest.mark.slow


async def test_admin_registers_and_removes_a_platform(browsers: Browsers, node: Node, face_video: object) -> None:
    context = await browsers.context(face_video)  # type: ignore[arg-type]
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(f"{node.url}/teacher/lti.html#token={ADMIN}")
    await page.locator("#tool-jwks_url", has_text="/lti/jwks").wait_for()
    assert (await page.locator("#tool-login_url").inner_text()).endswith("/lti/login")
    assert (await page.locator("#tool-launch_url").inner_text()).endswith("/lti/launch")

    issuer = f"https://moodle-{node.url.rsplit(':', 1)[1]}.example.edu"
    await page.get_by_label("Name").fill("Moodle")
    await page.get_by_label("Issuer (platform id)").fill(issuer)
    await page.get_by_label("Client id").fill("abc")
    await page.get_by_label("Deployment ids (comma-separated)").fill("1, 2")
    await page.get_by_label("Authentication request URL (OIDC)").fill("http://moodle.example.edu/auth")
    await page.get_by_label("Access token URL").fill(issuer + "/token")
    await page.get_by_label("Public keyset URL (JWKS)").fill(issuer + "/certs")
    await page.get_by_role("button", name="Register").click()
    await page.locator("#register-status", has_text="auth_login_url").wait_for()

    await page.get_by_label("Authentication request URL (OIDC)").fill(issuer + "/auth")
    await page.get_by_role("button", name="Register").click()
    await page.locator("#register-status", has_text=f"Registered {issuer}").wait_for()
    row = page.locator("#platforms-table tr", has_text=issuer)
    await row.wait_for()
    assert "1, 2" in await row.inner_text()

    await page.get_by_role("button", name="Remove Moodle").first.click()
    await page.locator("dialog.confirm").get_by_role("button", name="Remove").click()
    await row.wait_for(state="detached")
    assert errors == []
