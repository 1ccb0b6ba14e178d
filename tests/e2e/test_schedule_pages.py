"""Windows and accommodations in Chromium: a teacher sets a student's accommodation on the room
page; the student, early, reads when the exam opens (in their own time), is let in when it
opens and reads their accommodation; a hard close ends the exam with time left and says so."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from tests.e2e.test_exam_flow import open_student, open_teacher
from tests.support.browser import Browsers, Node, screenshot

pytestmark = pytest.mark.slow


async def start_exam(page: Any) -> None:
    """Consent and system check, then Start (which joins)."""
    await page.get_by_label("I have read this and agree").check()
    await page.get_by_role("button", name="Continue to the system check").click()
    start = page.get_by_role("button", name="Start the exam")
    await expect(start).to_be_enabled(timeout=10_000)
    await start.click()


async def test_accommodation_set_on_the_room_page_and_a_window_that_opens(
    browsers: Browsers, node: Node, face_video: Path
) -> None:
    room = await node.room()  # 30 minutes
    [invite] = await node.invites(room["id"], ["Ada Lovelace"])
    opens = datetime.now(UTC) + timedelta(seconds=12)
    window = {"opens_at": opens.isoformat(), "closes_at": (opens + timedelta(hours=2)).isoformat()}
    await node.rest("PUT", f"/api/rooms/{room['id']}/schedule", window)

    teacher = await open_teacher(browsers, node, room["id"], await node.teacher_token([room["id"]]), face_video)
    sitting = teacher.get_by_role("region", name="Schedule and accommodations")
    await expect(sitting.locator("#window-state")).to_contain_text("This room: opens")
    await sitting.get_by_label("Student id").fill("s-0")
    await sitting.get_by_label("Extra minutes").fill("15")
    rules = sitting.get_by_role("group", name="Rules switched off for this student")
    await rules.get_by_label("No face", exact=True).check()
    await rules.get_by_label("Tab hidden", exact=True).check()
    await sitting.get_by_label("Note for colleagues").fill("reader")
    await sitting.get_by_role("button", name="Save accommodation").click()
    await expect(sitting.locator("#acc-result")).to_have_text("Saved for s-0; it applies when they start.")
    row = sitting.locator("#acc-table tbody tr[data-student='s-0']")
    await expect(row).to_contain_text("15 min")
    await expect(row).to_contain_text("Tab hidden, No face")  # in the vocabulary's order
    await expect(row).to_contain_text("not started")
    await sitting.scroll_into_view_if_needed()
    await screenshot(teacher, "teacher-accommodations")

    student = await open_student(browsers, node, invite, face_video)
    await start_exam(student)
    fatal = student.locator("#fatal")
    await expect(fatal).to_contain_text("This exam is not open yet. It opens on")
    # In words and the reader's time (Intl.DateTimeFormat: the year is always there).
    await expect(fatal).to_contain_text(str(opens.year))
    await screenshot(student, "student-not-open-yet")

    # The page joins by itself once the window opens, and says what the student was given.
    await student.locator("#questions fieldset").first.wait_for(timeout=25_000)
    await expect(fatal).to_be_hidden()
    # The student's accommodations in plain words, one line each (the page's catalog, js/i18n.js).
    await expect(student.locator("#accommodations-box")).to_be_visible()
    await expect(student.locator("#accommodations li")).to_have_text(
        [
            "You have 15 extra minutes.",
            "This rule is switched off for you: Tab hidden.",
            "This rule is switched off for you: No face.",
        ]
    )
    await expect(student.locator("#timer-value")).to_have_text(re.compile(r"^4[45]:\d\d$"))
    await screenshot(student, "student-accommodation")
    assert student.errors == []


async def test_a_hard_close_ends_the_exam_with_time_left_and_says_so(
    browsers: Browsers, node: Node, face_video: Path
) -> None:
    room = await node.room()
    [invite] = await node.invites(room["id"], ["Alan Turing"])
    closes = datetime.now(UTC) + timedelta(seconds=25)
    window = {
        "opens_at": (closes - timedelta(hours=1)).isoformat(),
        "closes_at": closes.isoformat(),
        "hard_close": True,
    }
    await node.rest("PUT", f"/api/rooms/{room['id']}/schedule", window)

    student = await open_student(browsers, node, invite, face_video)
    await start_exam(student)
    await student.locator("#questions fieldset").first.wait_for()
    await expect(student.locator("#window-note")).to_contain_text("The exam window closes on")
    await student.locator("#questions fieldset").first.get_by_role("radio").first.check()
    await student.locator("#q-q1-status[data-state=saved]").wait_for(timeout=5_000)
    done = student.get_by_role("heading", name="Your exam has been submitted")
    await done.wait_for(timeout=35_000)
    await expect(student.locator("#done-text")).to_contain_text("The exam window has closed")
    await screenshot(student, "student-window-closed")
    assert student.errors == []
