"""axe-core on every page and state, in English and in Hebrew (right to left), at 1280 px and at
360 px: no serious or critical violation, no horizontal scroll on a phone, screenshots of each.

One walk per language shares one node and one Chromium: a student takes the exam (consent,
system check, exam, done) while a teacher, signed in with a password, visits every page of
`tests.support.a11y.PAGES` with that student present.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from rooms.tokens import ADMIN_STATIC
from server.keys import ACCOUNTS
from server.settings import Settings
from tests.support.a11y import (
    DESKTOP,
    PAGES,
    PHONE,
    axe_violations,
    describe,
    install_axe,
    overflow,
    untranslated_text,
    zoom_and_spacing,
)
from tests.support.browser import Browsers, Node, node_at_public_url, screenshot

pytestmark = pytest.mark.slow

PASSWORD = "a11y password 123"
LOCALES = {"en": "en-US", "he": "he-IL"}


@pytest.fixture
async def node(e2e_settings: Settings, vendor_ready: None) -> AsyncIterator[Node]:
    # Its own address as public URL: the password sign-in's Origin check passes.
    async with node_at_public_url(e2e_settings) as node:
        yield node


class Audit:
    """Runs axe at both viewports on the page's current state and collects what fails."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.problems: list[str] = []
        self.checked: list[str] = []

    async def check(self, page: Any, state: str, *, phone_scroll: bool = True) -> None:
        for width, height in (DESKTOP, PHONE):
            await page.set_viewport_size({"width": width, "height": height})
            await page.wait_for_timeout(60)  # one layout after the resize
            label = f"{state} [{self.lang}, {width}px]"
            self.problems += describe(label, await axe_violations(page))
            if width == PHONE[0]:
                size = await overflow(page)
                if phone_scroll and size["scroll"] > size["width"]:
                    self.problems.append(f"{label}: scrolls sideways ({size['scroll']} px wide in {size['width']} px)")
            if self.lang != "en" or width == PHONE[0]:
                await screenshot(page, f"a11y-{state}-{self.lang}-{width}")
        if phone_scroll:
            # The student page at 200 % zoom with text spacing overridden: nothing runs off sideways.
            size = await zoom_and_spacing(page)
            if size["scroll"] > size["width"]:
                self.problems.append(
                    f"{state} [{self.lang}, 200 %, text spacing]: {size['scroll']} px in {size['width']} px"
                )
        await page.set_viewport_size({"width": DESKTOP[0], "height": DESKTOP[1]})
        if self.lang != "en":
            # Every word on the page came from the catalog: no English left in a Hebrew page.
            self.problems += [f"{state} [{self.lang}]: untranslated {text!r}" for text in await untranslated_text(page)]
        self.checked.append(state)


@pytest.mark.parametrize("lang", ["en", "he"])
async def test_every_page_and_state_passes_axe(browsers: Browsers, node: Node, face_video: Path, lang: str) -> None:
    audit = Audit(lang)
    room = await node.room()
    [invite] = await node.invites(room["id"], ["Ada Lovelace"])
    email = f"a11y-{uuid.uuid4().hex[:8]}@example.org"
    await node.app[ACCOUNTS].create(ADMIN_STATIC, email, "Noa Levi", "admin", PASSWORD)

    student_ctx = await browsers.context(face_video, locale=LOCALES[lang])
    await install_axe(student_ctx)
    student = await student_ctx.new_page()
    await student.goto(f"{node.url}/exam/#token={invite['token']}")
    await student.locator("#consent-exam:not(:empty)").wait_for()
    assert await student.evaluate("document.documentElement.lang") == lang
    await audit.check(student, "consent")
    await student.locator("#consent-agree").check()
    await student.locator("#consent-continue").click()
    await expect(student.locator("#start")).to_be_enabled(timeout=10_000)
    await audit.check(student, "check")
    await student.locator("#start").click()
    await student.locator("#questions fieldset").first.wait_for()
    await student.locator("#q-q1 input").first.check()
    await student.locator("#q-q1-status[data-state=saved]").wait_for()
    await audit.check(student, "exam")

    teacher_ctx = await browsers.context(face_video, locale=LOCALES[lang])
    await install_axe(teacher_ctx)
    teacher = await teacher_ctx.new_page()
    await teacher.goto(f"{node.url}/teacher/signin.html")
    await teacher.locator("#signin-form").wait_for()
    await audit.check(teacher, "signin")
    await teacher.locator("#signin-email").fill(email)
    await teacher.locator("#signin-password").fill(PASSWORD)
    await teacher.locator("#signin-form button[type=submit]").click()
    await teacher.wait_for_url(f"{node.url}/teacher/")

    [attempt] = (await node.rest("GET", f"/api/rooms/{room['id']}/attempts"))["attempts"]
    for state in PAGES:
        await teacher.goto(
            node.url + state.path.format(room=room["id"], attempt=attempt["id"], exam=room["exam"]["id"])
        )
        await teacher.locator(state.ready).first.wait_for()
        # The dashboard is for a laptop; the sideways check is the student page's promise.
        await audit.check(teacher, state.name, phone_scroll=False)
        if state.name == "dashboard":
            await teacher.locator("#tiles .tile").first.click()
            await teacher.locator("#drawer-timeline li").first.wait_for()
            await audit.check(teacher, "dashboard-drawer", phone_scroll=False)
            await teacher.keyboard.press("Escape")
        if state.name == "editor-exam":
            # Every question kind of the rewritten form, with its answer-key fields.
            for kind in ("multiple", "numeric", "short", "essay"):
                await teacher.locator(f"button[data-add={kind}]").click()
            await teacher.locator("#questions .qedit[data-kind=essay]").last.wait_for()
            await audit.check(teacher, "editor-kinds", phone_scroll=False)

    await student.locator("#submit").click()
    await student.locator("dialog.confirm button[value=ok]").click()
    await student.locator("#done:not([hidden])").wait_for()
    await audit.check(student, "done")

    assert audit.problems == [], "\n".join(audit.problems)
    assert len(audit.checked) == 4 + 1 + len(PAGES) + 2


async def test_a_chosen_language_wins_over_the_browsers(browsers: Browsers, node: Node, face_video: Path) -> None:
    room = await node.room()
    [invite] = await node.invites(room["id"], ["Ada Lovelace"])
    page = await (await browsers.context(face_video, locale="en-US")).new_page()
    await page.goto(f"{node.url}/exam/#token={invite['token']}")
    await expect(page.locator("#consent-h")).to_have_text("Before you start: what this exam records")
    await page.get_by_label("Language").select_option("he")
    await expect(page.locator("html")).to_have_attribute("lang", "he")
    await expect(page.locator("html")).to_have_attribute("dir", "rtl")
    await expect(page.locator("#consent-h")).to_have_text("לפני שמתחילים: מה המבחן הזה מתעד")
    await expect(page.get_by_label("שפה")).to_have_value("he")
