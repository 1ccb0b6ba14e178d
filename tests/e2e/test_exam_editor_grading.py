"""Exams with a life in Chromium: create in the editor, edit in place, an attempt starts, the
next edit makes version 2, a student takes it shuffled, submit grades it automatically, the
essay is graded in the grading page, and the grade is final."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import socketio
from playwright.async_api import expect

from tests.e2e.test_exam_flow import open_student, pass_consent_and_check
from tests.support.browser import Browsers, Node, screenshot
from tests.support.node import ADMIN

pytestmark = pytest.mark.slow


async def test_create_edit_version_take_shuffled_grade_essay(browsers: Browsers, node: Node, face_video: Path) -> None:
    context = await browsers.context(face_video)
    editor = await context.new_page()
    errors: list[str] = []
    editor.on("pageerror", lambda exc: errors.append(str(exc)))
    await editor.goto(f"{node.url}/teacher/editor.html")
    await editor.get_by_label("Teacher or admin token").fill(ADMIN)
    await editor.get_by_role("button", name="Sign in").click()

    # Create: a single choice with its key, a numeric, an essay; options shuffled per student.
    await editor.get_by_label("Title").fill("Arithmetic")
    await editor.get_by_label("Question text").fill("2 + 2 = ?")
    await editor.get_by_label("Options, one a line").fill("3\n4\n5\n6")
    await editor.get_by_label("Correct option, by number").fill("2")
    await editor.get_by_role("button", name="Add numeric").click()
    await editor.get_by_label("Question text").nth(1).fill("1 / 2 = ?")
    await editor.get_by_label("Correct value").fill("0.5")
    await editor.get_by_role("button", name="Add text answer").click()
    await editor.get_by_label("Question text").nth(2).fill("Why is 2 prime?")
    await editor.get_by_label("Points").nth(2).fill("2")
    await editor.get_by_label("Shuffle the options of choice questions").check()
    await editor.get_by_role("button", name="Create exam").click()
    await expect(editor.locator("#exam-result")).to_contain_text("Exam created")
    exam_id = (await editor.locator("#exam-result").inner_text()).rsplit("id ", 1)[1].strip()

    # Edit before any attempt: in place.
    await editor.get_by_role("button", name="Edit Arithmetic").click()
    await expect(editor.locator("#version-notice")).to_contain_text("No attempt has started")
    await editor.get_by_label("Title").fill("Arithmetic quiz")
    await editor.get_by_role("button", name="Save exam").click()
    await expect(editor.locator("#exam-result")).to_contain_text(f"Saved. — id {exam_id}")

    await editor.get_by_role("button", name="Create room").click()
    await expect(editor.locator("#room-result")).to_contain_text("created")
    room_id = await editor.locator("#invite-room").input_value()
    first, second = await node.invites(room_id, ["Early Bird", "Grace Hopper"])

    # An attempt starts (a student's socket), so the next edit is a new version.
    early = socketio.AsyncClient(reconnection=False)
    await early.connect(node.url, namespaces=["/student"], auth={"token": first["token"]}, transports=["websocket"])
    try:
        ack = await early.call("join", {}, namespace="/student")
        assert ack["ok"], ack
    finally:
        await early.disconnect()
    await editor.reload()
    await editor.get_by_role("button", name="Edit Arithmetic quiz").click()
    await expect(editor.locator("#version-notice")).to_contain_text("1 attempt has started")
    await editor.get_by_label("Question text").nth(2).fill("Why is 2 a prime number?")
    await editor.get_by_role("button", name="Save exam").click()
    await expect(editor.locator("#exam-result")).to_contain_text("Saved as version 2")
    await expect(editor.locator("#version-notice")).to_contain_text("Version 2 of 2")
    # Saving again without a change changes nothing: what the form does not show goes back as it was.
    await editor.get_by_role("button", name="Save exam").click()
    await expect(editor.locator("#exam-result")).to_contain_text("Nothing changed.")
    await expect(editor.locator("#room-list tbody tr")).to_have_count(1)
    await screenshot(editor, "teacher-editor-versions")
    (room,) = (await node.rest("GET", f"/api/exams/{exam_id}/rooms"))["rooms"]
    v2 = await node.rest("GET", f"/api/exams/{room['exam_id']}")
    assert v2["version"] == 2 and v2["family_id"] == exam_id

    # The second student takes version 2, options in their own order, and submits.
    student = await open_student(browsers, node, second, face_video)
    await pass_consent_and_check(student)
    await expect(student.locator("#questions legend", has_text="a prime number")).to_have_count(1)
    await student.get_by_role("radio", name="4", exact=True).check()
    essay = student.locator("textarea[name]")
    await student.locator('input[data-kind="numeric"]').fill("0,5")
    await student.locator('input[data-kind="numeric"]').blur()
    await essay.fill("It has exactly two divisors.")
    await essay.blur()
    await expect(student.locator("#questions .save[data-state=saved]")).to_have_count(3, timeout=5_000)
    shown = await student.locator("#questions fieldset").first.locator("label.option").all_inner_texts()
    await student.get_by_role("button", name="Submit the exam").click()
    await student.locator("dialog.confirm").get_by_role("button", name="Submit").click()
    await student.get_by_role("heading", name="Your exam has been submitted").wait_for(timeout=5_000)
    assert student.errors == []

    attempts = (await node.rest("GET", f"/api/rooms/{room_id}/attempts"))["attempts"]
    attempt_id = next(a["id"] for a in attempts if a["student_name"] == "Grace Hopper")
    sheet = await node.rest("GET", f"/api/attempts/{attempt_id}/grading")
    assert sheet["exam"]["version"] == 2
    assert (sheet["attempt"]["grade"], sheet["attempt"]["grade_max"], sheet["attempt"]["grade_final"]) == (2, 4, False)
    single = next(q for q in sheet["questions"] if q["kind"] == "single")
    assert single["answer"] == 1 and single["answer_text"] == "4"  # the original index, whatever was shown
    assert [t.strip() for t in shown] != [] and "4" in [t.strip() for t in shown]

    # The essay, in the grading page: the answer as text, points and a comment; then final.
    grading = await context.new_page()
    grading.on("pageerror", lambda exc: errors.append(str(exc)))
    await grading.goto(f"{node.url}/teacher/grading.html?attempt={attempt_id}#token={ADMIN}")
    await expect(grading.locator("#sheet-total")).to_contain_text("2 of 4 points (waiting")
    card = grading.locator("article.grade-card", has_text="Why is 2 a prime number?")
    await expect(card.locator(".answer")).to_have_text("It has exactly two divisors.")
    await expect(grading.locator("article.grade-card", has_text="2 + 2").locator(".answer")).to_have_text("4")
    await card.get_by_label("Points (0 to 2)").fill("1.5")
    await card.get_by_label("Comment").fill("Right idea; say which two.")
    await card.get_by_role("button", name="Save grade").click()
    await expect(card.locator("[role=status]")).to_contain_text("3.5 of 4, final")
    await expect(grading.locator("#sheet-total")).to_contain_text("3.5 of 4 points (final)")
    await grading.evaluate("window.scrollTo(0, 0)")
    await screenshot(grading, "teacher-grading")
    row = await node.rest("GET", f"/api/attempts/{attempt_id}/grading")
    assert row["attempt"]["grade_final"] is True and row["attempt"]["grade"] == 3.5
    essay_grade = next(q for q in row["questions"] if q["kind"] == "essay")["grade"]
    assert json.dumps(essay_grade["comment"]) == json.dumps("Right idea; say which two.")

    # One question across the room: the same answer, found from the room.
    await grading.goto(f"{node.url}/teacher/grading.html?room={room_id}&question=q3")
    await expect(grading.locator("article.grade-card")).to_have_count(1)
    await expect(grading.locator("#sheet-total")).to_contain_text("1 submitted attempt answered")

    # Back in the editor: the room renamed and closed, the exam duplicated, archived, and its
    # delete refused while the first student's attempt still runs.
    await editor.get_by_label("Name of room Hall A").fill("Hall A (morning)")
    await editor.get_by_label("Room Hall A closed to new students").check()
    await editor.get_by_role("button", name="Save room Hall A").click()
    await expect(editor.locator("#room-list-result")).to_contain_text(
        "Room “Hall A (morning)” saved: 30 seats, closed."
    )
    await editor.get_by_role("button", name="Duplicate Arithmetic quiz").click()
    await expect(editor.locator("#list-result")).to_contain_text("Duplicated: Copy of Arithmetic quiz")
    await editor.get_by_role("button", name="Delete Arithmetic quiz", exact=True).click()
    await editor.locator("dialog.confirm").get_by_role("button", name="Delete").click()
    await expect(editor.locator("#list-result")).to_contain_text("Not done: 1 attempt of this exam is running")
    await expect(editor.locator("#exam-h")).to_have_text("1. Edit exam: Arithmetic quiz")  # still open
    await editor.get_by_role("button", name="Archive Arithmetic quiz", exact=True).click()
    await expect(editor.locator("#list-result")).to_contain_text("Archived")
    await expect(editor.get_by_role("button", name="Edit Arithmetic quiz", exact=True)).to_have_count(0)
    await editor.get_by_label("Show archived").check()
    await expect(editor.get_by_role("button", name="Restore Arithmetic quiz", exact=True)).to_have_count(1)
    await editor.evaluate("window.scrollTo(0, 0)")
    await screenshot(editor, "teacher-editor-list")
    assert (await node.rest("GET", f"/api/exams/{exam_id}/rooms"))["rooms"][0]["closed"] is True
    assert errors == []
