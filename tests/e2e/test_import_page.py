"""The import page in Chromium: a Moodle XML file checked (the report table lists every item
with its reason), then created; a QTI zip checked; a zip bomb refused with the server's
message. Driven by labels and the keyboard."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import expect

from tests.support.browser import Browsers, Node, screenshot
from tests.support.interchange_files import MOODLE_EXPECTED, moodle_quiz, qti_package, zip_bomb
from tests.support.node import ADMIN

pytestmark = pytest.mark.slow


async def test_import_page_checks_then_creates(
    browsers: Browsers, node: Node, face_video: Path, tmp_path: Path
) -> None:
    quiz = tmp_path / "geography.xml"
    quiz.write_bytes(moodle_quiz())
    package = tmp_path / "package.zip"
    package.write_bytes(qti_package())
    bomb = tmp_path / "bomb.zip"
    bomb.write_bytes(zip_bomb(200))

    context = await browsers.context(face_video)
    page = await context.new_page()
    await page.goto(f"{node.url}/teacher/")
    await page.get_by_label("Teacher or admin token").fill(ADMIN)
    await page.get_by_role("button", name="Sign in").click()
    # The teacher home links the page in one line.
    await page.get_by_role("link", name="Import questions").click()
    await page.wait_for_url(f"{node.url}/teacher/import.html")

    await page.get_by_label("File").set_input_files(str(quiz))
    await expect(page.get_by_label("Format")).to_have_value("moodle")  # guessed from .xml
    await page.get_by_label("Duration (minutes)").fill("40")
    # Keyboard: Enter in a field submits the check.
    await page.get_by_label("Exam title").focus()
    await page.keyboard.press("Enter")
    rows = page.locator("#report-table tbody tr")
    await expect(rows).to_have_count(len(MOODLE_EXPECTED))
    await expect(page.locator("#report-summary")).to_contain_text("8 imported, 5 changed, 6 refused")
    mystery = rows.filter(has_text="Mystery")
    await expect(mystery).to_contain_text("Refused")
    await expect(mystery).to_contain_text("unknown question type 'foobar'")
    await expect(rows.filter(has_text="Pairs")).to_contain_text("turned into an essay")
    await screenshot(page, "teacher-import-report")

    create = page.get_by_role("button", name="Create the exam")
    await expect(create).to_be_enabled()
    await create.focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("#import-status")).to_contain_text('Exam "Geography quiz" created with 13 questions')
    exam_id = await page.locator("#created-exam-id").text_content()
    assert exam_id
    exam = await node.rest("GET", f"/api/exams/{exam_id}")
    assert exam["duration_minutes"] == 40 and len(exam["questions"]) == 13

    await page.get_by_label("File").set_input_files(str(package))
    await expect(page.get_by_label("Format")).to_have_value("qti")
    await page.get_by_role("button", name="Check the file").click()
    await expect(page.locator("#report-summary")).to_contain_text("6 imported, 1 changed, 3 refused")

    await page.get_by_label("File").set_input_files(str(bomb))
    await page.get_by_role("button", name="Check the file").click()
    await expect(page.locator("#import-status")).to_contain_text("Not imported")
    await expect(page.locator("#import-status")).to_contain_text("inflates to more than")
    await expect(create).to_be_disabled()
